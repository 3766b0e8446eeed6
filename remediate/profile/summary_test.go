package profile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/check"
	"github.com/leakguard/leakguard/remediate/remediatetest"
	"github.com/leakguard/leakguard/remediate/restart"

	"github.com/google/go-cmp/cmp"
	pprofile "github.com/google/pprof/profile"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// retained keeps what leakyAlloc allocated reachable, as a leak would.
var retained [][]byte

// leakyAlloc is the known allocation site the tests look for.
//
//go:noinline
func leakyAlloc(n int) []byte {
	return make([]byte, n)
}

// leakyName is leakyAlloc as pprof names it.
const leakyName = "github.com/leakguard/leakguard/remediate/profile.leakyAlloc"

// leak retains n chunks of 256 KiB through leakyAlloc.
func leak(n int) {
	for range n {
		retained = append(retained, leakyAlloc(256<<10))
	}
}

// sampleEverything makes the heap profile record every allocation for
// the test, and drops what leak retained after it.
func sampleEverything(t *testing.T) {
	t.Helper()
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	t.Cleanup(func() { runtime.MemProfileRate = old; retained = nil })
}

// liveProxy serves this test process's own heap and goroutine profiles
// through the pods/proxy path of shop/web-7d9-abcde on port 6060, as the
// pod's net/http/pprof would, counting the requests per kind.
func liveProxy(t *testing.T) (proxyClient, func(kind string) int) {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	pc, _ := pprofProxyHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := strings.TrimPrefix(r.URL.Path, "/api/v1/namespaces/shop/pods/web-7d9-abcde:6060/proxy/debug/pprof/")
		mu.Lock()
		counts[kind]++
		mu.Unlock()
		p := pprof.Lookup(kind)
		if p == nil || strings.Contains(kind, "/") {
			http.NotFound(w, r)
			return
		}
		if kind == "heap" {
			runtime.GC()
		}
		_ = p.WriteTo(w, 0)
	}))
	return pc, func(kind string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[kind]
	}
}

// growthPart is the part of an outcome or annotation after "grew: ".
func growthPart(t *testing.T, out string) string {
	t.Helper()
	_, after, ok := strings.Cut(out, "grew: ")
	if !ok {
		t.Fatalf("%q has no growth part", out)
	}
	return after
}

// The leaking workload's outcome (its Event) names the leaking function
// first among what grew between the first heap profile and the second,
// taken growthAfter later (the wait stands in for it, leaking 8 MiB);
// both are stored, the second's record names the first as its base, and
// the annotation keeps the files' names with the summary.
func TestProfileSummaryGrowthAfter(t *testing.T) {
	sampleEverything(t)
	leak(4)
	pc, fetches := liveProxy(t)
	store := testStore(t)
	p := newProfileT(t, `{"growthAfter": "2m"}`, Deps{Store: store})
	var waited []time.Duration
	p.wait = func(_ context.Context, d time.Duration) error {
		waited = append(waited, d)
		leak(32)
		return nil
	}
	tg := workloadTarget(t, pc)
	out, err := p.Plan(tg, remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outcome (%d bytes): %s", len(out), out)
	if len(waited) != 1 || waited[0] != 2*time.Minute {
		t.Errorf("waited %v, want once growthAfter (2m)", waited)
	}
	if got := fetches("heap"); got != 2 {
		t.Errorf("%d heap fetches, want 2", got)
	}
	if g := growthPart(t, out); !strings.HasPrefix(g, leakyName+" +") {
		t.Errorf("what grew starts %q, want %s first\n%s", g, leakyName, out)
	}
	if len(out) > maxOutcomeBytes {
		t.Errorf("outcome of %d bytes, over %d", len(out), maxOutcomeBytes)
	}
	files, _ := store.List()
	var heaps []string
	for _, f := range files {
		if strings.Contains(f.Name, "_heap_") {
			heaps = append(heaps, f.Name)
		}
	}
	if len(files) != 3 || len(heaps) != 2 {
		t.Fatalf("stored %v, want two heap profiles and a goroutine profile", files)
	}
	second, first := heaps[0], heaps[1] // newest first
	if !strings.Contains(second, "20261123t120200.000z") {
		t.Errorf("second heap profile %s, want it named growthAfter after the first", second)
	}
	if !strings.Contains(out, "heap growth since "+first+" (2m0s earlier): net +") {
		t.Errorf("outcome does not say which profiles it compares over how long:\n%s", out)
	}
	rec, err := store.ReadRecord(second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Base != first || rec.Summary == nil || rec.Summary.Growth == nil || rec.Summary.Growth.Grew[0].Function != leakyName {
		t.Errorf("record of %s: base %q, summary %+v; want the growth since %s", second, rec.Base, rec.Summary, first)
	}
	if rec, err := store.ReadRecord(first); err != nil || rec.Summary == nil || rec.Summary.Growth != nil {
		t.Errorf("record of %s = %+v, %v; want its own summary", first, rec, err)
	}
	for _, f := range files {
		if rec, err := store.ReadRecord(f.Name); err != nil || rec.Text == "" {
			t.Errorf("record of %s = %+v, %v; want one with a text", f.Name, rec, err)
		}
	}
	if !strings.Contains(out, "goroutines ") {
		t.Errorf("outcome has no goroutine summary:\n%s", out)
	}
	d, _ := pc.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	ann := d.Annotations[AnnotationProfile]
	for _, f := range files {
		if !strings.Contains(ann, f.Name) {
			t.Errorf("annotation %q does not name %s", ann, f.Name)
		}
	}
	if g := growthPart(t, ann); !strings.HasPrefix(g, leakyName+" +") || len(ann) > maxAnnotationBytes {
		t.Errorf("annotation (%d bytes) %q, want %s first in what grew, at most %d bytes", len(ann), ann, leakyName, maxAnnotationBytes)
	}
}

// An earlier stored heap profile of the same process is the base, with
// no wait and no second fetch; one of another process (the container
// restarted since) is not, and profile waits instead.
func TestProfileSummaryStoredBase(t *testing.T) {
	sampleEverything(t)
	leak(4)
	pc, fetches := liveProxy(t)
	store := testStore(t)
	earlier := remediatetest.Now.Add(-10 * time.Minute)
	env := func(at time.Time) remediate.Env { return remediate.Env{Client: pc, Now: at} }
	first := newProfileT(t, `{"profiles": ["heap"], "growthAfter": "0s"}`, Deps{Store: store})
	out, err := first.Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, earlier).Apply(context.Background(), env(earlier))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "no growth: no earlier heap profile of this process is stored, and growthAfter is 0") {
		t.Errorf("first outcome does not say why it has no growth:\n%s", out)
	}
	files, _ := store.List()
	if len(files) != 1 {
		t.Fatalf("stored %v, want one heap profile", files)
	}
	base := files[0].Name
	leak(32)

	p := newProfileT(t, `{"profiles": ["heap"]}`, Deps{Store: store})
	p.wait = func(context.Context, time.Duration) error {
		t.Error("waited for a second profile with a stored base")
		return nil
	}
	out, err = p.Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).Apply(context.Background(), env(remediatetest.Now))
	if err != nil {
		t.Fatal(err)
	}
	if got := fetches("heap"); got != 2 {
		t.Errorf("%d heap fetches in all, want 2 (one each, no second fetch)", got)
	}
	if !strings.Contains(out, "heap growth since "+base+" (10m0s earlier)") {
		t.Errorf("outcome does not compare with the stored %s:\n%s", base, out)
	}
	if g := growthPart(t, out); !strings.HasPrefix(g, leakyName+" +") {
		t.Errorf("what grew starts %q, want %s first", g, leakyName)
	}

	// The container restarted: the stored profiles are of another
	// process, so profile takes a second one (it is given 0s here, so
	// the wait would not be it).
	pod, err := pc.CoreV1().Pods("shop").Get(context.Background(), "web-7d9-abcde", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", RestartCount: 1}}
	if _, err := pc.Clientset.CoreV1().Pods("shop").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waits := 0
	p.wait = func(context.Context, time.Duration) error { waits++; return nil }
	later := remediatetest.Now.Add(5 * time.Minute)
	out, err = p.Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, later).Apply(context.Background(), env(later))
	if err != nil {
		t.Fatal(err)
	}
	if waits != 1 || fetches("heap") != 4 || strings.Contains(out, "since "+base) {
		t.Errorf("after a restart: %d waits, %d heap fetches in all, outcome %q; want a second profile, not the stored base", waits, fetches("heap"), out)
	}
}

// A body that is not a pprof profile is stored all the same; its record
// and the outcome say why the summary is missing.
func TestProfileSummaryNotPprof(t *testing.T) {
	pc, _, _ := pprofProxy(t, map[string][]byte{"heap": []byte("<html>502 Bad Gateway</html>")}, false)
	store := testStore(t)
	p := newProfileT(t, `{"profiles": ["heap"]}`, Deps{Store: store})
	p.wait = func(context.Context, time.Duration) error {
		t.Error("waited for a second profile of a body that does not parse")
		return nil
	}
	out, err := p.Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := store.List()
	if len(files) != 1 {
		t.Fatalf("stored %v, want the body kept", files)
	}
	rec, err := store.ReadRecord(files[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Summary != nil || !strings.Contains(rec.Missing, "not a pprof profile") {
		t.Errorf("record %+v, want no summary and why", rec)
	}
	if !strings.Contains(out, "heap summary missing: not a pprof profile") {
		t.Errorf("outcome %q does not say why the summary is missing", out)
	}
}

// With a delivery deadline that leaves less than growthAfter, a fetch
// timeout and the reserve, no second profile is taken and the summary
// says why.
func TestProfileSummaryDeadline(t *testing.T) {
	sampleEverything(t)
	pc, fetches := liveProxy(t)
	p := newProfileT(t, `{"profiles": ["heap"], "growthAfter": "1m", "timeout": "20s"}`, Deps{Store: testStore(t)})
	p.wait = func(context.Context, time.Duration) error {
		t.Error("waited past the deadline")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := p.Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).Apply(ctx, remediate.Env{Client: pc, Now: remediatetest.Now})
	if err != nil {
		t.Fatal(err)
	}
	if fetches("heap") != 1 || !strings.Contains(out, "the delivery's deadline leaves") || !strings.Contains(out, "under growthAfter 1m0s + timeout 20s + 10s") {
		t.Errorf("%d heap fetches, outcome %q; want one and why there is no growth", fetches("heap"), out)
	}
}

// fakeQuerier answers the objects query, or fails.
type fakeQuerier struct {
	vec     model.Vector
	err     error
	queries []string
}

func (f *fakeQuerier) Query(_ context.Context, q string, _ time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	f.queries = append(f.queries, q)
	return f.vec, nil, nil, f.err
}

// The apiserver's heap summary carries the object kinds that dominate,
// from Prometheus; a failed query leaves them out with the reason and
// fails nothing.
func TestProfileSummaryAPIServerObjects(t *testing.T) {
	sampleEverything(t)
	for _, tc := range []struct {
		name    string
		q       *fakeQuerier
		cluster string
		want    string
		query   string
	}{
		{name: "objects", q: &fakeQuerier{vec: model.Vector{
			{Metric: model.Metric{"resource": "secrets"}, Value: 900},
			{Metric: model.Metric{"resource": "configmaps"}, Value: 12034},
		}}, want: "objects: configmaps 12034, secrets 900", query: "topk(5, resource:apiserver_resource_objects:max)"},
		{name: "in a fleet", cluster: "eu1", q: &fakeQuerier{vec: model.Vector{{Metric: model.Metric{"resource": "pods"}, Value: 3}}},
			want: "objects: pods 3", query: `topk(5, resource:apiserver_resource_objects:max{cluster="eu1"})`},
		{name: "query fails", q: &fakeQuerier{err: errors.New("connection refused")},
			want: "objects: unknown (topk(5, resource:apiserver_resource_objects:max): connection refused)", query: "topk(5, resource:apiserver_resource_objects:max)"},
		{name: "no series", q: &fakeQuerier{}, want: "objects: unknown (topk(5, resource:apiserver_resource_objects:max): no series)", query: "topk(5, resource:apiserver_resource_objects:max)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, deps, tg, port := apiserverEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runtime.GC()
				_ = pprof.Lookup("heap").WriteTo(w, 0)
			}))
			deps.Querier, deps.Cluster = tc.q, tc.cluster
			p := newProfileT(t, `{"growthAfter": "0s", "apiserverPort": `+strconv.Itoa(port)+`}`, deps)
			out, err := p.Plan(tg, remediate.Finding{}, remediatetest.Now).Apply(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "heap in use ") || !strings.Contains(out, "; "+tc.want) {
				t.Errorf("outcome %q, want the heap's summary and %q", out, tc.want)
			}
			if len(tc.q.queries) != 1 || tc.q.queries[0] != tc.query {
				t.Errorf("queries %q, want %q", tc.q.queries, tc.query)
			}
			files, _ := deps.Store.List()
			rec, err := deps.Store.ReadRecord(files[0].Name)
			if err != nil {
				t.Fatal(err)
			}
			if (len(rec.Objects) == 0) == (rec.NoObjects == "") {
				t.Errorf("record: objects %v, why none %q; want one of them", rec.Objects, rec.NoObjects)
			}
		})
	}
}

// A pod's profile asks no objects.
func TestProfileSummaryPodAsksNoObjects(t *testing.T) {
	pc, _, _ := pprofProxy(t, map[string][]byte{"heap": []byte("x")}, false)
	q := &fakeQuerier{}
	_, err := newProfileT(t, `{"profiles": ["heap"]}`, Deps{Store: testStore(t), Querier: q}).Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).
		Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
	if err != nil || len(q.queries) != 0 {
		t.Errorf("Apply = %v, queries %q; want none", err, q.queries)
	}
}

// longNamed builds a profile of kind heap (inuse_space) or goroutine
// whose functions have names of 300 bytes, with values scaled by scale.
func longNamed(t *testing.T, kind string, scale int64) []byte {
	t.Helper()
	p := &pprofile.Profile{TimeNanos: remediatetest.Now.UnixNano() + scale}
	if kind == "heap" {
		p.SampleType = []*pprofile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}}
	} else {
		p.SampleType = []*pprofile.ValueType{{Type: "goroutine", Unit: "count"}}
	}
	for i := range 6 {
		fn := &pprofile.Function{ID: uint64(i + 1), Name: "example.com/" + strings.Repeat(string(rune('a'+i)), 300)}
		loc := &pprofile.Location{ID: uint64(i + 1), Line: []pprofile.Line{{Function: fn}}}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
		v := []int64{scale * int64(i+1), scale * int64(i+1) << 20}
		if kind != "heap" {
			v = v[:1]
		}
		p.Sample = append(p.Sample, &pprofile.Sample{Location: []*pprofile.Location{loc, p.Location[0]}, Value: v})
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The annotation and the outcome stay within their bounds however long
// the functions' names, keeping the files' names and what grew first.
func TestProfileSummaryBounded(t *testing.T) {
	heaps := [][]byte{longNamed(t, "heap", 1), longNamed(t, "heap", 3)}
	n := 0
	pc, cs := pprofProxyHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch path.Base(r.URL.Path) {
		case "heap":
			_, _ = w.Write(heaps[min(n, 1)])
			n++
		case "allocs":
			_, _ = w.Write(heaps[1])
		default:
			_, _ = w.Write(longNamed(t, "goroutine", 2))
		}
	}))
	store := testStore(t)
	p := newProfileT(t, `{"profiles": ["heap", "goroutine", "allocs"]}`, Deps{Store: store})
	p.wait = func(context.Context, time.Duration) error { return nil }
	out, err := p.Plan(workloadTarget(t, pc), remediate.Finding{Alert: remediatetest.LeakAlert()}, remediatetest.Now).Apply(context.Background(), remediate.Env{Client: pc, Now: remediatetest.Now})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	ann := d.Annotations[AnnotationProfile]
	files, _ := store.List()
	if len(files) != 4 {
		t.Fatalf("stored %v, want 4 profiles", files)
	}
	var full int
	for _, f := range files {
		if !strings.Contains(ann, f.Name) || !strings.Contains(out, f.Name) {
			t.Errorf("annotation %q or outcome %q does not name %s", ann, out, f.Name)
		}
		rec, err := store.ReadRecord(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		full += len(rec.Text)
	}
	if full <= maxAnnotationBytes {
		t.Fatalf("the summaries have %d bytes in all: too few to test the bound", full)
	}
	if len(ann) > maxAnnotationBytes {
		t.Errorf("annotation of %d bytes, want at most %d: %q", len(ann), maxAnnotationBytes, ann)
	}
	if g := growthPart(t, ann); !strings.HasPrefix(g, "example.com/fff") {
		t.Errorf("annotation's growth starts %q, want the largest growth first", g)
	}
	if len(out) > maxOutcomeBytes {
		t.Errorf("outcome of %d bytes, want at most %d: %q", len(out), maxOutcomeBytes, out)
	}
	if g := growthPart(t, out); !strings.HasPrefix(g, "example.com/fff") {
		t.Errorf("what grew starts %q, want the largest growth first", g)
	}
}

// A record lives beside its profile: not listed as a profile, read back
// as written, removed with its profile by age or size, and removed when
// its profile is gone.
func TestProfileStoreRecords(t *testing.T) {
	s, err := NewStore(t.TempDir(), 1<<20, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	save := func(name string, at time.Time) string {
		t.Helper()
		f, err := s.Save([]string{name, "heap"}, at, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(s.Dir, f), at, at); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveRecord(Record{Profile: f, Kind: "heap", TakenAt: at, Missing: "why"}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	keep := save("keep", remediatetest.Now.Add(-time.Minute))
	old := save("old", remediatetest.Now.Add(-2*time.Hour))
	if files, _ := s.List(); len(files) != 2 {
		t.Errorf("List = %v, want the two profiles and no record", files)
	}
	rec, err := s.ReadRecord(keep)
	if err != nil || rec.Profile != keep || rec.Missing != "why" {
		t.Errorf("ReadRecord(%s) = %+v, %v", keep, rec, err)
	}
	if _, err := s.ReadRecord("../x.pb.gz"); !errors.Is(err, ErrProfileNotFound) {
		t.Errorf("ReadRecord of a bad name = %v, want ErrProfileNotFound", err)
	}
	if err := s.SaveRecord(Record{Profile: "../x"}); err == nil {
		t.Error("SaveRecord of a bad name succeeded")
	}
	// A record whose profile was removed by hand.
	gone := save("gone", remediatetest.Now.Add(-time.Minute))
	if err := os.Remove(filepath.Join(s.Dir, gone)); err != nil {
		t.Fatal(err)
	}
	s.Prune(remediatetest.Now)
	want := []string{keep, recordName(keep)}
	sort.Strings(want)
	if diff := cmp.Diff(want, storeEntries(t, s)); diff != "" {
		t.Errorf("after Prune (-want +got):\n%s", diff)
	}
	if _, err := s.ReadRecord(old); !errors.Is(err, ErrNoRecord) {
		t.Errorf("ReadRecord(%s) after its profile aged out = %v, want ErrNoRecord", old, err)
	}
}

// Through the engine, as serve runs it: the LeakguardActed Event of an
// entry that profiles then restarts names the leaking function first in
// what grew, and still says that restart acted (the outcome's bound
// leaves it room in the Event's 1 KiB); the second heap profile is taken
// before the restart.
func TestProfileSummaryInTheEvent(t *testing.T) {
	sampleEverything(t)
	leak(4)
	var (
		mu                    sync.Mutex
		restartedBeforeSecond bool
		heaps                 int
		cs                    *fake.Clientset
	)
	pc, cs := pprofProxyOver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := path.Base(r.URL.Path)
		mu.Lock()
		defer mu.Unlock()
		if kind == "heap" {
			heaps++
			runtime.GC()
			if heaps == 2 {
				d, _ := cs.AppsV1().Deployments("shop").Get(r.Context(), "web", metav1.GetOptions{})
				restartedBeforeSecond = d.Spec.Template.Annotations[restart.AnnotationRestartedAt] != ""
			}
		}
		_ = pprof.Lookup(kind).WriteTo(w, 0)
	}), remediatetest.RestartFixtures(nil))
	reg := remediate.NewRegistry()
	if err := reg.AddCheck(check.CheckWorkingSetSlope, check.NewWorkingSetSlope); err != nil {
		t.Fatal(err)
	}
	store := testStore(t)
	info := Info(Deps{Store: store})
	build := info.New
	info.New = func(args json.RawMessage) (remediate.Remediator, error) {
		r, err := build(args)
		if p, ok := r.(Profile); ok {
			p.wait = func(context.Context, time.Duration) error { leak(32); return nil }
			r = p
		}
		return r, err
	}
	for _, ri := range []remediate.RemediatorInfo{info, restart.Info} {
		if err := reg.AddRemediator(ri); err != nil {
			t.Fatal(err)
		}
	}
	policy, err := remediate.ParsePolicy([]byte(`
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators:
      - name: profile
      - name: restart
        enabled: true
`), reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := remediate.NewEngine(remediate.Options{Client: pc, Policy: policy, Querier: remediatetest.AnyQuerier(8 << 20), Now: func() time.Time { return remediatetest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.DecideOne(context.Background(), remediatetest.LeakAlert())
	if err != nil || d.Decision != remediate.DecisionActed {
		t.Fatalf("decision %s %s (%v) %+v, want acted", d.Decision, d.Message, err, d.Remediators)
	}
	mu.Lock()
	defer mu.Unlock()
	if heaps != 2 || restartedBeforeSecond {
		t.Errorf("%d heap fetches, restarted before the second: %v; want two, both before the restart", heaps, restartedBeforeSecond)
	}
	var msg string
	for _, ev := range remediatetest.Events(t, cs) {
		if ev.Reason == remediate.EventReasonActed && ev.InvolvedObject.Name == "web" {
			msg = ev.Message
		}
	}
	t.Logf("Event (%d bytes): %s", len(msg), msg)
	if g := growthPart(t, msg); !strings.HasPrefix(g, leakyName+" +") {
		t.Errorf("the Event's growth starts %q, want %s first", g, leakyName)
	}
	if !strings.Contains(msg, "; restart acted") {
		t.Errorf("the Event %q does not say restart acted", msg)
	}
}

// growthAfter defaults to DefaultGrowthAfter, takes "0s" as none, and
// refuses a negative or malformed duration.
func TestProfileGrowthAfterArgument(t *testing.T) {
	for _, tc := range []struct {
		args    string
		want    time.Duration
		wantErr bool
	}{
		{args: `{}`, want: DefaultGrowthAfter},
		{args: `{"growthAfter": "0s"}`, want: 0},
		{args: `{"growthAfter": "2m"}`, want: 2 * time.Minute},
		{args: `{"growthAfter": "-1s"}`, wantErr: true},
		{args: `{"growthAfter": "soon"}`, wantErr: true},
	} {
		t.Run(tc.args, func(t *testing.T) {
			r, err := New(json.RawMessage(tc.args), Deps{})
			if tc.wantErr {
				if err == nil {
					t.Errorf("New(%s) = nil error, want one", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.(Profile).GrowthAfter; got != tc.want {
				t.Errorf("GrowthAfter = %s, want %s", got, tc.want)
			}
		})
	}
}
