package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// The objects of the two-cluster data (the trace suite's L1 case), which
// exist in both clusters.
const (
	leakNamespace  = "inventory"
	leakDeployment = "stock-sync"
	leakReplicaSet = "stock-sync-58f9c7d6b"
	leakPod        = "stock-sync-58f9c7d6b-t5h2k"
	leakContainer  = "sync"
	leakNode       = "worker-2"
)

// fleetCluster is one cluster as its leakguard sees it: its own Kubernetes
// API (a lab: a real etcd and kube-apiserver) holding the objects the
// alerts name, and its own `leakguard serve --cluster NAME`, whose checks
// query the fleet's central engine.
type fleetCluster struct {
	name  string
	lab   *lab.Lab
	serve *lab.Serve
}

// startClusters starts, for each cluster, a lab with deploy/leakguard's
// RBAC and the data's objects (node worker-2, and the Deployment, ReplicaSet
// and pod of inventory/stock-sync on it), and `leakguard serve --cluster`
// as deploy/leakguard's service account, checking against promURL, with the
// webhook token the stand-in receivers expect ("token-" + cluster). The
// labs need kube-apiserver and etcd (hack/e2e-binaries.sh): missing, the
// test skips, or fails where the fleet tests are required.
func startClusters(t *testing.T, promURL string, names ...string) map[string]*fleetCluster {
	t.Helper()
	binDir, err := lab.FindBinaries(repoRoot)
	if err != nil {
		if os.Getenv("LEAKGUARD_FLEET") == "1" || os.Getenv("CI") != "" {
			t.Fatalf("the clusters' kube-apiserver and etcd: %v", err)
		}
		t.Skipf("the clusters' kube-apiserver and etcd: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	type started struct {
		l   *lab.Lab
		err error
	}
	// Both labs, and the build, at once: each takes seconds of waiting.
	labs := make([]chan started, len(names))
	for i := range names {
		labs[i] = make(chan started, 1)
		go func() {
			l, err := lab.Start(ctx, lab.Options{BinDir: binDir})
			labs[i] <- started{l, err}
		}()
	}
	bin, buildErr := lab.BuildLeakguard(ctx, repoRoot, dir)
	out := map[string]*fleetCluster{}
	var errs []error
	for i, c := range names {
		s := <-labs[i]
		if s.err != nil {
			errs = append(errs, fmt.Errorf("%s's lab: %w", c, s.err))
			continue
		}
		t.Cleanup(func() {
			if err := s.l.Close(); err != nil {
				t.Errorf("stop %s's lab: %v", c, err)
			}
		})
		out[c] = &fleetCluster{name: c, lab: s.l}
	}
	if err := errors.Join(append(errs, buildErr)...); err != nil {
		t.Fatal(err)
	}
	for _, c := range names {
		fc := out[c]
		if err := createObjects(ctx, fc.lab); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		saNS, saName, err := lab.InstallLeakguard(ctx, fc.lab, repoRoot)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		token, err := fc.lab.ServiceAccountToken(ctx, saNS, saName, time.Hour)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		kubeconfig := filepath.Join(dir, c+".kubeconfig")
		if err := fc.lab.WriteTokenKubeconfig(kubeconfig, saName, token); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		tokenFile := filepath.Join(dir, c+".webhook-token")
		if err := os.WriteFile(tokenFile, []byte("token-"+c), 0o600); err != nil {
			t.Fatal(err)
		}
		cert, key := fc.lab.ServingCertFiles()
		fc.serve, err = lab.StartServe(ctx, lab.ServeOptions{
			Bin: bin, Name: "serve-" + c, Dir: dir, Kubeconfig: kubeconfig,
			PrometheusURL: promURL, TokenFile: tokenFile,
			CertFile: cert, KeyFile: key, CAFile: fc.lab.CAFile(),
			Args: []string{"--cluster=" + c},
		})
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		t.Cleanup(func() {
			if t.Failed() || os.Getenv("LEAKGUARD_FLEET_VERBOSE") != "" {
				t.Logf("serve-%s log (last 40 lines):\n%s", c, fc.serve.Log(40))
			}
			if err := fc.serve.Stop(); err != nil {
				t.Logf("stop serve-%s: %v", c, err)
			}
		})
	}
	return out
}

// createObjects creates the data's node, namespace, Deployment, ReplicaSet
// and pod, as the admin (nothing reconciles them).
func createObjects(ctx context.Context, l *lab.Lab) error {
	a := l.Admin
	if _, err := a.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: leakNode, Labels: map[string]string{"kubernetes.io/hostname": leakNode},
	}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	if _, err := a.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leakNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace: %w", err)
	}
	if err := l.EnsureDefaultServiceAccount(ctx, leakNamespace); err != nil {
		return err
	}
	labels := map[string]string{"app": leakDeployment}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: leakContainer, Image: "registry.invalid/inventory/stock-sync:1"}}},
	}
	dep, err := a.AppsV1().Deployments(leakNamespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: leakDeployment},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	rsLabels := map[string]string{"app": leakDeployment, "pod-template-hash": "58f9c7d6b"}
	rsTemplate := *template.DeepCopy()
	rsTemplate.Labels = rsLabels
	rs, err := a.AppsV1().ReplicaSets(leakNamespace).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: leakReplicaSet, Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("Deployment", dep.Name, dep.UID)}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: rsLabels}, Template: rsTemplate},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create replicaset: %w", err)
	}
	spec := *rsTemplate.Spec.DeepCopy()
	spec.NodeName = leakNode
	if _, err := a.CoreV1().Pods(leakNamespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: leakPod, Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("ReplicaSet", rs.Name, rs.UID)}},
		Spec: spec,
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod: %w", err)
	}
	return nil
}

func controllerRef(kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: &yes, BlockOwnerDeletion: &yes}
}

// findings reads the leakguard.io/finding annotation of the data's
// Deployment and node in a cluster: what its serve acted on.
func findings(t *testing.T, l *lab.Lab) (deployment, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dep, err := l.Admin.AppsV1().Deployments(leakNamespace).Get(ctx, leakDeployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Admin.CoreV1().Nodes().Get(ctx, leakNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dep.Annotations[annotate.AnnotationFinding], n.Annotations[annotate.AnnotationFinding]
}
