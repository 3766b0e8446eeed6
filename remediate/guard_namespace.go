package remediate

import (
	"context"
	"fmt"
)

// namespaceGuard reports whether entry e may act on t, whose namespace the
// policy's include and exclude lists (and e's allowNamespaces) judge.
// Cluster-scoped targets (nodes) have no namespace and always pass.
func namespaceGuard(p *Policy, e *Entry, t *Target) (bool, string) {
	if t.Namespace == "" {
		return true, ""
	}
	if p.namespaceAllowed(e, t.Namespace) {
		return true, ""
	}
	if t.Namespace == SystemNamespace && !p.exclude[SystemNamespace] {
		return false, fmt.Sprintf("namespace %s is excluded unless the policy includes it", t.Namespace)
	}
	return false, fmt.Sprintf("namespace %s is outside the policy's namespaces", t.Namespace)
}

// namespaceScope is namespaceGuard as a scope guard.
type namespaceScope struct{}

func (namespaceScope) Name() string   { return "namespace" }
func (namespaceScope) Reason() string { return ReasonNamespaceExcluded }

func (namespaceScope) Allow(_ context.Context, r *run) (bool, string, error) {
	ok, why := namespaceGuard(r.st.policy, r.entry, r.t)
	return ok, why, nil
}
