package recommend

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/leakguard/leakguard/rules"
)

// API is the part of the Prometheus HTTP API that Collect reads;
// client_golang's v1.API satisfies it.
type API interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
	QueryRange(ctx context.Context, query string, r v1.Range, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

var _ API = v1.API(nil)

// Scope says which containers Collect reads, and from which series.
type Scope struct {
	// Namespace confines the queries to one namespace; "" reads all.
	Namespace string
	// Selector picks pods by their labels as kube-state-metrics exports
	// them in kube_pod_labels (label_<name>, only the labels its
	// --metric-labels-allowlist names); nil picks every pod.
	Selector labels.Selector
	// Workload picks one workload: "name" or "kind/name" (kind
	// case-insensitive, e.g. deployment/api); "" picks all.
	Workload string
	// Cluster confines every query to the series whose ClusterLabel is
	// Cluster, in a fleet's query engine; "" adds no matcher (a single
	// cluster: in a fleet, the series of several clusters would be pooled).
	Cluster, ClusterLabel string
	// CadvisorSelector and KubeStateMetricsSelector are label matchers
	// (without braces) for each source, as in rules.Params.
	CadvisorSelector, KubeStateMetricsSelector string
}

// Workload is a pod's owner as a person names it: a ReplicaSet's pods are
// their Deployment's (the ReplicaSet's name without its pod-template hash),
// a pod without an owner is its own workload (kind Pod).
type Workload struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
}

// String is kind/name in kubectl's spelling (deployment/api).
func (w Workload) String() string { return strings.ToLower(w.Kind) + "/" + w.Name }

// Container is one container of one workload, with the samples and facts
// of all its pods in the window.
type Container struct {
	Workload  Workload `json:"workload"`
	Container string   `json:"container"`
	// Pods are the workload's pods whose series went into Input.
	Pods  []string `json:"pods"`
	Input Input    `json:"-"`
}

// Collect reads each in-scope container's working set and the leak
// trends' flags over twice the window plus onset before end (the earlier
// part is a leaking container's baseline, see Params.LeakOnset; a flag
// anywhere in it makes the container leaking, LeakSince its first),
// its restarts, OOM kills and leak flags over the window at step, and its
// current request and limit, pooled per workload. A container is reported
// only if one of its workload's pods runs at end (kube_pod_container_info).
// Any failed query fails the whole collection: a partial answer would
// recommend from part of the evidence.
func Collect(ctx context.Context, api API, s Scope, end time.Time, window, step, onset time.Duration) ([]Container, error) {
	if window <= 0 || step <= 0 || onset < 0 {
		return nil, fmt.Errorf("window %s, step %s, onset %s: must be positive", window, step, onset)
	}
	from := end.Add(-2*window - onset)
	ksm := s.matchers(s.KubeStateMetricsSelector)
	cad := s.matchers(s.CadvisorSelector, `container!=""`, `container!="POD"`, `image!=""`)
	ns := s.matchers("")
	lookback := model.Duration(end.Sub(from)).String()
	byC := `max by (namespace, pod, container) `

	owners, err := instant(ctx, api, `max by (namespace, pod, owner_kind, owner_name) (max_over_time(kube_pod_owner{`+ksm+`}[`+lookback+`]))`, end)
	if err != nil {
		return nil, err
	}
	workloads := map[podKey]Workload{}
	for _, smp := range owners {
		k := podKey{string(smp.Metric["namespace"]), string(smp.Metric["pod"])}
		workloads[k] = workloadOf(k, string(smp.Metric["owner_kind"]), string(smp.Metric["owner_name"]))
	}
	owner := func(k podKey) Workload {
		if w, ok := workloads[k]; ok {
			return w
		}
		return Workload{Namespace: k.namespace, Kind: "Pod", Name: k.pod}
	}
	var podLabels map[podKey]labels.Set
	if s.Selector != nil && !s.Selector.Empty() {
		ls, err := instant(ctx, api, `max_over_time(kube_pod_labels{`+ksm+`}[`+lookback+`])`, end)
		if err != nil {
			return nil, err
		}
		podLabels = map[podKey]labels.Set{}
		for _, smp := range ls {
			set := labels.Set{}
			for n, v := range smp.Metric {
				if k, ok := strings.CutPrefix(string(n), "label_"); ok {
					set[k] = string(v)
				}
			}
			podLabels[podKey{string(smp.Metric["namespace"]), string(smp.Metric["pod"])}] = set
		}
	}
	sel, err := sanitizedSelector(s.Selector)
	if err != nil {
		return nil, err
	}
	kind, name, _ := strings.Cut(s.Workload, "/")
	if name == "" {
		kind, name = "", kind
	}
	inScope := func(k podKey) bool {
		w := owner(k)
		if s.Workload != "" && (w.Name != name || kind != "" && !strings.EqualFold(w.Kind, kind)) {
			return false
		}
		// A pod without kube_pod_labels has no labels: a selector that
		// needs one does not pick it.
		return sel == nil || sel.Matches(podLabels[k])
	}

	type acc struct {
		pods      map[string]bool
		running   bool
		in        Input
		leakSince time.Time
	}
	all := map[containerKey]*acc{}
	get := func(m model.Metric) (*acc, podKey, bool) {
		k := podKey{string(m["namespace"]), string(m["pod"])}
		if !inScope(k) {
			return nil, k, false
		}
		ck := containerKey{owner(k), string(m["container"])}
		a := all[ck]
		if a == nil {
			a = &acc{pods: map[string]bool{}, in: Input{From: from, End: end}}
			all[ck] = a
		}
		a.pods[k.pod] = true
		return a, k, true
	}

	running, err := instant(ctx, api, byC+`(kube_pod_container_info{`+ksm+`})`, end)
	if err != nil {
		return nil, err
	}
	for _, smp := range running {
		if a, _, ok := get(smp.Metric); ok {
			a.running = true
		}
	}
	for _, q := range []struct {
		metric string
		set    func(a *acc, v float64)
	}{
		{"kube_pod_container_resource_requests", func(a *acc, v float64) { a.in.Request = max(a.in.Request, v) }},
		{"kube_pod_container_resource_limits", func(a *acc, v float64) { a.in.Limit = max(a.in.Limit, v) }},
	} {
		vec, err := instant(ctx, api, byC+`(`+q.metric+`{`+s.matchers(s.KubeStateMetricsSelector, `resource="memory"`)+`})`, end)
		if err != nil {
			return nil, err
		}
		for _, smp := range vec {
			if a, _, ok := get(smp.Metric); ok {
				q.set(a, float64(smp.Value))
			}
		}
	}

	ws, err := ranged(ctx, api, byC+`(container_memory_working_set_bytes{`+cad+`})`, from, end, step)
	if err != nil {
		return nil, err
	}
	for _, ss := range ws {
		a, _, ok := get(ss.Metric)
		if !ok {
			continue
		}
		for _, p := range ss.Values {
			a.in.Samples = append(a.in.Samples, Sample{T: p.Timestamp.Time().UTC(), Bytes: float64(p.Value)})
		}
	}

	restarts, err := ranged(ctx, api, byC+`(kube_pod_container_status_restarts_total{`+ksm+`})`, end.Add(-window), end, step)
	if err != nil {
		return nil, err
	}
	oom, err := ranged(ctx, api, byC+`(kube_pod_container_status_last_terminated_reason{`+s.matchers(s.KubeStateMetricsSelector, `reason="OOMKilled"`)+`})`, end.Add(-window), end, step)
	if err != nil {
		return nil, err
	}
	oomAt := map[string]map[model.Time]bool{}
	for _, ss := range oom {
		at := map[model.Time]bool{}
		for _, p := range ss.Values {
			at[p.Timestamp] = p.Value == 1
		}
		oomAt[seriesKey(ss.Metric)] = at
	}
	for _, ss := range restarts {
		a, _, ok := get(ss.Metric)
		if !ok {
			continue
		}
		at := oomAt[seriesKey(ss.Metric)]
		for i := 1; i < len(ss.Values); i++ {
			d := int(ss.Values[i].Value - ss.Values[i-1].Value)
			if d <= 0 {
				continue
			}
			a.in.Restarts += d
			// The restart that an OOM kill caused sets the last
			// terminated reason at the same scrape.
			if at[ss.Values[i].Timestamp] {
				a.in.OOMKills += d
			}
		}
	}

	// Flags over the whole span read: a leaker held at its size from
	// before the leak is OOM-killed before the trends can flag it again,
	// and stays leaking while an earlier flag is in the span.
	flagged, err := ranged(ctx, api, byC+`(`+rules.RecLeakRate+`{`+ns+`}) or `+byC+`(ALERTS{alertname="`+rules.AlertContainerMemoryLeak+`", alertstate="firing"`+prefixComma(ns)+`})`, from, end, step)
	if err != nil {
		return nil, err
	}
	for _, ss := range flagged {
		a, _, ok := get(ss.Metric)
		if !ok || len(ss.Values) == 0 {
			continue
		}
		t := ss.Values[0].Timestamp.Time().UTC()
		if a.leakSince.IsZero() || t.Before(a.leakSince) {
			a.leakSince = t
		}
	}

	var out []Container
	for ck, a := range all {
		if !a.running {
			continue
		}
		a.in.LeakSince = a.leakSince
		pods := make([]string, 0, len(a.pods))
		for p := range a.pods {
			pods = append(pods, p)
		}
		sort.Strings(pods)
		out = append(out, Container{Workload: ck.workload, Container: ck.container, Pods: pods, Input: a.in})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Workload != b.Workload {
			return a.Workload.Namespace+"\x00"+a.Workload.Kind+"\x00"+a.Workload.Name < b.Workload.Namespace+"\x00"+b.Workload.Kind+"\x00"+b.Workload.Name
		}
		return a.Container < b.Container
	})
	return out, nil
}

type podKey struct{ namespace, pod string }

type containerKey struct {
	workload  Workload
	container string
}

func seriesKey(m model.Metric) string {
	return string(m["namespace"]) + "/" + string(m["pod"]) + "/" + string(m["container"])
}

// podTemplateHash matches the suffix a Deployment gives its ReplicaSets.
var podTemplateHash = regexp.MustCompile(`^[bcdfghjklmnpqrstvwxz2456789]{5,10}$`)

// workloadOf names the workload of pod k owned by kind/name.
func workloadOf(k podKey, kind, name string) Workload {
	switch {
	case kind == "" || kind == "<none>" || name == "" || name == "<none>":
		return Workload{Namespace: k.namespace, Kind: "Pod", Name: k.pod}
	case kind == "ReplicaSet":
		if i := strings.LastIndexByte(name, '-'); i > 0 && podTemplateHash.MatchString(name[i+1:]) {
			return Workload{Namespace: k.namespace, Kind: "Deployment", Name: name[:i]}
		}
	}
	return Workload{Namespace: k.namespace, Kind: kind, Name: name}
}

// sanitizedSelector rewrites sel's keys the way kube-state-metrics writes
// label names (every character outside [a-zA-Z0-9_] becomes _), so that it
// matches kube_pod_labels' label_<name> labels.
func sanitizedSelector(sel labels.Selector) (labels.Selector, error) {
	if sel == nil || sel.Empty() {
		return nil, nil
	}
	reqs, _ := sel.Requirements()
	out := labels.NewSelector()
	for _, r := range reqs {
		nr, err := labels.NewRequirement(sanitize(r.Key()), r.Operator(), r.Values().List())
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", sel, err)
		}
		out = out.Add(*nr)
	}
	return out, nil
}

var invalidLabelChar = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func sanitize(key string) string { return invalidLabelChar.ReplaceAllString(key, "_") }

// matchers joins a selector, extra matchers and the scope's namespace and
// cluster matchers.
func (s Scope) matchers(selector string, extra ...string) string {
	var ms []string
	if selector != "" {
		ms = append(ms, selector)
	}
	ms = append(ms, extra...)
	if s.Namespace != "" {
		ms = append(ms, fmt.Sprintf("namespace=%q", s.Namespace))
	}
	if s.Cluster != "" {
		ms = append(ms, fmt.Sprintf("%s=%q", s.ClusterLabel, s.Cluster))
	}
	return strings.Join(ms, ", ")
}

func prefixComma(s string) string {
	if s == "" {
		return ""
	}
	return ", " + s
}

// ErrUnexpectedAnswer means Prometheus answered with a result type the
// query cannot return.
var ErrUnexpectedAnswer = errors.New("unexpected answer")

func instant(ctx context.Context, api API, q string, at time.Time) (model.Vector, error) {
	v, _, _, err := api.Query(ctx, q, at)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: %w: %s, want a vector", q, ErrUnexpectedAnswer, typeOf(v))
	}
	return vec, nil
}

func ranged(ctx context.Context, api API, q string, from, to time.Time, step time.Duration) (model.Matrix, error) {
	v, _, _, err := api.QueryRange(ctx, q, v1.Range{Start: from, End: to, Step: step})
	if err != nil {
		return nil, fmt.Errorf("range query %s: %w", q, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("range query %s: %w: %s, want a matrix", q, ErrUnexpectedAnswer, typeOf(v))
	}
	return m, nil
}

func typeOf(v model.Value) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().String()
}
