package remediate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"time"

	"github.com/leakguard/leakguard/rules"
)

// payload is an Alertmanager webhook body as the receiver decodes it.
type payload struct {
	*template.Data
	Version string `json:"version"`
}

func loadPayload(t testing.TB, name string) []template.Alert {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "alertmanager", name))
	if err != nil {
		t.Fatal(err)
	}
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	if p.Version != "4" || p.Data == nil || len(p.Alerts) == 0 {
		t.Fatalf("%s: version %q with no alerts", name, p.Version)
	}
	return p.Alerts
}

var (
	deploymentPod  = regexp.MustCompile(`^(.+)-([a-z0-9]{3,10})-([a-z0-9]{5})$`)
	statefulSetPod = regexp.MustCompile(`^(.+)-([0-9]+)$`)
)

// clusterFor builds the objects the alerts name: namespaces, nodes, and
// for each pod the workload its name implies (name-<hash>-<suffix> is a
// Deployment's, name-<ordinal> a StatefulSet's); kube-system pods are
// static pods.
func clusterFor(alerts []template.Alert) []runtime.Object {
	seen := map[string]bool{}
	var objs []runtime.Object
	add := func(kind, ns, name string, o runtime.Object) {
		key := kind + "/" + ns + "/" + name
		if !seen[key] {
			seen[key] = true
			objs = append(objs, o)
		}
	}
	meta := func(ns, name string, owners []metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), ResourceVersion: "1", OwnerReferences: owners}
	}
	for _, a := range alerts {
		if n := a.Labels["node"]; n != "" {
			add(KindNode, "", n, &corev1.Node{ObjectMeta: meta("", n, nil)})
		}
		ns, pod := a.Labels["namespace"], a.Labels["pod"]
		if ns != "" {
			add(KindNamespace, "", ns, &corev1.Namespace{ObjectMeta: meta("", ns, nil)})
		}
		if pod == "" {
			continue
		}
		var owners []metav1.OwnerReference
		switch m := deploymentPod.FindStringSubmatch(pod); {
		case ns == SystemNamespace:
		case m != nil:
			rs := m[1] + "-" + m[2]
			add(KindDeployment, ns, m[1], &appsv1.Deployment{ObjectMeta: meta(ns, m[1], nil)})
			add(KindReplicaSet, ns, rs, &appsv1.ReplicaSet{ObjectMeta: meta(ns, rs, ownedByUID(KindDeployment, m[1], "uid-"+ns+"-"+m[1]))})
			owners = ownedByUID(KindReplicaSet, rs, "uid-"+ns+"-"+rs)
		case statefulSetPod.MatchString(pod):
			sts := statefulSetPod.FindStringSubmatch(pod)[1]
			add(KindStatefulSet, ns, sts, &appsv1.StatefulSet{ObjectMeta: meta(ns, sts, nil)})
			owners = ownedByUID(KindStatefulSet, sts, "uid-"+ns+"-"+sts)
		}
		add(KindPod, ns, pod, &corev1.Pod{ObjectMeta: meta(ns, pod, owners)})
	}
	return objs
}

// confirmingQuerier confirms every check: 10 kB/s of growth (36 MB/h), 50
// orphan cgroups, 90 % of the node's memory.
type confirmingQuerier struct{}

func (confirmingQuerier) Query(_ context.Context, q string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	v := 0.0
	switch {
	case strings.Contains(q, rules.RecWorkingSetDeriv):
		v = 1e4
	case strings.Contains(q, rules.RecNodeOrphanCgroups):
		v = 50
	case strings.Contains(q, rules.RecAPIServerMemoryRatio):
		v = 0.9
	default:
		return model.Vector{}, nil, nil, nil
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}

// TestAlertmanagerFixtures runs the payloads that a real Alertmanager 0.25
// sent through the default policy against a cluster holding their objects.
func TestAlertmanagerFixtures(t *testing.T) {
	tests := []struct {
		file      string
		decisions []string // decision/reason per alert, or a count summary for big payloads
		targets   []string
		counts    map[string]int
	}{
		{file: "alertmanager-0.25-firing.json", decisions: []string{"acted/", "acted/", "acted/"},
			targets: []string{"Deployment shop/cart", "Deployment shop/checkout", "StatefulSet shop/search"}},
		{file: "alertmanager-0.25-mixed.json", decisions: []string{"resolved/", "acted/", "acted/"},
			targets: []string{"", "Deployment shop/checkout", "StatefulSet shop/search"}},
		{file: "alertmanager-0.25-resolved.json", decisions: []string{"resolved/", "resolved/"}, targets: []string{"", ""}},
		{file: "alertmanager-0.25-node-firing.json", decisions: []string{"acted/", "acted/"}, targets: []string{"Node worker-1", "Node worker-2"}},
		{file: "alertmanager-0.25-apiserver-firing.json", decisions: []string{"acted/"}, targets: []string{"Pod kube-system/kube-apiserver-master-1"}},
		{file: "alertmanager-0.25-e2e-leak.json", decisions: []string{"acted/"}, targets: []string{"Deployment shop/web"}},
		{file: "alertmanager-0.25-e2e-node.json", decisions: []string{"acted/"}, targets: []string{"Node n1"}},
		{file: "alertmanager-0.25-e2e-kube-system.json", decisions: []string{"held/namespace-excluded"}, targets: []string{""}},
		{file: "alertmanager-0.25-e2e-resolved.json", decisions: []string{"resolved/"}, targets: []string{""}},
		// 100 leaking pods of 10 Deployments: the default burst of 5
		// actions, then the rate limit; pods of a Deployment already acted
		// on are held by its cooldown.
		{file: "alertmanager-0.25-firing-100.json", counts: map[string]int{"acted/": 5, "held/cooldown": 45, "held/rate-limited": 50}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			alerts := loadPayload(t, tc.file)
			e, _ := newTestEngine(t, engineSetup{objs: clusterFor(alerts)})
			e.querier = confirmingQuerier{}
			ds, err := e.Decide(context.Background(), alerts)
			if err != nil {
				t.Fatalf("Decide() error: %v", err)
			}
			var got, targets []string
			counts := map[string]int{}
			for _, d := range ds {
				got = append(got, d.Decision+"/"+d.Reason)
				targets = append(targets, d.Target)
				counts[d.Decision+"/"+d.Reason]++
			}
			if tc.counts != nil {
				if diff := cmp.Diff(tc.counts, counts); diff != "" {
					t.Errorf("decision counts mismatch (-want +got):\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(tc.decisions, got); diff != "" {
				t.Errorf("decisions mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.targets, targets); diff != "" {
				t.Errorf("targets mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
