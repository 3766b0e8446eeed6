package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/google/go-cmp/cmp"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

const profilePodPolicy = `
rateLimit: {perMinute: 600, burst: 100}
alerts:
  ContainerMemoryLeak:
    target: pod
    check: {name: none}
    remediators:
      - name: profile
        args: {timeout: 5s, maxBytes: 8388608, growthAfter: 0s}
`

// profiledPod creates, as admin, a pod that opts in on port; attach, when
// set, gives it an IP on the lab's pod network and serves this process's
// pprof there (lab.AttachPod); otherwise its status.podIP is ip.
func profiledPod(ctx context.Context, t *testing.T, ns, name, ip string, port int, attach bool) {
	t.Helper()
	var h http.Handler
	if attach {
		h = lab.PprofHandler()
	}
	profiledPodServing(ctx, t, ns, name, ip, port, h)
}

// profiledPodServing is profiledPod serving h on the pod network (none
// when nil).
func profiledPodServing(ctx context.Context, t *testing.T, ns, name, ip string, port int, h http.Handler) {
	t.Helper()
	l := needLab(t)
	admin := l.Admin
	must(t, "create pod "+name, func() error {
		p, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{profile.AnnotationPprofPort: fmt.Sprint(port)}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if h != nil {
			_, err = l.AttachPod(ctx, ns, name, port, h)
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		_, err = admin.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

// isGzip reports whether the file starts as a gzipped pprof profile does.
func isGzip(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.HasPrefix(b, []byte{0x1f, 0x8b})
}

// The real API server refuses to proxy to a loopback pod IP; to a pod on
// the lab's pod network (an IP of 10.244.0.0/16 that the API server
// reaches through the network's loopback proxy), profile fetches a real
// heap and goroutine profile through pods/proxy as leakguard's service
// account.
func TestProfileThroughRealPodsProxy(t *testing.T) {
	needLab(t)
	ctx := testContext(t)
	w := newWorld(t)
	dir := t.TempDir()
	store, err := profile.NewStore(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := newProfilingEngine(t, leakguardClient(t), profilePodPolicy, budgetNamespace(t), profile.Deps{Store: store})
	decide := func(pod string) remediate.Decision {
		d, err := e.DecideOne(ctx, alert("ContainerMemoryLeak", map[string]string{"namespace": w.Namespace, "pod": pod, "container": "app"}))
		if err != nil {
			t.Fatalf("DecideOne(%s): %v", pod, err)
		}
		return d
	}

	t.Run("loopback pod IP refused by the API server", func(t *testing.T) {
		profiledPod(ctx, t, w.Namespace, "loopback", "127.0.0.1", 6060, false)
		d := decide("loopback")
		if d.Decision != remediate.DecisionHeld || d.Reason != profile.ReasonProfileFailed {
			t.Fatalf("decision %s %s %s, want held by %s", d.Decision, d.Reason, d.Message, profile.ReasonProfileFailed)
		}
		t.Logf("loopback: %s", d.Message)
		if !strings.Contains(d.Message, "address not allowed") {
			t.Errorf("message %q does not carry the API server's refusal", d.Message)
		}
	})

	t.Run("pod network", func(t *testing.T) {
		const port = 6060
		profiledPod(ctx, t, w.Namespace, "app", "", port, true)
		start := time.Now()
		d := decide("app")
		if d.Decision != remediate.DecisionActed {
			t.Fatalf("decision %s %s %s %+v, want acted", d.Decision, d.Reason, d.Message, d.Remediators)
		}
		t.Logf("two profiles through pods/proxy (port %d) in %s", port, time.Since(start).Round(time.Millisecond))
		files, _ := store.List()
		kinds := map[string]bool{}
		for _, f := range files {
			if strings.Contains(f.Name, "_app_") || strings.HasPrefix(f.Name, strings.ToLower(w.Namespace)+"-app_") {
				kinds[strings.Split(strings.TrimPrefix(f.Name, strings.ToLower(w.Namespace)+"-app_"), "_")[0]] = true
				if !isGzip(t, filepath.Join(dir, f.Name)) || f.Size < 100 {
					t.Errorf("%s (%d bytes) is not a gzipped profile", f.Name, f.Size)
				}
				if !strings.Contains(d.Remediators[0].Detail, f.Name) {
					t.Errorf("outcome %q does not name %s", d.Remediators[0].Detail, f.Name)
				}
			}
		}
		if !kinds["heap"] || !kinds["goroutine"] {
			t.Errorf("stored %v, want a heap and a goroutine profile of the pod", files)
		}
		p, err := needLab(t).Admin.CoreV1().Pods(w.Namespace).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ann := p.Annotations[profile.AnnotationProfile]; !strings.Contains(ann, "heap") {
			t.Errorf("annotation %s = %q, want the files named", profile.AnnotationProfile, ann)
		}
	})

	// A real heap profile over maxBytes: reading stops at the cap, the
	// decision is held, nothing is left in the directory (no temporary
	// file either) and the pod is not annotated.
	t.Run("over maxBytes", func(t *testing.T) {
		dir := t.TempDir()
		small, err := profile.NewStore(dir, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		e := newProfilingEngine(t, leakguardClient(t), strings.Replace(profilePodPolicy, "maxBytes: 8388608", "maxBytes: 64", 1), budgetNamespace(t),
			profile.Deps{Store: small})
		profiledPod(ctx, t, w.Namespace, "big", "", 6060, true)
		pods := needLab(t).Admin.CoreV1().Pods(w.Namespace)
		before, err := pods.Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.DecideOne(ctx, alert("ContainerMemoryLeak", map[string]string{"namespace": w.Namespace, "pod": "big", "container": "app"}))
		if err != nil {
			t.Fatalf("DecideOne: %v", err)
		}
		if d.Decision != remediate.DecisionHeld || d.Reason != profile.ReasonProfileTooLarge {
			t.Fatalf("decision %s %s %s, want held by %s", d.Decision, d.Reason, d.Message, profile.ReasonProfileTooLarge)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("the profile directory holds %d files after a profile over the cap, want none", len(entries))
		}
		after, err := pods.Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The engine's cooldown claim on the pod is written and given back
		// when profile holds: the annotations are as they were.
		if diff := cmp.Diff(before.Annotations, after.Annotations); diff != "" {
			t.Errorf("the pod's annotations changed (-before +after):\n%s", diff)
		}
	})

	// Two deliveries' profiles with one fetch slot: the second waits in
	// the store, not at the pod, until the first is done; both are kept.
	t.Run("one fetch slot", func(t *testing.T) {
		one, err := profile.NewStore(t.TempDir(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		one.MaxFetches = 1
		e := newProfilingEngine(t, leakguardClient(t), strings.Replace(profilePodPolicy, "timeout: 5s", "timeout: 60s, profiles: [heap]", 1), budgetNamespace(t),
			profile.Deps{Store: one})
		var inFlight, most atomic.Int64
		entered, release := make(chan struct{}, 4), make(chan struct{})
		held := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			entered <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			lab.PprofHandler().ServeHTTP(rw, r)
		})
		profiledPodServing(ctx, t, w.Namespace, "slot-a", "", 6060, held)
		profiledPodServing(ctx, t, w.Namespace, "slot-b", "", 6060, held)
		decisions := make(chan remediate.Decision, 2)
		for _, pod := range []string{"slot-a", "slot-b"} {
			go func() {
				d, err := e.DecideOne(ctx, alert("ContainerMemoryLeak", map[string]string{"namespace": w.Namespace, "pod": pod, "container": "app"}))
				if err != nil {
					d.Message = err.Error()
				}
				decisions <- d
			}()
		}
		select {
		case <-entered:
		case <-time.After(60 * time.Second):
			close(release)
			t.Fatal("no fetch reached a pod")
		}
		waited := false
		for range 1200 {
			if waited = one.FetchesWaiting() == 1; waited {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		close(release)
		if !waited {
			t.Fatal("the second fetch never waited for the slot (60 s)")
		}
		for range 2 {
			if d := <-decisions; d.Decision != remediate.DecisionActed {
				t.Errorf("decision %s %s %s, want acted", d.Decision, d.Reason, d.Message)
			}
		}
		if most.Load() != 1 {
			t.Errorf("%d fetches at once reached the pods, want 1", most.Load())
		}
		if files, _ := one.List(); len(files) != 2 {
			t.Errorf("stored %v, want both heap profiles", files)
		}
	})
}

const profileAPIServerPolicy = `
rateLimit: {perMinute: 600, burst: 100}
alerts:
  KubeAPIServerMemoryHigh:
    target: apiserver
    check: {name: none}
    remediators:
      - name: profile
        args: {timeout: 10s, growthAfter: 0s, apiserverPort: %s}
`

// apiserverNode creates, in l, a node whose InternalIP is the lab's
// apiserver address: the node the apiserver runs on.
func apiserverNode(ctx context.Context, t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	must(t, "create node "+name, func() error {
		n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
		_, err = c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

func labPort(t *testing.T, l *lab.Lab) string {
	t.Helper()
	u, err := url.Parse(l.Host())
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func apiserverAlert(node string) map[string]string { return map[string]string{"node": node} }

// The heap of the apiserver on the alerting node, at its own address,
// with leakguard's service-account token and the cluster CA: the shared
// lab runs --profiling=false, and gets a held "profiling disabled"; a lab
// of its own with profiling on gives a real heap profile.
func TestProfileRealAPIServer(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)

	t.Run("profiling disabled", func(t *testing.T) {
		node := fmt.Sprintf("cp-off-%d", worldSeq.Add(1))
		apiserverNode(ctx, t, l.Admin, node)
		store, _ := profile.NewStore(t.TempDir(), 0, 0)
		e := newProfilingEngine(t, leakguardClient(t), fmt.Sprintf(profileAPIServerPolicy, labPort(t, l)), budgetNamespace(t), profile.Deps{Store: store, Config: leakguardConfig})
		d, err := e.DecideOne(ctx, alert("KubeAPIServerMemoryHigh", apiserverAlert(node)))
		if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != profile.ReasonProfilingDisabled {
			t.Fatalf("decision %s %s %s (%v), want held by %s", d.Decision, d.Reason, d.Message, err, profile.ReasonProfilingDisabled)
		}
	})

	t.Run("profiling on", func(t *testing.T) {
		bin, err := lab.FindBinaries(repoRoot)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		own := lab.New(t, lab.Options{BinDir: bin, Profiling: true})
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ns, name, cfg, err := installLeakguard(sctx, own)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("a lab with profiling on, and leakguard's RBAC in it, in %s", time.Since(start).Round(time.Millisecond))
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		apiserverNode(sctx, t, own.Admin, "cp-1")
		store, _ := profile.NewStore(t.TempDir(), 0, 0)
		e := newProfilingEngine(t, c, fmt.Sprintf(profileAPIServerPolicy, labPort(t, own)), ns, profile.Deps{Store: store, Config: rest.CopyConfig(cfg)})
		fetch := time.Now()
		d, err := e.DecideOne(sctx, alert("KubeAPIServerMemoryHigh", apiserverAlert("cp-1")))
		if err != nil || d.Decision != remediate.DecisionActed {
			t.Fatalf("decision %s %s %s (%v) %+v, want acted (as %s/%s)", d.Decision, d.Reason, d.Message, err, d.Remediators, ns, name)
		}
		t.Logf("the apiserver's heap profile in %s", time.Since(fetch).Round(time.Millisecond))
		files, _ := store.List()
		if len(files) != 1 || !strings.Contains(files[0].Name, "_heap_") || !isGzip(t, filepath.Join(store.Dir, files[0].Name)) || files[0].Size < 1000 {
			t.Fatalf("stored %v, want one gzipped heap profile", files)
		}
		t.Logf("%s: %d bytes", files[0].Name, files[0].Size)
		// The real apiserver's heap summarized: its size in use and its
		// top sites, fully qualified; no Prometheus here, so the object
		// kinds are missing and the outcome says why.
		out := d.Remediators[0].Detail
		if !strings.Contains(out, "heap in use ") || !strings.Contains(out, "objects: unknown (no Prometheus to ask)") {
			t.Errorf("outcome %q, want the heap's summary", out)
		}
		t.Logf("outcome: %s", out)
	})
}

// newProfilingEngine is newEngineWithPolicy with the profile remediator
// built with deps (its store and client configuration), as serve builds
// it.
func newProfilingEngine(t *testing.T, c kubernetes.Interface, policy, namespace string, deps profile.Deps) *remediate.Engine {
	t.Helper()
	p, err := remediate.ParsePolicy([]byte(policy), builtin.New(builtin.Deps{Profile: deps}))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	e, err := remediate.NewEngine(remediate.Options{Client: c, Querier: &answerQuerier{value: confirmingValue}, Policy: p, Namespace: namespace, QueryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}
