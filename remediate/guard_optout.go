package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/kubernetes"
)

// optOutGuard reports whether any object examined on the way to t (the
// pod, its owners, the target) or t's namespace carries
// leakguard.io/ignore: "true". It returns false and a description of the
// object when so. A namespace that cannot be read fails closed with the
// error. The namespace is read through the delivery's memo m (nil reads
// it).
func optOutGuard(ctx context.Context, c kubernetes.Interface, m *reads, t *Target) (bool, string, error) {
	for _, ex := range t.examined {
		if OptedOut(ex.annotations) {
			return false, fmt.Sprintf("%s has %s: \"true\"", ex.ref, AnnotationIgnore), nil
		}
	}
	if t.Namespace == "" {
		return true, "", nil
	}
	ns, err := m.get(ctx, c, KindNamespace, "", t.Namespace)
	if err != nil {
		if errors.Is(NotFound(err), errTargetNotFound) {
			// A namespaced object whose namespace is gone is being deleted
			// with it; nothing carries an opt-out.
			return true, "", nil
		}
		return false, "", fmt.Errorf("opt-out guard: %w", err)
	}
	if OptedOut(ns.GetAnnotations()) {
		return false, fmt.Sprintf("Namespace %s has %s: \"true\"", t.Namespace, AnnotationIgnore), nil
	}
	return true, "", nil
}

// AnnotationIgnore set to "true" on an object or its namespace keeps
// leakguard from acting on it.
const AnnotationIgnore = "leakguard.io/ignore"

// OptedOut reports whether annotations opt out. "True", "TRUE" and a value
// with stray spaces count as "true": whoever wrote them meant to opt out,
// and reading them otherwise would act against that intent.
func OptedOut(annotations map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(annotations[AnnotationIgnore]), "true")
}

// optOutScope is optOutGuard as a scope guard.
type optOutScope struct{ client kubernetes.Interface }

func (optOutScope) Name() string   { return "opt-out" }
func (optOutScope) Reason() string { return ReasonOptOut }

func (g optOutScope) Allow(ctx context.Context, r *run) (bool, string, error) {
	return optOutGuard(ctx, g.client, r.memo(), r.t)
}
