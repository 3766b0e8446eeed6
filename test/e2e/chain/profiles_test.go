package chain

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/remediate/profile/summary"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/server"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// storedProfile is one profile a replica lists at GET /profiles.
type storedProfile struct {
	replica *lab.Serve
	server.ProfileInfo
}

// storedProfiles lists, over every replica's GET /profiles, the profiles
// whose file name begins with subject and "_" (profile names a file
// subject_kind_time.pb.gz).
func storedProfiles(ctx context.Context, t *testing.T, c *lab.Chain, subject string) []storedProfile {
	t.Helper()
	var out []storedProfile
	for _, r := range c.Serve {
		list, err := r.Profiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			if strings.HasPrefix(p.Name, subject+"_") {
				out = append(out, storedProfile{r, p})
			}
		}
	}
	return out
}

// profileStrings decodes a pprof profile, a gzipped protocol buffer of
// perftools.profiles.Profile, and returns its string table; it fails
// unless the message parses to the end and has sample types and samples.
func profileStrings(data []byte) ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	// Profile: 1 sample_type, 2 sample, 6 string_table (repeated, length
	// delimited); the others are checked for their wire format only.
	var sampleTypes, samples int
	var strs []string
	for b := raw; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("protobuf tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(m))
			}
			switch num {
			case 1:
				sampleTypes++
			case 2:
				samples++
			case 6:
				strs = append(strs, string(v))
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(m))
		}
		b = b[m:]
	}
	if sampleTypes == 0 || samples == 0 || len(strs) == 0 || strs[0] != "" {
		return nil, fmt.Errorf("%d sample types, %d samples, %d strings (the first must be empty): not a profile", sampleTypes, samples, len(strs))
	}
	return strs, nil
}

// checkStored downloads p from its replica and checks that it is a
// profile; it returns the profile's strings.
func checkStored(ctx context.Context, t *testing.T, p storedProfile) []string {
	t.Helper()
	data, err := p.replica.Profile(ctx, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != p.Size {
		t.Errorf("%s: %d bytes downloaded, listed as %d", p.Name, len(data), p.Size)
	}
	strs, err := profileStrings(data)
	if err != nil {
		t.Errorf("%s from %s: %v", p.Name, p.replica.Name, err)
	}
	return strs
}

// recordOf decodes the summary that GET /profiles lists with p (the
// record the store keeps beside the profile); it fails the test without
// one.
func recordOf(t *testing.T, p storedProfile) *profile.Record {
	t.Helper()
	if len(p.Summary) == 0 {
		t.Errorf("GET /profiles of %s lists %s without a summary", p.replica.Name, p.Name)
		return nil
	}
	var rec profile.Record
	if err := json.Unmarshal(p.Summary, &rec); err != nil {
		t.Errorf("the summary of %s at GET /profiles: %v: %s", p.Name, err, p.Summary)
		return nil
	}
	if rec.Profile != p.Name || rec.Text == "" {
		t.Errorf("the summary of %s at GET /profiles is of %q, text %q", p.Name, rec.Profile, rec.Text)
	}
	return &rec
}

// kindOf is the kind in a profile's file name, subject_kind_time.pb.gz.
func kindOf(subject, name string) string {
	kind, _, _ := strings.Cut(strings.TrimPrefix(name, subject+"_"), "_")
	return kind
}

// testAPIServerProfiled: the lab's kube-apiserver (with --profiling) at
// 70 % of its node fires KubeAPIServerMemoryHigh; with no static pod the
// target is the node, which is annotated, and profile stores one heap
// profile, fetched from /debug/pprof/heap of the apiserver at the node's
// InternalIP as leakguard's service account (deploy/'s ClusterRole). It
// is the apiserver's heap: its functions are Kubernetes' own, which this
// test process does not link. Once: one LeakguardActed Event, the other
// replica held by the cooldown, one file over both replicas. Its summary,
// in the Event, the annotation and GET /profiles, has the heap's top
// functions, (*ConfigMap).Unmarshal among the first three, beside the
// object counts, configmaps first: the test's burst.
func testAPIServerProfiled(t *testing.T, c *lab.Chain, node lab.Node) {
	nodes := c.Admin.CoreV1().Nodes()
	waitFor(t, alertTimeout, "node "+node.Name+" annotated and the apiserver profiled", func(ctx context.Context) (bool, string, error) {
		n, err := nodes.Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", node.Name)
		if err != nil {
			return false, "", err
		}
		// Both replicas have decided once the other one is held by the
		// cooldown the first one claimed.
		return n.Annotations[annotate.AnnotationFinding] == rules.AlertKubeAPIServerMemoryHigh &&
				count(evs, remediate.EventReasonActed, profile.Name+" acted") >= 1 &&
				count(evs, remediate.EventReasonHeld, "("+remediate.ReasonCooldown+")") >= 1,
			fmt.Sprintf("annotations %v, %s", n.Annotations, describe(evs)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", node.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, ""); n != 1 {
		t.Errorf("%d LeakguardActed Events on node %s, want 1: %s", n, node.Name, describe(evs))
	}
	n, err := nodes.Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored := storedProfiles(ctx, t, c, node.Name)
	if len(stored) != 1 || kindOf(node.Name, stored[0].Name) != "heap" {
		t.Fatalf("stored profiles of %s: %+v, want one heap profile", node.Name, stored)
	}
	p := stored[0]
	if ann := n.Annotations[profile.AnnotationProfile]; !strings.Contains(ann, p.Name) {
		t.Errorf("annotation %s = %q, want it to name %s", profile.AnnotationProfile, ann, p.Name)
	}
	if count(evs, remediate.EventReasonActed, p.Name) != 1 {
		t.Errorf("no LeakguardActed Event names %s: %s", p.Name, describe(evs))
	}
	kube := false
	for _, s := range checkStored(ctx, t, p) {
		if strings.HasPrefix(s, "k8s.io/kubernetes/") || strings.HasPrefix(s, "k8s.io/apiserver/") {
			kube = true
			break
		}
	}
	if !kube {
		t.Errorf("%s names no function of k8s.io/kubernetes or k8s.io/apiserver: not the apiserver's heap", p.Name)
	}
	// The Event has the heap's summary and, beside it, the resources the
	// apiserver holds most of: the test's burst of ConfigMaps first.
	acted := ""
	for _, e := range evs {
		if e.Reason == remediate.EventReasonActed {
			acted = e.Message
		}
	}
	t.Logf("the LeakguardActed Event of node %s: %s", node.Name, acted)
	t.Logf("annotation %s of node %s: %s", profile.AnnotationProfile, node.Name, n.Annotations[profile.AnnotationProfile])
	for what, text := range map[string]string{"the LeakguardActed Event": acted, "annotation " + profile.AnnotationProfile: n.Annotations[profile.AnnotationProfile]} {
		if !strings.Contains(text, "heap in use ") || !strings.Contains(text, configMapDecoder) {
			t.Errorf("%s has no heap summary that names %s: %q", what, configMapDecoder, text)
		}
		var objects int
		if _, rest, ok := strings.Cut(text, "objects: configmaps "); !ok {
			t.Errorf("%s has no objects line that begins with configmaps: %q", what, text)
		} else if _, err := fmt.Sscan(rest, &objects); err != nil || objects < burstConfigMapCount {
			t.Errorf("%s counts %d configmaps (%v), want at least the burst's %d: %q", what, objects, err, burstConfigMapCount, text)
		}
	}
	// GET /profiles has the whole summary: the heap's top functions, the
	// apiserver's own among them, and the object counts.
	if rec := recordOf(t, p); rec != nil {
		if rec.Summary == nil || len(rec.Summary.Top) == 0 {
			t.Errorf("GET /profiles: %s has no top functions: %s", p.Name, p.Summary)
		} else if top := topFunctions(rec.Summary.Top, 3); !slices.Contains(top, configMapDecoder) {
			t.Errorf("GET /profiles: the heap of %s holds most in %q, want %s among them (the burst, decoded): %s", p.Name, top, configMapDecoder, p.Summary)
		}
		if len(rec.Objects) == 0 || rec.Objects[0].Resource != "configmaps" || rec.Objects[0].Count < burstConfigMapCount {
			t.Errorf("GET /profiles: the objects of %s are %+v, want configmaps first with at least %d", p.Name, rec.Objects, burstConfigMapCount)
		}
	}
	t.Logf("%s stored %s (%d bytes)", p.replica.Name, p.Name, p.Size)
}

// checkWorkloadProfiled checks, after testRestartedOnce saw the restart,
// that the pod of w was profiled once before it: two heap profiles (the
// second growthAfter later) and one goroutine profile, all on the replica
// that acted and none on the other, named by the Deployment's
// leakguard.io/profile and by the one LeakguardActed Event, whose summary
// names the function through which this process leaks first in what grew.
func checkWorkloadProfiled(ctx context.Context, t *testing.T, c *lab.Chain, w lab.Workload, annotation, event string) {
	t.Helper()
	subject := w.Namespace + "-" + w.Pod()
	stored := storedProfiles(ctx, t, c, subject)
	kinds := map[string]int{}
	replicas := map[string]bool{}
	for _, p := range stored {
		kinds[kindOf(subject, p.Name)]++
		replicas[p.replica.Name] = true
		if !strings.Contains(annotation, p.Name) {
			t.Errorf("annotation %s = %q does not name %s", profile.AnnotationProfile, annotation, p.Name)
		}
		if !strings.Contains(event, p.Name) {
			t.Errorf("the LeakguardActed Event does not name %s: %q", p.Name, event)
		}
		checkStored(ctx, t, p)
		t.Logf("%s stored %s (%d bytes)", p.replica.Name, p.Name, p.Size)
	}
	// Two heap profiles, growthAfter apart (remediatePolicy), and one
	// goroutine profile.
	if len(stored) != 3 || kinds["heap"] != 2 || kinds["goroutine"] != 1 {
		t.Errorf("stored profiles of %s: %+v, want two heap profiles and one goroutine profile", subject, stored)
	}
	if len(replicas) != 1 {
		t.Errorf("profiles of %s stored by %d replicas, want only the one that acted", subject, len(replicas))
	}
	// The Event names the replica that holds them (its POD_NAME), where
	// a reader fetches them.
	for r := range replicas {
		if want := "; on replica " + r + " (its GET /profiles)"; !strings.Contains(event, want) {
			t.Errorf("the LeakguardActed Event does not name the replica that stored the profiles (%q): %q", want, event)
		}
	}
	// The pod's process leaks through lab.LeakFunction while the test
	// runs: the growth between the two heap profiles names it first, in
	// the Event and in the annotation.
	t.Logf("the LeakguardActed Event of %s/%s: %s", w.Namespace, w.Name, event)
	t.Logf("annotation %s of %s/%s: %s", profile.AnnotationProfile, w.Namespace, w.Name, annotation)
	for what, text := range map[string]string{"the LeakguardActed Event": event, "annotation " + profile.AnnotationProfile: annotation} {
		if grew := heapGrowthNames(text); len(grew) == 0 || grew[0] != lab.LeakFunction {
			t.Errorf("%s does not name %s first in what grew (grew %q): %q", what, lab.LeakFunction, grew, text)
		}
	}
	// GET /profiles: every profile with its summary; the second heap
	// profile's is against the first and names the function first in
	// what grew.
	heaps := map[string]bool{}
	compared := 0
	for _, p := range stored {
		if kindOf(subject, p.Name) == "heap" {
			heaps[p.Name] = true
		}
	}
	for _, p := range stored {
		rec := recordOf(t, p)
		if rec == nil || rec.Summary == nil || rec.Summary.Growth == nil {
			continue
		}
		compared++
		if !heaps[rec.Base] || rec.Base == p.Name {
			t.Errorf("GET /profiles: %s is compared with %q, not the other heap profile", p.Name, rec.Base)
		}
		if g := rec.Summary.Growth.Grew; len(g) == 0 || g[0].Function != lab.LeakFunction {
			t.Errorf("GET /profiles: what grew in %s does not begin with %s: %s", p.Name, lab.LeakFunction, p.Summary)
		}
	}
	if compared != 1 {
		t.Errorf("GET /profiles: %d profiles of %s with a growth, want 1 (the second heap profile)", compared, subject)
	}
}

// TestProfileStrings checks the check: this process's own heap profile
// (runtime/pprof writes it gzipped) decodes with its functions in the
// string table; gzipped bytes that are no protocol buffer, a message
// without samples, and bytes that are not gzip are refused.
func TestProfileStrings(t *testing.T) {
	var heap bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	strs, err := profileStrings(heap.Bytes())
	if err != nil {
		t.Fatalf("this process's goroutine profile: %v", err)
	}
	if !strings.Contains(strings.Join(strs, "\n"), "TestProfileStrings") {
		t.Errorf("the goroutine profile's strings do not name this test: %q", strs)
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	for name, data := range map[string][]byte{
		"not gzip":          []byte("heap profile"),
		"gzip of text":      gz([]byte("heap profile, honest")),
		"truncated message": gz(protowire.AppendTag(nil, 6, protowire.BytesType)),
		"no samples":        gz(protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), nil)),
	} {
		if _, err := profileStrings(data); err == nil {
			t.Errorf("%s: accepted as a profile", name)
		}
	}
}

// The burst of ConfigMaps that TestRemediateChain makes before the
// apiserver's memory alert, so that configmaps are the resource the lab's
// apiserver holds most of (its own objects are a few dozen of each kind),
// and, at 25 MiB in all, decoded in its watch cache, what its heap holds
// most of.
const (
	burstNamespace      = "burst"
	burstConfigMapCount = 400
	burstConfigMapBytes = 64 << 10
)

// topFunctions are the functions of the first n sites.
func topFunctions(sites []summary.Site, n int) []string {
	var out []string
	for i := 0; i < len(sites) && i < n; i++ {
		out = append(out, sites[i].Function)
	}
	return out
}

// configMapDecoder is where the apiserver allocates a ConfigMap's data as
// it decodes it from etcd, as pprof names it.
const configMapDecoder = "k8s.io/api/core/v1.(*ConfigMap).Unmarshal"

// burstConfigMaps creates n ConfigMaps of about size bytes each in
// namespace, then waits until Prometheus's
// resource:apiserver_resource_objects:max, from the lab apiserver's own
// object counts (lab.ChainOptions.APIServerObjects), counts them.
func burstConfigMaps(ctx context.Context, t *testing.T, c *lab.Chain, namespace string, n, size int) {
	t.Helper()
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("burst-%04d", i)}, Data: map[string]string{"payload": value}}
		if _, err := c.Admin.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("configmap %d of the burst: %v", i, err)
		}
	}
	query := rules.RecAPIServerObjects + `{resource="configmaps"}`
	waitFor(t, 60*time.Second, fmt.Sprintf("Prometheus counting the burst of %d ConfigMaps", n), func(ctx context.Context) (bool, string, error) {
		samples, err := c.Prometheus.QueryValues(ctx, query)
		if err != nil {
			return false, "", err
		}
		if len(samples) != 1 {
			return false, fmt.Sprintf("%s: %d series", query, len(samples)), nil
		}
		return samples[0].Value >= float64(n), fmt.Sprintf("%s = %g", query, samples[0].Value), nil
	})
}

// heapGrowthNames returns the functions that a LeakguardActed Event's (or
// an annotation's) profile summary lists as grown, in order: the part
// "heap growth since ...; grew: F +X (N%), G +Y (M%)" ends at the next
// "; ".
func heapGrowthNames(text string) []string {
	_, rest, ok := strings.Cut(text, "heap growth since ")
	if !ok {
		return nil
	}
	_, rest, ok = strings.Cut(rest, "grew: ")
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, "; ")
	var names []string
	for _, site := range strings.Split(rest, ", ") {
		if f, _, ok := strings.Cut(site, " "); ok {
			names = append(names, f)
		}
	}
	return names
}
