package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// TestTrialToken runs the trial-token component's Job command (its args,
// verbatim) as the component's service account, with its Roles, on the
// lab's API server: the first run creates the Secret with a random token
// and its copy in monitoring, a second run changes nothing (same
// resourceVersions, same token), and the account may not read another
// Secret (a clear error naming the rights).
func TestTrialToken(t *testing.T) {
	l := needLab(t)
	// Built first, under BuildLeakguard's own bound: the test's context
	// bounds the API calls and the runs.
	bin, err := lab.BuildLeakguard(context.Background(), repoRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	admin := l.Admin
	_, objs, err := lab.RenderLeakguard(filepath.Join(repoRoot, "deploy"), "trial-token")
	if err != nil {
		t.Fatal(err)
	}
	var job *batchv1.Job
	var rbac []runtime.Object
	for _, u := range objs {
		if u.GetLabels()["app.kubernetes.io/component"] != "token" {
			continue
		}
		obj, err := lab.DecodeStrict(u)
		if err != nil {
			t.Fatal(err)
		}
		switch o := obj.(type) {
		case *batchv1.Job:
			job = o
		case *corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding:
			rbac = append(rbac, o.(runtime.Object))
		default:
			t.Fatalf("the component renders %T, which this test does not know", obj)
		}
	}
	if job == nil || len(rbac) != 5 {
		t.Fatalf("the component renders Job %v and %d RBAC objects, want a Job and 5", job != nil, len(rbac))
	}
	ns, sa := job.Namespace, job.Spec.Template.Spec.ServiceAccountName
	args := job.Spec.Template.Spec.Containers[0].Args
	var secret, copyNS string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--secret="); ok {
			secret = v
		}
		if v, ok := strings.CutPrefix(a, "--copy-to-namespace="); ok {
			copyNS = v
		}
	}
	if copyNS == "" {
		t.Fatalf("the Job's args %q copy the token nowhere", args)
	}
	_, err = admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: copyNS}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", copyNS, err)
	}
	for _, n := range []string{ns, copyNS} {
		if _, err := admin.CoreV1().Secrets(n).Get(ctx, secret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("Secret %s/%s before the test: %v, want none", n, secret, err)
		}
	}
	if err := lab.Create(ctx, admin, rbac...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range []string{ns, copyNS} {
			_ = admin.CoreV1().Secrets(n).Delete(ctx, secret, metav1.DeleteOptions{})
			_ = admin.RbacV1().RoleBindings(n).Delete(ctx, "leakguard-token", metav1.DeleteOptions{})
			_ = admin.RbacV1().Roles(n).Delete(ctx, "leakguard-token", metav1.DeleteOptions{})
		}
		_ = admin.CoreV1().ServiceAccounts(ns).Delete(ctx, sa, metav1.DeleteOptions{})
	})
	cfg, err := l.ServiceAccountConfig(ctx, ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{ns, copyNS} {
		waitMay(t, cfg, "create", n, "")
		waitMay(t, cfg, "get", n, secret)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := l.WriteTokenKubeconfig(kubeconfig, sa, cfg.BearerToken); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append(args, "--kubeconfig="+kubeconfig)...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		err := cmd.Run()
		return stderr.String(), err
	}

	get := func(n string) *corev1.Secret {
		t.Helper()
		s, err := admin.CoreV1().Secrets(n).Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	out, err := run(args...)
	if err != nil || !strings.Contains(out, "created the webhook token's Secret") || !strings.Contains(out, "copied the webhook token into a new Secret") {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	first, firstCopy := get(ns), get(copyNS)
	if !bytes.Equal(firstCopy.Data["token"], first.Data["token"]) {
		t.Errorf("the copy in %s holds another token", copyNS)
	}
	token, err := base64.StdEncoding.DecodeString(string(first.Data["token"]))
	if err != nil || len(token) != 32 {
		t.Errorf("token %q, want 32 random bytes, base64 (%v)", first.Data["token"], err)
	}
	if strings.Contains(out, string(first.Data["token"])) {
		t.Error("the log holds the token")
	}

	out, err = run(args...)
	if err != nil || !strings.Contains(out, "exists, left unchanged") || !strings.Contains(out, "holds the same token, left unchanged") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	for _, s := range []struct{ before, after *corev1.Secret }{{first, get(ns)}, {firstCopy, get(copyNS)}} {
		if s.after.ResourceVersion != s.before.ResourceVersion || !bytes.Equal(s.after.Data["token"], s.before.Data["token"]) {
			t.Errorf("second run changed Secret %s/%s: resourceVersion %s -> %s", s.before.Namespace, s.before.Name, s.before.ResourceVersion, s.after.ResourceVersion)
		}
	}

	// The Role names one Secret: another is out of reach.
	out, err = run("token", "ensure", "--namespace="+ns, "--secret=someone-elses")
	if err == nil || !strings.Contains(out, "forbidden") || !strings.Contains(out, "deploy/components/trial-token") {
		t.Errorf("run on another Secret: %v, want exit 1 naming the missing rights\n%s", err, out)
	}
	if _, err := admin.CoreV1().Secrets(ns).Get(ctx, "someone-elses", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret someone-elses: %v, want none", err)
	}
}

// waitMay waits, at most lab.PolicyEnforcement, until the account of cfg
// may verb secrets (named name, if not empty) in ns: RBAC learns of a new
// binding through an informer.
func waitMay(t *testing.T, cfg *rest.Config, verb, ns, name string) {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(lab.PolicyEnforcement)
	for {
		r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(testContext(t), &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: "secrets", Namespace: ns, Name: name},
		}}, metav1.CreateOptions{})
		if err == nil && r.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s secrets %s in %s not granted after %s (%v)", verb, name, ns, lab.PolicyEnforcement, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
