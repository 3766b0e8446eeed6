package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// namespace holds the recorded workloads.
const namespace = "shop"

// Recording is what record writes: the series at a fixed step from Start,
// and the live Prometheus's alerts on them.
type Recording struct {
	// Start is the first instant, before the workloads were created; the
	// unit test's time 0.
	Start time.Time `json:"start"`
	// Step is the time between two values of a series.
	Step Duration `json:"step"`
	// Points is how many instants there are.
	Points int `json:"points"`
	// Created is when the workloads' Deployments were created.
	Created time.Time `json:"created"`
	// Workloads are the Deployments' names and their leaker arguments.
	Workloads []Workload `json:"workloads"`
	// Series are the recorded series; a nil value is an instant without
	// a sample.
	Series []Series `json:"series"`
	// Alerts are the live Prometheus's alerts on shop, as it evaluated
	// the shipped rules during the recording.
	Alerts []AlertLog `json:"alerts"`
}

// Duration is a time.Duration written as a string ("30s").
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Workload is one recorded Deployment.
type Workload struct {
	Name  string   `json:"name"`
	Limit string   `json:"limit"`
	Args  []string `json:"args"`
	What  string   `json:"what"`
}

// Series is one recorded series.
type Series struct {
	Labels map[string]string `json:"labels"`
	Values []*float64        `json:"values"`
}

// AlertLog is one alert's history in the live Prometheus.
type AlertLog struct {
	Labels map[string]string `json:"labels"`
	// ActiveAt is when it went pending (Prometheus's activeAt).
	ActiveAt time.Time `json:"activeAt"`
	// FiringSeen is when it was first seen firing; zero if never.
	FiringSeen time.Time `json:"firingSeen,omitempty"`
	// LastSeen is when it was last seen pending or firing.
	LastSeen time.Time `json:"lastSeen"`
}

// workloads are what record runs: the leaker at different rates and
// limits (test/e2e/lab/images/leaker).
var workloads = []Workload{
	{Name: "leaker", Limit: "512Mi", Args: []string{"-rate", "96Ki", "-initial", "16Mi"},
		What: "leaks 96 KiB/s from its start (16 MiB) under a 512 MiB limit"},
	{Name: "filler", Limit: "128Mi", Args: []string{"-rate", "1Mi", "-initial", "16Mi", "-max", "120Mi"},
		What: "climbs 1 MiB/s to 120 MiB under a 128 MiB limit and holds there: a steep warm-up that stays near its limit"},
	{Name: "oom", Limit: "64Mi", Args: []string{"-rate", "2Mi", "-initial", "8Mi"},
		What: "leaks 2 MiB/s under a 64 MiB limit: OOM-killed by the kernel, restarted by the kubelet with back-off"},
	{Name: "flat", Limit: "128Mi", Args: []string{"-initial", "16Mi", "-flat"},
		What: "holds 16 MiB under a 128 MiB limit"},
}

// selectors are the series the shipped rules read, for shop's pods and for
// the node (deploy/prometheus/rules.yaml).
var selectors = []string{
	`container_memory_working_set_bytes{namespace="shop"}`,
	`container_oom_events_total{namespace="shop"}`,
	`kube_pod_container_resource_limits{namespace="shop",resource="memory"}`,
	`kube_pod_container_resource_requests{namespace="shop",resource="memory"}`,
	`kube_pod_container_state_started{namespace="shop"}`,
	`kube_pod_container_status_last_terminated_reason{namespace="shop"}`,
	`kube_pod_container_status_restarts_total{namespace="shop"}`,
	`kube_pod_info{namespace="shop"}`,
	`kube_node_info`,
	`kube_node_role`,
	`kube_node_status_capacity{resource="memory"}`,
	`machine_memory_bytes`,
}

// timestampMetrics hold a Unix time as their value: the unit test's clock
// starts at 0, so write makes them relative to the recording's start.
var timestampMetrics = map[string]bool{"kube_pod_container_state_started": true}

func deployment(w Workload) *appsv1.Deployment {
	replicas := int32(1)
	grace := int64(5)
	labels := map[string]string{"app": w.Name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name:            w.Name,
						Image:           lab.LeakerImage,
						ImagePullPolicy: corev1.PullNever,
						Args:            w.Args,
						Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
							corev1.ResourceMemory: resource.MustParse(w.Limit),
						}},
					}},
				},
			},
		},
	}
}

// record runs the workloads for d, logging the live alerts, and reads the
// series back at step. checkpoint, when set, is given the recording so
// far every few minutes.
func record(ctx context.Context, c *lab.Chain, d, step time.Duration, checkpoint func(*Recording)) (*Recording, error) {
	// The first instant lies on a whole step, a step before the
	// workloads start.
	start := time.Now().Truncate(step)
	rec := &Recording{Start: start.UTC(), Step: Duration(step), Workloads: workloads}
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create namespace: %w", err)
	}
	// Wait until the first instant has passed, so that it holds no
	// workload.
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Until(start.Add(step))):
	}
	rec.Created = time.Now().UTC()
	for _, w := range workloads {
		if _, err := c.Admin.AppsV1().Deployments(namespace).Create(ctx, deployment(w), metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create deployment %s: %w", w.Name, err)
		}
	}
	end := rec.Created.Add(d)
	alerts := map[string]*AlertLog{}
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	lastReport := time.Time{}
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		now := time.Now().UTC()
		as, err := c.Prometheus.Alerts(ctx)
		if err != nil {
			slog.Warn("read alerts", "err", err)
			continue
		}
		for _, a := range as {
			if a.Labels["namespace"] != namespace {
				continue
			}
			key := a.Labels["alertname"] + "/" + a.Labels["pod"] + "/" + a.Labels["container"] + "/" + a.ActiveAt.String()
			l := alerts[key]
			if l == nil {
				l = &AlertLog{Labels: a.Labels, ActiveAt: a.ActiveAt.UTC()}
				alerts[key] = l
				slog.Info("alert", "name", a.Labels["alertname"], "container", a.Labels["container"], "state", a.State, "after", a.ActiveAt.Sub(rec.Created).Round(time.Second))
			}
			if a.State == "firing" && l.FiringSeen.IsZero() {
				l.FiringSeen = now
				slog.Info("firing", "name", a.Labels["alertname"], "container", a.Labels["container"], "after", now.Sub(rec.Created).Round(time.Second))
			}
			l.LastSeen = now
		}
		if now.Sub(lastReport) >= 3*time.Minute {
			lastReport = now
			if checkpoint != nil {
				if err := finish(ctx, c, rec, alerts, start, step); err != nil {
					slog.Warn("checkpoint", "err", err)
				} else {
					checkpoint(rec)
				}
			}
			ws, err := c.Prometheus.QueryValues(ctx, `container_memory_working_set_bytes{namespace="shop",container!=""}`)
			if err == nil {
				var parts []string
				for _, s := range ws {
					parts = append(parts, fmt.Sprintf("%s=%.1fMiB", s.Labels["container"], s.Value/(1<<20)))
				}
				sort.Strings(parts)
				slog.Info("recording", "elapsed", now.Sub(rec.Created).Round(time.Second), "left", time.Until(end).Round(time.Second), "working_set", parts)
			}
		}
	}
	return rec, finish(ctx, c, rec, alerts, start, step)
}

// finish fills rec's alerts and series up to the last whole step before
// now.
func finish(ctx context.Context, c *lab.Chain, rec *Recording, alerts map[string]*AlertLog, start time.Time, step time.Duration) error {
	rec.Alerts, rec.Series = nil, nil
	for _, l := range alerts {
		rec.Alerts = append(rec.Alerts, *l)
	}
	sort.Slice(rec.Alerts, func(i, j int) bool {
		a, b := rec.Alerts[i], rec.Alerts[j]
		if !a.ActiveAt.Equal(b.ActiveAt) {
			return a.ActiveAt.Before(b.ActiveAt)
		}
		return a.Labels["alertname"]+a.Labels["container"] < b.Labels["alertname"]+b.Labels["container"]
	})
	// The last instant is the last whole step before now.
	last := time.Now().Truncate(step)
	rec.Points = int(last.Sub(start)/step) + 1
	for _, sel := range selectors {
		ss, err := queryRange(ctx, c.Prometheus.URL(), sel, start, last, step)
		if err != nil {
			return err
		}
		rec.Series = append(rec.Series, ss...)
	}
	return nil
}

// queryRange reads sel from start to end at step, as Prometheus's
// query_range answers (the last sample at or before each instant, within
// the 5-minute lookback; nothing after a series went stale), one value per
// instant.
func queryRange(ctx context.Context, base, sel string, start, end time.Time, step time.Duration) ([]Series, error) {
	q := url.Values{}
	q.Set("query", sel)
	q.Set("start", strconv.FormatInt(start.Unix(), 10))
	q.Set("end", strconv.FormatInt(end.Unix(), 10))
	q.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query_range?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query_range %s: %w", sel, err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("query_range %s: %w", sel, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query_range %s: %s", sel, out.Error)
	}
	n := int(end.Sub(start)/step) + 1
	var series []Series
	for _, r := range out.Data.Result {
		s := Series{Labels: r.Metric, Values: make([]*float64, n)}
		for _, v := range r.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, fmt.Errorf("query_range %s: value %q: %w", sel, str, err)
			}
			i := int(math.Round((ts - float64(start.Unix())) / step.Seconds()))
			if i >= 0 && i < n {
				s.Values[i] = &f
			}
		}
		series = append(series, s)
	}
	return series, nil
}
