package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Where deploy/ grants the rights a policy needs: the base, and one
// kustomize component per disruptive remediator (and profile), which a
// user adds with the policy entry that enables it.
const (
	// GrantBase is deploy/leakguard: the reads of the engine, annotate's
	// patches, Events, and the Leases in leakguard's own namespace.
	GrantBase = "deploy/leakguard"
	// GrantRestart is restart's: the verb restart on workloads (which the
	// admission policy checks before a pod-template change) and
	// evictions of pods without a controller.
	GrantRestart = "deploy/components/restart"
	// GrantNode is cordon's and drain's: the verb cordon on nodes (which
	// the admission policy checks before a node's spec changes), the list
	// of every pod, evictions.
	GrantNode = "deploy/components/node"
	// GrantProfile is profile's: pods/proxy and /debug/pprof/*.
	GrantProfile = "deploy/components/profile"
)

// Right is one permission of the Kubernetes API that serve needs, as a
// SelfSubjectAccessReview asks for it, and where deploy/ grants it.
type Right struct {
	// Verb, Group, Resource and Subresource are a resource request's;
	// Namespace is "" for a cluster-scoped resource or every namespace.
	Verb        string
	Group       string
	Resource    string
	Subresource string
	Namespace   string
	// NonResourceURL, when set, makes this a non-resource request (Verb
	// on the path); the resource fields are empty then.
	NonResourceURL string
	// Grant is the part of deploy/ that grants it (GrantBase, ...).
	Grant string
	// For names what needs it: "engine", or the remediators.
	For []string
}

// String says what the right allows: "create pods/eviction in every
// namespace", "get /debug/pprof/heap".
func (r Right) String() string {
	if r.NonResourceURL != "" {
		return r.Verb + " " + r.NonResourceURL
	}
	ResourceRight := r.Resource
	if r.Subresource != "" {
		ResourceRight += "/" + r.Subresource
	}
	if r.Group != "" {
		ResourceRight = r.Group + "/" + ResourceRight
	}
	where := " (cluster-wide)"
	if r.Namespace != "" {
		where = " in namespace " + r.Namespace
	}
	return r.Verb + " " + ResourceRight + where
}

// key identifies the request of r, whatever needs it.
func (r Right) key() string {
	return strings.Join([]string{r.Verb, r.Group, r.Resource, r.Subresource, r.Namespace, r.NonResourceURL}, "\x00")
}

// ResourceRight is the right to verb resource (with "/subresource") in
// group, granted by grant: what a remediator's RemediatorInfo.Rights
// returns.
func ResourceRight(verb, group, resource, grant string) Right {
	resource, sub, _ := strings.Cut(resource, "/")
	return Right{Verb: verb, Group: group, Resource: resource, Subresource: sub, Grant: grant}
}

// engineRights are what serve needs whatever its policy: read the alert's
// objects and their owners (opt-out, scope), annotate them (the finding,
// the cooldown claim), record Events, keep the budgets in the Leases of
// its namespace (filled in by RequiredRights), read the pause switch, and
// list the nodes for drains a stopped replica left running.
func engineRights() []Right {
	var out []Right
	for _, r := range [][3]string{
		{"get", "", "pods"}, {"patch", "", "pods"},
		{"get", "", "nodes"}, {"list", "", "nodes"}, {"patch", "", "nodes"},
		{"get", "", "namespaces"},
		{"get", "apps", "replicasets"}, {"patch", "apps", "replicasets"},
		{"get", "apps", "deployments"}, {"patch", "apps", "deployments"},
		{"get", "apps", "statefulsets"}, {"patch", "apps", "statefulsets"},
		{"get", "apps", "daemonsets"}, {"patch", "apps", "daemonsets"},
		{"get", "batch", "jobs"}, {"patch", "batch", "jobs"},
		{"get", "batch", "cronjobs"},
		{"create", "", "events"}, {"get", "", "events"}, {"patch", "", "events"},
	} {
		out = append(out, ResourceRight(r[0], r[1], r[2], GrantBase))
	}
	return out
}

// RequiredRights returns every right that serve, with leakguard's own
// namespace ns and policy p, needs: the engine's, and those of each
// remediator of an entry that acts for real, each once, the base's first
// and then by grant. dryRun (serve's --dry-run) makes every entry dry-run.
//
// A dry-run entry needs no remediator's rights: a remediator's Plan makes
// no request, and only Apply and OnHold, which a dry run never calls,
// cordon, list a node's pods, evict, proxy or patch a pod template. So a
// dry-run policy can be tried with the base alone, and the component
// added when the entry turns real (a reload then asks for it).
func RequiredRights(p *Policy, ns string, dryRun bool) []Right {
	rights := engineRights()
	for _, verb := range []string{"get", "create", "update"} {
		r := ResourceRight(verb, "coordination.k8s.io", "leases", GrantBase)
		r.Namespace = ns
		rights = append(rights, r)
	}
	for i := range rights {
		rights[i].For = []string{"engine"}
	}
	for _, name := range p.AlertNames() {
		e := p.Entry(name)
		if dryRun || p.DryRun || e.DryRun {
			continue
		}
		for _, er := range e.Remediators {
			if er.Rights == nil {
				// annotate, and any remediator that says nothing: it
				// patches what the engine's rights cover.
				continue
			}
			for _, r := range er.Rights(e.Target) {
				r.For = []string{er.Name}
				rights = append(rights, r)
			}
		}
	}
	// One right per request: the first grant that names it (the base's
	// before a component's), with every remediator that needs it.
	var out []Right
	at := map[string]int{}
	for _, r := range rights {
		if i, ok := at[r.key()]; ok {
			if !slices.Contains(out[i].For, r.For[0]) {
				out[i].For = append(out[i].For, r.For[0])
			}
			continue
		}
		at[r.key()] = len(out)
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Right) int {
		if (a.Grant == GrantBase) != (b.Grant == GrantBase) {
			if a.Grant == GrantBase {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Grant, b.Grant)
	})
	return out
}

// RequiredGrants returns the components of deploy/ (beyond the base) that
// grant rights, sorted: what an overlay adds for a policy.
func RequiredGrants(rights []Right) []string {
	var out []string
	for _, r := range rights {
		if r.Grant != GrantBase && !slices.Contains(out, r.Grant) {
			out = append(out, r.Grant)
		}
	}
	slices.Sort(out)
	return out
}

// AccessError is CheckAccess's answer when the API server denies rights:
// each right, and the part of deploy/ that grants it.
type AccessError struct {
	Missing []Right
}

// Error names every missing right, what needs it and its grant.
func (e *AccessError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the service account lacks %d right(s) that the policy needs", len(e.Missing))
	if g := RequiredGrants(e.Missing); len(g) > 0 {
		fmt.Fprintf(&b, " (add %s to the install, beside deploy/leakguard)", strings.Join(g, ", "))
	}
	for _, r := range e.Missing {
		fmt.Fprintf(&b, "; %s, for %s: granted by %s", r, strings.Join(r.For, ", "), r.Grant)
	}
	return b.String()
}

// CheckAccess asks the API server, with one SelfSubjectAccessReview per
// right, whether the client's account has every right, and returns an
// *AccessError naming those it lacks. A review that fails (the API server
// unreachable, the deadline of ctx) is an error too: the check fails
// closed, since a right it could not confirm may be missing.
func CheckAccess(ctx context.Context, c kubernetes.Interface, rights []Right) error {
	var missing []Right
	for _, r := range rights {
		review := &authorizationv1.SelfSubjectAccessReview{}
		if r.NonResourceURL != "" {
			review.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Verb: r.Verb, Path: r.NonResourceURL}
		} else {
			review.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
				Verb: r.Verb, Group: r.Group, Resource: r.Resource, Subresource: r.Subresource, Namespace: r.Namespace,
			}
		}
		got, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("access review of %s: %w", r, err)
		}
		if !got.Status.Allowed {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return &AccessError{Missing: missing}
	}
	return nil
}

// IsAccessError reports whether err is (or wraps) an *AccessError.
func IsAccessError(err error) bool {
	var ae *AccessError
	return errors.As(err, &ae)
}
