package remediate

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/kubernetes"
)

// optOutGuard reports whether any object examined on the way to t (the
// pod, its owners, the target) or t's namespace carries
// leakguard.io/ignore: "true". It returns false and a description of the
// object when so. A namespace that cannot be read fails closed with the
// error.
func optOutGuard(ctx context.Context, c kubernetes.Interface, t *Target) (bool, string, error) {
	for _, ex := range t.examined {
		if ex.annotations[AnnotationIgnore] == "true" {
			return false, fmt.Sprintf("%s has %s: \"true\"", ex.ref, AnnotationIgnore), nil
		}
	}
	if t.Namespace == "" {
		return true, "", nil
	}
	ns, err := getObject(ctx, c, KindNamespace, "", t.Namespace)
	if err != nil {
		if errors.Is(notFound(err), errTargetNotFound) {
			// A namespaced object whose namespace is gone is being deleted
			// with it; nothing carries an opt-out.
			return true, "", nil
		}
		return false, "", fmt.Errorf("opt-out guard: %w", err)
	}
	if ns.GetAnnotations()[AnnotationIgnore] == "true" {
		return false, fmt.Sprintf("Namespace %s has %s: \"true\"", t.Namespace, AnnotationIgnore), nil
	}
	return true, "", nil
}
