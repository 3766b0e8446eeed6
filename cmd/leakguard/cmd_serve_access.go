package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/remediate"
)

// accessCheckTimeout bounds the access reviews of start-up and of a
// reload: a few dozen SelfSubjectAccessReviews.
const accessCheckTimeout = 30 * time.Second

// checkServeAccess asks the API server whether serve's account has every
// right that policy needs with serve's flags (remediate.RequiredRights),
// within accessCheckTimeout. An error names each missing right and the
// part of deploy/ that grants it; a review that cannot be answered fails
// the check too (fail closed: serve does not start, or keeps its running
// policy, rather than act with rights it could not confirm).
func checkServeAccess(ctx context.Context, client kubernetes.Interface, policy *remediate.Policy, f serveFlags) error {
	ctx, cancel := context.WithTimeout(ctx, accessCheckTimeout)
	defer cancel()
	if err := remediate.CheckAccess(ctx, client, remediate.RequiredRights(policy, f.namespace, f.dryRun)); err != nil {
		return fmt.Errorf("access check (SelfSubjectAccessReview): %w", err)
	}
	return nil
}
