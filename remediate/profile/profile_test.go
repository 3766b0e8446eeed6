package profile

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/remediatetest"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// proxyClient is the fake clientset whose core REST client (the one
// pods/proxy goes through) talks to a loopback server standing in for
// the API server's proxy.
type proxyClient struct {
	*fake.Clientset
	core proxyCore
}

type proxyCore struct {
	corev1client.CoreV1Interface
	rc rest.Interface
}

func (c proxyCore) RESTClient() rest.Interface             { return c.rc }
func (c proxyClient) CoreV1() corev1client.CoreV1Interface { return c.core }

var _ kubernetes.Interface = proxyClient{}

// pprofProxy serves the pods/proxy path of shop/web-7d9-abcde on port
// 6060 with body per profile kind.
func pprofProxy(t *testing.T, body map[string][]byte, hang bool) (proxyClient, *fake.Clientset, *[]string) {
	t.Helper()
	var paths []string
	pc, cs := pprofProxyHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if hang {
			<-r.Context().Done()
			return
		}
		prefix := "/api/v1/namespaces/shop/pods/web-7d9-abcde:6060/proxy/debug/pprof/"
		b, ok := body[strings.TrimPrefix(r.URL.Path, prefix)]
		if !strings.HasPrefix(r.URL.Path, prefix) || !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	return pc, cs, &paths
}

// pprofProxyHandler is pprofProxy with h standing in for the API
// server's proxy.
func pprofProxyHandler(t *testing.T, h http.Handler) (proxyClient, *fake.Clientset) {
	t.Helper()
	return pprofProxyOver(t, h, remediatetest.Fixtures())
}

// pprofProxyOver is pprofProxyHandler over the cluster objs.
func pprofProxyOver(t *testing.T, h http.Handler, objs []runtime.Object) (proxyClient, *fake.Clientset) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	rc, err := rest.RESTClientFor(&rest.Config{Host: srv.URL, APIPath: "/api", ContentConfig: rest.ContentConfig{GroupVersion: &corev1.SchemeGroupVersion, NegotiatedSerializer: scheme.Codecs.WithoutConversion()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p.Name == "web-7d9-abcde" {
			p.Annotations = map[string]string{AnnotationPprofPort: "6060"}
		}
	}
	cs := remediatetest.NewCluster(t, objs...)
	return proxyClient{Clientset: cs, core: proxyCore{CoreV1Interface: cs.CoreV1(), rc: rc}}, cs
}

func newProfileT(t *testing.T, args string, deps Deps) Profile {
	t.Helper()
	r, err := New(json.RawMessage(args), deps)
	if err != nil {
		t.Fatalf("NewProfile(%s) = %v", args, err)
	}
	return r.(Profile)
}

func testStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func workloadTarget(t *testing.T, c kubernetes.Interface) *remediate.Target {
	t.Helper()
	tg, err := remediate.ResolveTarget(context.Background(), c, remediate.TargetWorkload, remediatetest.LeakAlert())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestProfileThroughPodsProxy(t *testing.T) {
	pc, cs, paths := pprofProxy(t, map[string][]byte{"heap": []byte("HEAP"), "goroutine": []byte("GOROUTINES")}, false)
	store := testStore(t)
	p := newProfileT(t, `{}`, Deps{Store: store}).Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now)
	if p.Hold != "" {
		t.Fatalf("held by %s: %s", p.Hold, p.Detail)
	}
	out, err := p.Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := store.List()
	if len(files) != 2 {
		t.Fatalf("stored %v, want 2 files", files)
	}
	for _, f := range files {
		if !strings.Contains(out, f.Name) {
			t.Errorf("outcome %q does not name %s", out, f.Name)
		}
		b, _ := os.ReadFile(filepath.Join(store.Dir, f.Name))
		if want := map[bool]string{true: "HEAP", false: "GOROUTINES"}[strings.Contains(f.Name, "_heap_")]; string(b) != want {
			t.Errorf("%s holds %q, want %q", f.Name, b, want)
		}
	}
	if got := strings.Join(*paths, " "); !strings.Contains(got, "web-7d9-abcde:6060/proxy/debug/pprof/heap") {
		t.Errorf("fetched %s, want pods/proxy of the pod on its port", got)
	}
	d, _ := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if ann := d.Annotations[AnnotationProfile]; !strings.Contains(ann, files[0].Name) || !strings.Contains(ann, files[1].Name) {
		t.Errorf("annotation %s = %q, want both files", AnnotationProfile, ann)
	}
}

func TestProfileHeldAndFailed(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2048)
	for _, tc := range []struct {
		name     string
		args     string
		body     map[string][]byte
		hang     bool
		noStore  bool
		want     string // the HeldError's reason, or "error"
		notFound bool
	}{
		{name: "over the size cap", args: `{"maxBytes": 1024}`, body: map[string][]byte{"heap": big, "goroutine": []byte("g")}, want: ReasonProfileTooLarge},
		{name: "exactly the cap", args: `{"maxBytes": 2048, "profiles": ["heap"]}`, body: map[string][]byte{"heap": big}, want: ""},
		{name: "a fetch that hangs", args: `{"timeout": "200ms"}`, hang: true, want: ReasonProfileFailed},
		{name: "404 from the pod", args: `{}`, body: map[string][]byte{}, want: ReasonProfileFailed},
		{name: "required", args: `{"required": true, "maxBytes": 1024}`, body: map[string][]byte{"heap": big}, want: "error"},
		{name: "no store", args: `{}`, noStore: true, want: ReasonNoProfileStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, _, _ := pprofProxy(t, tc.body, tc.hang)
			store := testStore(t)
			env := remediate.Env{Client: pc, Now: remediatetest.Now}
			deps := Deps{Store: store}
			if tc.noStore {
				deps.Store = nil
			}
			start := time.Now()
			_, err := newProfileT(t, tc.args, deps).Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).Apply(context.Background(), env)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s: the timeout did not bound the fetch", took)
			}
			var held *remediate.HeldError
			got := ""
			switch {
			case errors.As(err, &held):
				got = held.Reason
			case err != nil:
				got = "error"
			}
			if got != tc.want {
				t.Fatalf("Apply: %q (%v), want %q", got, err, tc.want)
			}
			if files, _ := store.List(); tc.want != "" && len(files) != 0 {
				t.Errorf("stored %v after a failure", files)
			}
		})
	}
}

func TestProfileNeedsOptIn(t *testing.T) {
	cs := remediatetest.NewCluster(t, remediatetest.Fixtures()...)
	if p := newProfileT(t, `{}`, Deps{}).Plan(workloadTarget(t, cs), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now); p.Hold != ReasonNoPprofPort {
		t.Errorf("held by %q, want %s", p.Hold, ReasonNoPprofPort)
	}
}

// apiserverTarget is the static pod of an apiserver on node cp1, whose
// InternalIP and port are addr's, with the deps that reach it: a store
// and the service account's token and CA.
func apiserverEnv(t *testing.T, h http.Handler) (remediate.Env, Deps, *remediate.Target, int) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	host, portS, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portS)
	objs := remediatetest.Fixtures()
	for _, o := range objs {
		if n, ok := o.(*corev1.Node); ok && n.Name == "cp1" {
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}}
		}
	}
	cs := remediatetest.NewCluster(t, objs...)
	tg, err := remediate.ResolveTarget(context.Background(), cs, remediate.TargetAPIServer, remediatetest.Alert("firing", map[string]string{"alertname": "KubeAPIServerMemoryHigh", "node": "cp1"}))
	if err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return remediate.Env{Client: cs, Now: remediatetest.Now}, Deps{Store: testStore(t), Config: &rest.Config{BearerToken: "sa-token", TLSClientConfig: rest.TLSClientConfig{CAData: ca}}}, tg, port
}

func TestProfileAPIServer(t *testing.T) {
	var auth string
	env, deps, tg, port := apiserverEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.URL.Path != "/debug/pprof/heap" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("APISERVER-HEAP"))
	}))
	p := newProfileT(t, `{"apiserverPort": `+strconv.Itoa(port)+`}`, deps).Plan(tg, remediate.Finding{Alert: remediatetest.Alert("firing", map[string]string{"alertname": "KubeAPIServerMemoryHigh", "node": "cp1"})}, remediatetest.Now)
	out, err := p.Apply(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer sa-token" {
		t.Errorf("Authorization %q, want the service account's token", auth)
	}
	files, _ := deps.Store.List()
	if len(files) != 1 || !strings.Contains(out, files[0].Name) || !strings.Contains(files[0].Name, "kube-apiserver-cp1_heap") {
		t.Errorf("stored %v, outcome %q", files, out)
	}
}

func TestProfileAPIServerProfilingDisabled(t *testing.T) {
	env, deps, tg, port := apiserverEnv(t, http.NotFoundHandler())
	for _, args := range []string{`{"apiserverPort": %d}`, `{"apiserverPort": %d, "required": true}`} {
		p := newProfileT(t, strings.Replace(args, "%d", strconv.Itoa(port), 1), deps).Plan(tg, remediate.Finding{}, remediatetest.Now)
		_, err := p.Apply(context.Background(), env)
		var held *remediate.HeldError
		if !errors.As(err, &held) || held.Reason != ReasonProfilingDisabled || !strings.Contains(held.Detail, "--profiling=false") {
			t.Errorf("%s: Apply = %v, want held by %s", args, err, ReasonProfilingDisabled)
		}
	}
}

func TestProfileStoreRetention(t *testing.T) {
	s, err := NewStore(t.TempDir(), 25, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	save := func(name string, at time.Time, n int) string {
		t.Helper()
		f, err := s.Save([]string{name}, at, bytes.Repeat([]byte("x"), n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(s.Dir, f), at, at); err != nil {
			t.Fatal(err)
		}
		return f
	}
	old := save("old", remediatetest.Now.Add(-2*time.Hour), 1)
	a := save("a", remediatetest.Now.Add(-3*time.Minute), 10)
	b := save("b", remediatetest.Now.Add(-2*time.Minute), 10)
	s.Prune(remediatetest.Now)
	names := func() []string {
		fs, _ := s.List()
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names(); len(got) != 2 || got[0] != b || got[1] != a {
		t.Errorf("after pruning by age: %v, want %s then %s (%s is past the 1h age)", got, b, a, old)
	}
	c := save("c", remediatetest.Now.Add(-time.Minute), 10)
	if got := names(); len(got) != 2 || got[0] != c || got[1] != b {
		t.Errorf("after pruning by size: %v, want %s, %s (the oldest went to fit 25 bytes)", got, c, b)
	}
	// Only names of stored profiles open: no path leaves the directory.
	for _, bad := range []string{"../x.pb.gz", "x.pb.gz/..", ".tmp-1", "/etc/passwd", ""} {
		if _, err := s.Open(bad); !errors.Is(err, ErrProfileNotFound) {
			t.Errorf("Open(%q) = %v, want ErrProfileNotFound", bad, err)
		}
	}
	f, err := s.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// endless is a profile that never ends, counting the bytes read from it.
type endless struct{ read int64 }

func (e *endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'x'
	}
	e.read += int64(len(b))
	return len(b), nil
}

// storeEntries is every file in the store's directory, temporary files
// included.
func storeEntries(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A profile over the cap is refused while it is read: reading stops one
// byte past the cap (an endless body would otherwise never end), and
// nothing is left in the store, no temporary file either. One at the cap
// is kept whole.
func TestProfileStoreCapWhileReading(t *testing.T) {
	const limit = 1 << 20
	s := testStore(t)
	src := &endless{}
	_, _, err := s.SaveFrom([]string{"shop-web", "heap"}, remediatetest.Now, src, limit)
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("SaveFrom(endless) = %v, want errTooLarge", err)
	}
	if src.read != limit+1 {
		t.Errorf("read %d bytes of the endless profile, want %d (the cap and one)", src.read, limit+1)
	}
	if got := storeEntries(t, s); len(got) != 0 {
		t.Errorf("the store holds %q after a profile over the cap, want nothing", got)
	}
	name, n, err := s.SaveFrom([]string{"shop-web", "heap"}, remediatetest.Now, bytes.NewReader(bytes.Repeat([]byte("y"), limit)), limit)
	if err != nil || n != limit {
		t.Fatalf("SaveFrom(at the cap) = %q, %d, %v; want it kept", name, n, err)
	}
	if got := storeEntries(t, s); len(got) != 1 || got[0] != name {
		t.Errorf("the store holds %q, want only %s", got, name)
	}
}

// Through pods/proxy, a profile over maxBytes is held profile-too-large
// and the directory keeps no trace of it.
func TestProfileTooLargeLeavesNothing(t *testing.T) {
	pc, _, _ := pprofProxy(t, map[string][]byte{"heap": bytes.Repeat([]byte("x"), 64<<10)}, false)
	store := testStore(t)
	_, err := newProfileT(t, `{"maxBytes": 4096, "profiles": ["heap"]}`, Deps{Store: store}).Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).
		Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
	var held *remediate.HeldError
	if !errors.As(err, &held) || held.Reason != ReasonProfileTooLarge || !strings.Contains(held.Detail, "4096 bytes") {
		t.Fatalf("Apply = %v, want held by %s naming the cap", err, ReasonProfileTooLarge)
	}
	if got := storeEntries(t, store); len(got) != 0 {
		t.Errorf("the store holds %q, want nothing", got)
	}
}

// The store bounds the fetches in flight across deliveries: of three
// profile remediations at once with MaxFetches 2, two reach the pod and
// the third waits for a slot until one is done; one whose context ends
// while it waits gives up without reaching the pod. Channels only, no
// timing.
func TestProfileFetchSlots(t *testing.T) {
	var (
		mu               sync.Mutex
		inFlight, most   int
		requests         int
		entered, release = make(chan struct{}, 8), make(chan struct{})
	)
	pc, _ := pprofProxyHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		requests++
		most = max(most, inFlight)
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("HEAP"))
	}))
	store := testStore(t)
	store.MaxFetches = 2
	prof := newProfileT(t, `{"profiles": ["heap"]}`, Deps{Store: store})
	var targets []*remediate.Target
	for range 4 {
		targets = append(targets, workloadTarget(t, pc))
	}
	apply := func(ctx context.Context, i int) error {
		_, err := prof.Plan(targets[i], remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).
			Apply(ctx, remediate.Env{Client: pc, Now: remediatetest.Now.Add(time.Duration(i) * time.Second)})
		return err
	}
	done := make(chan error, 3)
	for i := range 3 {
		go func() { done <- apply(context.Background(), i) }()
	}
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatal("two fetches never reached the pod")
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for range 2000 {
			if cond() {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(release)
		t.Fatalf("timed out after 10s waiting for %s", what)
	}
	waitFor("the third fetch to wait for a slot", func() bool { return store.FetchesWaiting() == 1 })

	// A fourth whose delivery ends while it waits: no request, held.
	ctx, cancel := context.WithCancel(context.Background())
	fourth := make(chan error, 1)
	go func() { fourth <- apply(ctx, 3) }()
	waitFor("the fourth fetch to wait for a slot", func() bool { return store.FetchesWaiting() == 2 })
	cancel()
	var held *remediate.HeldError
	if err := <-fourth; !errors.As(err, &held) || held.Reason != ReasonProfileFailed || !strings.Contains(held.Detail, "slot") {
		t.Errorf("fourth Apply = %v, want held by %s waiting for a slot", err, ReasonProfileFailed)
	}

	close(release)
	for range 3 {
		if err := <-done; err != nil {
			t.Errorf("Apply = %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 2 || requests != 3 {
		t.Errorf("%d fetches at most in flight of %d requests, want 2 of 3", most, requests)
	}
	if files, _ := store.List(); len(files) != 3 {
		t.Errorf("stored %v, want the three profiles", files)
	}
}

// A temporary file that a fetch stopped writing an hour ago (its process
// died mid-stream) goes at the next prune; one being written stays.
func TestProfileStoreRemovesStaleTemps(t *testing.T) {
	s := testStore(t)
	stale, fresh := filepath.Join(s.Dir, ".tmp-1"), filepath.Join(s.Dir, ".tmp-2")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	s.Prune(remediatetest.Now)
	if diff := cmp.Diff([]string{".tmp-2"}, storeEntries(t, s)); diff != "" {
		t.Errorf("after Prune (-want +got):\n%s", diff)
	}
}

// TestProfileOutcomeNamesReplica: the outcome, which the engine writes as
// the LeakguardActed Event's message, names the replica whose store holds
// the profiles (GET /profiles through the Service reaches any replica),
// and names none when the store has no replica name.
func TestProfileOutcomeNamesReplica(t *testing.T) {
	for _, tc := range []struct {
		name, replica, want string
	}{
		{"named", "leakguard-serve-6d9f-abcde", "; on replica leakguard-serve-6d9f-abcde (its GET /profiles)"},
		{"unnamed", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, _, _ := pprofProxy(t, map[string][]byte{"heap": []byte("HEAP"), "goroutine": []byte("GOROUTINES")}, false)
			store := testStore(t)
			store.Replica = tc.replica
			out, err := newProfileT(t, `{}`, Deps{Store: store}).Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).
				Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
			if err != nil {
				t.Fatal(err)
			}
			// The files, the replica, then the summaries.
			if !strings.HasPrefix(out, "profiles stored: heap ") || !strings.Contains(out, "bytes)"+tc.want+". heap summary missing") {
				t.Errorf("outcome %q, want the stored files then %q, then the summaries", out, tc.want)
			}
			if tc.want == "" && strings.Contains(out, "replica") {
				t.Errorf("outcome %q names a replica, want none", out)
			}
		})
	}
}
