package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// watcher polls the chain's parts and prints what changed: Prometheus's
// alerts and the leaking container's measured slope, Alertmanager's
// alerts, each replica's decision log lines, and leakguard's Events.
type watcher struct {
	c   *lab.Chain
	s   *lab.Scenario
	out *printer
	t0  time.Time
	// leak is the container whose working set and slope the timeline
	// shows until its leak alert fires; the real node's story sets it
	// once the leaking Deployment's first pod exists.
	leak leakTarget
	// node, on the real node, follows the pods, the kubelet's OOM kills
	// and the controllers' Events; nil on the synthetic lab.
	node *nodeStory
	// isDone says when the story has played out: the synthetic
	// scenario's done, or the real node's.
	isDone func(ctx context.Context) bool

	promState map[string]string
	amState   map[string]string
	events    map[string]bool
	logOffset map[string]int64
	lastSlope time.Time
	leakFired bool
}

// leakTarget names one container.
type leakTarget struct{ namespace, pod, container string }

func newWatcher(c *lab.Chain, s *lab.Scenario, out *printer) *watcher {
	w := &watcher{c: c, s: s, out: out, t0: time.Now(),
		promState: map[string]string{}, amState: map[string]string{}, events: map[string]bool{}, logOffset: map[string]int64{}}
	if s != nil {
		w.leak = leakTarget{s.Leaking.Namespace, s.Leaking.Pod(), lab.ContainerName}
		w.isDone = w.done
	}
	return w
}

func (w *watcher) event(format string, args ...any) {
	w.out.line("[%6.1fs] "+format, append([]any{time.Since(w.t0).Seconds()}, args...)...)
}

// run polls until the scenario has played out (done) or ctx ends.
func (w *watcher) run(ctx context.Context) error {
	for {
		w.poll(ctx)
		if w.isDone(ctx) {
			// Let the last deliveries and Events show.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				sleep(ctx, 500*time.Millisecond)
				w.poll(ctx)
			}
			return nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("%w; the logs are in %s", err, w.c.Dir())
		}
	}
}

// follow keeps printing until ctx ends.
func (w *watcher) follow(ctx context.Context) {
	for sleep(ctx, time.Second) == nil {
		w.poll(ctx)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (w *watcher) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if w.node != nil {
		w.node.poll(pctx, w)
	}
	w.pollSlope(pctx)
	w.pollPrometheus(pctx)
	w.pollAlertmanager(pctx)
	for _, r := range w.c.Serve {
		w.pollLog(r)
	}
	w.pollEvents(pctx)
}

// pollSlope prints the leaking container's working set and the slope of
// its floor that the working-set-slope check reads, every 10 s until its
// leak alert fires.
func (w *watcher) pollSlope(ctx context.Context) {
	l := w.leak
	if w.leakFired || l.pod == "" || time.Since(w.lastSlope) < 10*time.Second {
		return
	}
	w.lastSlope = time.Now()
	sel := fmt.Sprintf(`{namespace=%q, pod=%q, container=%q}`, l.namespace, l.pod, l.container)
	ws, err1 := w.c.Prometheus.QueryValues(ctx, rules.RecWorkingSet+sel)
	slope, err2 := w.c.Prometheus.QueryValues(ctx, rules.RecWorkingSetDeriv+sel)
	if err1 != nil || err2 != nil || len(ws) == 0 {
		return
	}
	s := "not measured yet"
	if len(slope) > 0 {
		s = mib(slope[0].Value*3600) + "/h"
	}
	w.event("prometheus: %s/%s working set %s, floor slope %s", l.namespace, l.pod, mib(ws[0].Value), s)
}

func alertKey(labels map[string]string) string {
	name := labels["alertname"]
	switch {
	case labels["pod"] != "":
		return fmt.Sprintf("%s{%s/%s/%s}", name, labels["namespace"], labels["pod"], labels["container"])
	case labels["node"] != "":
		return fmt.Sprintf("%s{node=%s}", name, labels["node"])
	}
	return name
}

func alertValue(name, value string) string {
	var v float64
	if _, err := fmt.Sscan(value, &v); err != nil {
		return value
	}
	switch name {
	case rules.AlertContainerMemoryLeak:
		return mib(v) + "/h"
	case rules.AlertKubeAPIServerMemoryHigh:
		return fmt.Sprintf("%.0f %% of the node", v*100)
	case rules.AlertNodeOrphanCgroups:
		return fmt.Sprintf("%g orphan cgroups", v)
	case rules.AlertContainerMemoryOOMPredicted:
		// Seconds until the trend reaches the limit.
		return (time.Duration(v) * time.Second).String() + " to the limit"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func (w *watcher) pollPrometheus(ctx context.Context) {
	alerts, err := w.c.Prometheus.Alerts(ctx)
	if err != nil {
		return
	}
	sort.Slice(alerts, func(i, j int) bool { return alertKey(alerts[i].Labels) < alertKey(alerts[j].Labels) })
	present := map[string]bool{}
	for _, a := range alerts {
		k := alertKey(a.Labels)
		present[k] = true
		if w.promState[k] == a.State {
			continue
		}
		w.promState[k] = a.State
		w.event("prometheus: alert %s %s (%s)", k, a.State, alertValue(a.Labels["alertname"], a.Value))
		if a.State == "firing" && a.Labels["alertname"] == rules.AlertContainerMemoryLeak && a.Labels["pod"] == w.leak.pod {
			w.leakFired = true
		}
	}
	// An alert Prometheus no longer lists has resolved (or, pending,
	// ended before it fired).
	var gone []string
	for k, state := range w.promState {
		if !present[k] && state != "" {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		if w.promState[k] == "firing" {
			w.event("prometheus: alert %s resolved", k)
		} else {
			w.event("prometheus: alert %s no longer pending", k)
		}
		w.promState[k] = ""
	}
}

func (w *watcher) pollAlertmanager(ctx context.Context) {
	alerts, err := w.c.Alertmanager.Alerts(ctx)
	if err != nil {
		return
	}
	for _, a := range alerts {
		k := alertKey(a.Labels)
		if w.amState[k] == a.Status.State {
			continue
		}
		w.amState[k] = a.Status.State
		var recv []string
		for _, r := range a.Receivers {
			recv = append(recv, r.Name)
		}
		w.event("alertmanager: %s %s, routed to %s (one webhook per serve replica)", k, a.Status.State, strings.Join(recv, ", "))
	}
}

// decisionLine is the part of serve's JSON decision log the timeline
// shows.
type decisionLine struct {
	Msg         string   `json:"msg"`
	Alert       string   `json:"alert"`
	Status      string   `json:"status"`
	Target      string   `json:"target"`
	Check       string   `json:"check"`
	CheckResult string   `json:"check_result"`
	Guards      []string `json:"guards"`
	Decision    string   `json:"decision"`
	Reason      string   `json:"reason"`
	Message     string   `json:"message"`
	Remediators []struct {
		Name   string `json:"name"`
		Result string `json:"result"`
		Detail string `json:"detail"`
	} `json:"remediators"`
}

// The engine's steps in order: the scope guards and the cooldown (held
// before the check, so that a redelivery costs no query), the check, then
// the budget guards (rate). A guard that held names itself in the
// decision's reason, and every step before it passed; an action passed
// them all.
var (
	scopeGuards = []struct{ name, reason string }{
		{"namespace", remediate.ReasonNamespaceExcluded},
		{"opt-out", remediate.ReasonOptOut},
		{"cooldown", remediate.ReasonCooldown},
	}
	actionGuards = []struct{ name, reason string }{
		{"rate", remediate.ReasonRateLimited},
	}
)

// preCheck are the guards the engine runs before the check: the scope
// guards, the cooldown and (for disruptive remediators) the pause switch.
var preCheck = map[string]bool{"namespace": true, "opt-out": true, "cooldown": true, "pause": true}

// steps renders a decision as the lines of its steps, up to the one that
// held it: the steps after it were not reached. The decision's own list
// of guards ("name: ok", "name: held"), when the log carries it, says
// which ran; without it they are inferred from the reason.
func steps(d decisionLine) []string {
	if len(d.Guards) > 0 {
		return guardSteps(d)
	}
	var lines []string
	guardLine := func(gs []struct{ name, reason string }) (held bool) {
		var parts []string
		for _, g := range gs {
			if d.Reason == g.reason {
				parts, held = append(parts, g.name+" HELD"), true
				break
			}
			parts = append(parts, g.name+" ok")
		}
		lines = append(lines, "guards: "+strings.Join(parts, ", "))
		return held
	}
	if d.Target == "" || guardLine(scopeGuards) {
		return lines
	}
	if d.CheckResult == "" {
		return lines
	}
	lines = append(lines, fmt.Sprintf("check %s: %s", d.Check, d.CheckResult))
	if d.Decision != remediate.DecisionActed && d.Reason != remediate.ReasonRateLimited {
		return lines // held by the check: no further step
	}
	guardLine(actionGuards)
	return lines
}

func guardSteps(d decisionLine) []string {
	var before, after []string
	for _, g := range d.Guards {
		name, word, _ := strings.Cut(g, ":")
		word = strings.TrimSpace(word)
		if word != "ok" {
			word = strings.ToUpper(word)
		}
		if preCheck[name] {
			before = append(before, name+" "+word)
		} else {
			after = append(after, name+" "+word)
		}
	}
	lines := []string{"guards: " + strings.Join(before, ", ")}
	if d.CheckResult != "" {
		lines = append(lines, fmt.Sprintf("check %s: %s", d.Check, d.CheckResult))
	}
	if len(after) > 0 {
		lines = append(lines, "guards: "+strings.Join(after, ", "))
	}
	return lines
}

func (w *watcher) pollLog(r *lab.Serve) {
	f, err := os.Open(r.LogPath())
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(w.logOffset[r.Name], io.SeekStart); err != nil {
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return
	}
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		return
	}
	w.logOffset[r.Name] += int64(end + 1)
	for _, line := range bytes.Split(data[:end], []byte("\n")) {
		var d decisionLine
		if json.Unmarshal(line, &d) != nil || d.Msg != "decision" {
			continue
		}
		if d.Status == "resolved" {
			w.event("%s: %s resolved, recorded", r.Name, d.Alert)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %s → %s", r.Name, d.Alert, d.Target)
		for _, l := range steps(d) {
			fmt.Fprintf(&b, "\n           %s", l)
		}
		for _, rem := range d.Remediators {
			fmt.Fprintf(&b, "\n           %s %s", rem.Name, rem.Result)
			if rem.Detail != "" {
				fmt.Fprintf(&b, ": %s", rem.Detail)
			}
		}
		fmt.Fprintf(&b, "\n           decision: %s", d.Decision)
		if d.Reason != "" {
			fmt.Fprintf(&b, " (%s)", d.Reason)
		}
		if d.Decision == remediate.DecisionError && d.Message != "" {
			fmt.Fprintf(&b, ": %s", d.Message)
		}
		w.event("%s", b.String())
	}
}

func (w *watcher) leakguardEvents(ctx context.Context) ([]corev1.Event, error) {
	list, err := w.c.Admin.CoreV1().Events("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=leakguard"})
	if err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].EventTime.Before(&list.Items[j].EventTime) })
	return list.Items, nil
}

func (w *watcher) pollEvents(ctx context.Context) {
	evs, err := w.leakguardEvents(ctx)
	if err != nil {
		return
	}
	for _, e := range evs {
		if w.events[e.Namespace+"/"+e.Name] {
			continue
		}
		w.events[e.Namespace+"/"+e.Name] = true
		obj := e.InvolvedObject.Kind + " " + e.InvolvedObject.Name
		if e.InvolvedObject.Namespace != "" {
			obj = e.InvolvedObject.Kind + " " + e.InvolvedObject.Namespace + "/" + e.InvolvedObject.Name
		}
		w.event("kubernetes: Event %s on %s", e.Reason, obj)
	}
}

// done: the leaking Deployment annotated once with the other replica held
// by the cooldown, the ignored one held by its opt-out, the three nodes
// annotated.
func (w *watcher) done(ctx context.Context) bool {
	evs, err := w.leakguardEvents(ctx)
	if err != nil {
		return false
	}
	seen := map[string]int{}
	for _, e := range evs {
		reason := e.Reason
		if e.Reason == remediate.EventReasonHeld {
			for _, r := range []string{remediate.ReasonCooldown, remediate.ReasonOptOut} {
				if strings.Contains(e.Message, "("+r+")") {
					reason += "/" + r
				}
			}
		}
		seen[e.InvolvedObject.Name+" "+reason]++
	}
	return seen[w.s.Leaking.Name+" "+remediate.EventReasonActed] == 1 &&
		seen[w.s.Leaking.Name+" "+remediate.EventReasonHeld+"/"+remediate.ReasonCooldown] >= 1 &&
		seen[w.s.Ignored.Name+" "+remediate.EventReasonHeld+"/"+remediate.ReasonOptOut] >= 1 &&
		seen[w.s.OrphanNode.Name+" "+remediate.EventReasonActed] == 1 &&
		seen[w.s.AgentNode.Name+" "+remediate.EventReasonActed] == 1 &&
		seen[w.s.ControlPlane.Name+" "+remediate.EventReasonActed] == 1
}

// finalState prints the annotations leakguard wrote and the count of its
// Events per object.
func (w *watcher) finalState(ctx context.Context) {
	w.out.head("Final state")
	w.showDeployments(ctx, w.s.Leaking, w.s.Ignored, w.s.Flat)
	for _, n := range []lab.Node{w.s.OrphanNode, w.s.AgentNode, w.s.ControlPlane} {
		node, err := w.c.Admin.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil {
			w.showAnnotations("Node", n.Name, node.Annotations)
		}
	}
	w.showLeakguardEvents(ctx)
	w.showProfiles(ctx)
}

// showAnnotations prints the leakguard.io/ annotations of one object.
func (w *watcher) showAnnotations(kind, name string, ann map[string]string) {
	var keys []string
	for k := range ann {
		if strings.HasPrefix(k, "leakguard.io/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		w.out.line("  %s %s: no leakguard annotation", kind, name)
		return
	}
	w.out.line("  %s %s:", kind, name)
	for _, k := range keys {
		w.out.line("      %s: %s", k, ann[k])
	}
}

// showDeployments prints each Deployment's leakguard annotations and its
// pod template's restartedAt.
func (w *watcher) showDeployments(ctx context.Context, wls ...lab.Workload) {
	for _, wl := range wls {
		d, err := w.c.Admin.AppsV1().Deployments(wl.Namespace).Get(ctx, wl.Name, metav1.GetOptions{})
		if err == nil {
			w.showAnnotations("Deployment", wl.Namespace+"/"+wl.Name, d.Annotations)
			if at := d.Spec.Template.Annotations[restart.AnnotationRestartedAt]; at != "" {
				w.out.line("      pod template %s: %s (a rolling restart)", restart.AnnotationRestartedAt, at)
			}
		}
	}
}

// showLeakguardEvents prints the count of leakguard's Events per reason
// and object.
func (w *watcher) showLeakguardEvents(ctx context.Context) {
	evs, err := w.leakguardEvents(ctx)
	if err != nil {
		return
	}
	counts := map[string]int{}
	var keys []string
	for _, e := range evs {
		k := fmt.Sprintf("%-16s %s %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name)
		if counts[k] == 0 {
			keys = append(keys, k)
		}
		counts[k]++
	}
	w.out.line("  Events by leakguard:")
	for _, k := range keys {
		w.out.line("      %d × %s", counts[k], k)
	}
}

// showProfiles prints the profiles each replica stored.
func (w *watcher) showProfiles(ctx context.Context) {
	for _, r := range w.c.Serve {
		list, err := r.Profiles(ctx)
		if err != nil {
			continue
		}
		w.out.line("  profiles stored by %s (GET %s/profiles): %d", r.Name, r.URL(), len(list))
		for _, p := range list {
			w.out.line("      %s (%d bytes)", p.Name, p.Size)
		}
	}
}
