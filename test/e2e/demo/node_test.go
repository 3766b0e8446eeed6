package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// fakePod is a pod of the real node's story as the kubelet reports it.
func fakePod(name, app, uid string, created time.Time, limit string, restarts int32, last *corev1.ContainerStateTerminated) *corev1.Pod {
	isController := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: nodeNamespace, UID: types.UID(uid), Labels: map[string]string{"app": app},
			CreationTimestamp: metav1.NewTime(created),
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name[:strings.LastIndex(name, "-")], Controller: &isController}},
		},
		Spec: corev1.PodSpec{NodeName: lab.NodeName, Containers: []corev1.Container{{
			Name: lab.ContainerName, Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: lab.ContainerName, RestartCount: restarts,
			LastTerminationState: corev1.ContainerState{Terminated: last},
		}}},
	}
}

// timeless drops the timeline's "[  12.3s] " prefixes.
var timeless = regexp.MustCompile(`(?m)^\[ *[0-9.]+s\] `)

// TestNodeStoryTimeline: the real node's timeline shows each pod once as
// the ReplicaSet controller creates it and once as the kubelet runs it,
// each OOM kill of the worker once (with the kernel named, the limit, and
// the restart after it), the Deployment controller's Events once, the
// first pod of the leaking Deployment gone, its replacement; and the
// working-set line follows the first leaking pod.
func TestNodeStoryTimeline(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	kill := &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, ContainerID: "containerd://a1", FinishedAt: metav1.NewTime(t0.Add(25 * time.Second))}
	client := fake.NewSimpleClientset(
		fakePod("web-7d9f8-abcde", nodeLeaking, "11111111-aaaa", t0, "400Mi", 0, nil),
		fakePod("worker-5c6d7-fghij", nodeOOM, "22222222-bbbb", t0.Add(time.Second), "96Mi", 1, kill),
		&corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web.1", Namespace: nodeNamespace},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: nodeLeaking},
			Reason:         "ScalingReplicaSet", Message: "Scaled up replica set web-7d9f8 from 0 to 1", Count: 1,
			Source: corev1.EventSource{Component: "deployment-controller"},
		},
		&corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "web.2", Namespace: nodeNamespace},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-7d9f8-abcde"},
			Reason:         "Pulled", Message: "Container image already present on machine", Count: 1,
			Source: corev1.EventSource{Component: "kubelet"},
		},
	)
	var buf bytes.Buffer
	w := newWatcher(&lab.Chain{Lab: &lab.Lab{Admin: client}}, nil, &printer{w: &buf})
	n := &nodeStory{pods: map[types.UID]*podSeen{}, kubeEvents: map[string]bool{}}
	w.node = n
	ctx := context.Background()

	n.poll(ctx, w)
	want := []string{
		"replicaset-controller: pod shop/web-7d9f8-abcde created (uid 11111111) for ReplicaSet shop/web-7d9f8",
		"kubelet: pod shop/web-7d9f8-abcde Running on node 127.0.0.1",
		"replicaset-controller: pod shop/worker-5c6d7-fghij created (uid 22222222) for ReplicaSet shop/worker-5c6d7",
		"kubelet: pod shop/worker-5c6d7-fghij Running on node 127.0.0.1",
		"kubelet: container app of shop/worker-5c6d7-fghij terminated: OOMKilled, exit code 137 (the kernel's OOM killer, at the 96 MiB limit)",
		"kubelet: container app of shop/worker-5c6d7-fghij started again (restart 1)",
		"deployment-controller: Event ScalingReplicaSet on Deployment shop/web: Scaled up replica set web-7d9f8 from 0 to 1",
	}
	if diff := cmp.Diff(want, lines(&buf)); diff != "" {
		t.Errorf("first poll (-want +got):\n%s", diff)
	}
	if n.kills != 1 || n.firstLeaking == nil || n.firstLeaking.name != "web-7d9f8-abcde" || w.leak.pod != "web-7d9f8-abcde" {
		t.Errorf("after the first poll: kills %d, first leaking pod %+v, working set of %q", n.kills, n.firstLeaking, w.leak.pod)
	}

	// Nothing new: nothing printed.
	n.poll(ctx, w)
	if got := lines(&buf); len(got) != 0 {
		t.Errorf("a poll with nothing new printed %q", got)
	}

	// The kubelet kills the worker again and has not restarted it yet;
	// leakguard's restart: the rollout's new pod, the first one gone.
	worker, err := client.CoreV1().Pods(nodeNamespace).Get(ctx, "worker-5c6d7-fghij", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	worker.Status.ContainerStatuses[0].State.Terminated = &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, ContainerID: "containerd://a2", FinishedAt: metav1.NewTime(t0.Add(60 * time.Second))}
	if _, err := client.CoreV1().Pods(nodeNamespace).UpdateStatus(ctx, worker, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods(nodeNamespace).Delete(ctx, "web-7d9f8-abcde", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods(nodeNamespace).Create(ctx, fakePod("web-6b5a4-klmno", nodeLeaking, "33333333-cccc", t0.Add(3*time.Minute), "400Mi", 0, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.poll(ctx, w)
	want = []string{
		"kubelet: container app of shop/worker-5c6d7-fghij terminated: OOMKilled, exit code 137 (the kernel's OOM killer, at the 96 MiB limit)",
		"replicaset-controller: pod shop/web-6b5a4-klmno created (uid 33333333) for ReplicaSet shop/web-6b5a4",
		"kubelet: pod shop/web-6b5a4-klmno Running on node 127.0.0.1",
		"kubernetes: pod shop/web-7d9f8-abcde (uid 11111111) gone",
	}
	if diff := cmp.Diff(want, lines(&buf)); diff != "" {
		t.Errorf("poll after the restart (-want +got):\n%s", diff)
	}
	if n.kills != 2 || n.replacement == nil || n.replacement.name != "web-6b5a4-klmno" || !n.firstLeaking.gone || w.leak.pod != "web-7d9f8-abcde" {
		t.Errorf("after the restart: kills %d, replacement %+v, first gone %t, working set of %q", n.kills, n.replacement, n.firstLeaking.gone, w.leak.pod)
	}
}

// TestNodeStoryPlayedOut: the real node's story has played out only once
// the worker was OOM-killed and ContainerOOMKilled fired for it and
// leakguard acted on its Deployment, leakguard restarted the leaking
// Deployment exactly once, its replacement runs, the first pod is gone and
// none of the first pod's alerts is left.
func TestNodeStoryPlayedOut(t *testing.T) {
	first := &podSeen{name: "web-7d9f8-abcde", app: nodeLeaking, running: true, gone: true}
	replacement := &podSeen{name: "web-6b5a4-klmno", app: nodeLeaking, running: true}
	seq := 0
	acted := func(name, message string) *corev1.Event {
		seq++
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%d", name, seq), Namespace: nodeNamespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "leakguard"}},
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: nodeNamespace, Name: name},
			Reason:         remediate.EventReasonActed, Message: message,
		}
	}
	restarted := acted(nodeLeaking, "ContainerMemoryOOMPredicted: annotate acted; "+restart.Name+" acted: rolling restart")
	annotatedWorker := acted(nodeOOM, "ContainerOOMKilled: annotate acted")
	oomFiring := map[string]string{rules.AlertContainerOOMKilled + "{shop/worker-5c6d7-fghij/app}": "firing"}
	for _, tc := range []struct {
		name      string
		kills     int
		first     *podSeen
		repl      *podSeen
		promState map[string]string
		events    []*corev1.Event
		// oomFired: an earlier poll saw ContainerOOMKilled firing.
		oomFired bool
		want     bool
	}{
		{name: "played out", kills: 1, first: first, repl: replacement, promState: oomFiring, events: []*corev1.Event{restarted, annotatedWorker}, want: true},
		{name: "the first pod's alerts and ContainerOOMKilled resolved since", kills: 3, first: first, repl: replacement, promState: map[string]string{
			rules.AlertContainerOOMKilled + "{shop/worker-5c6d7-fghij/app}":       "",
			rules.AlertContainerMemoryLeak + "{shop/web-7d9f8-abcde/app}":         "",
			rules.AlertContainerMemoryOOMPredicted + "{shop/web-7d9f8-abcde/app}": "",
		}, events: []*corev1.Event{restarted, annotatedWorker}, oomFired: true, want: true},
		{name: "no OOM kill yet", kills: 0, first: first, repl: replacement, promState: oomFiring, events: []*corev1.Event{restarted, annotatedWorker}, want: false},
		{name: "ContainerOOMKilled never fired", kills: 1, first: first, repl: replacement, promState: map[string]string{rules.AlertContainerOOMKilled + "{shop/worker-5c6d7-fghij/app}": "pending"}, events: []*corev1.Event{restarted, annotatedWorker}, want: false},
		{name: "no replacement yet", kills: 1, first: first, repl: nil, promState: oomFiring, events: []*corev1.Event{restarted, annotatedWorker}, want: false},
		{name: "replacement not running", kills: 1, first: first, repl: &podSeen{name: "web-6b5a4-klmno"}, promState: oomFiring, events: []*corev1.Event{restarted, annotatedWorker}, want: false},
		{name: "the first pod still there", kills: 1, first: &podSeen{name: "web-7d9f8-abcde", running: true}, repl: replacement, promState: oomFiring, events: []*corev1.Event{restarted, annotatedWorker}, want: false},
		{name: "the first pod's alert still firing", kills: 1, first: first, repl: replacement, promState: map[string]string{
			rules.AlertContainerOOMKilled + "{shop/worker-5c6d7-fghij/app}":       "firing",
			rules.AlertContainerMemoryOOMPredicted + "{shop/web-7d9f8-abcde/app}": "firing",
		}, events: []*corev1.Event{restarted, annotatedWorker}, want: false},
		{name: "no restart by leakguard", kills: 1, first: first, repl: replacement, promState: oomFiring, events: []*corev1.Event{annotatedWorker}, want: false},
		{name: "two restarts", kills: 1, first: first, repl: replacement, promState: oomFiring, events: []*corev1.Event{restarted, acted(nodeLeaking, "ContainerMemoryLeak: restart acted"), annotatedWorker}, want: false},
		{name: "the worker not annotated", kills: 1, first: first, repl: replacement, promState: oomFiring, events: []*corev1.Event{restarted}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewSimpleClientset()
			for _, e := range tc.events {
				if _, err := client.CoreV1().Events(nodeNamespace).Create(context.Background(), e, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			w := newWatcher(&lab.Chain{Lab: &lab.Lab{Admin: client}}, nil, &printer{w: &bytes.Buffer{}})
			w.promState = tc.promState
			n := &nodeStory{kills: tc.kills, firstLeaking: tc.first, replacement: tc.repl, oomAlertFired: tc.oomFired}
			if got := n.playedOut(context.Background(), w); got != tc.want {
				t.Errorf("playedOut = %t, want %t", got, tc.want)
			}
		})
	}
}

// TestNodeDemoPolicy: the real node's policy is the default with restart
// after annotate for ContainerMemoryOOMPredicted, the rate limit raised,
// and every other entry as the default has it; leakguard's policy parser
// takes it.
func TestNodeDemoPolicy(t *testing.T) {
	data, err := nodeDemoPolicy()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remediate.ParsePolicy(data, builtin.Registry()); err != nil {
		t.Fatalf("the policy does not parse: %v\n%s", err, data)
	}
	var got, def map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(remediate.DefaultPolicyYAML(), &def); err != nil {
		t.Fatal(err)
	}
	predicted := got["alerts"].(map[string]any)[rules.AlertContainerMemoryOOMPredicted].(map[string]any)
	wantRemediators := []any{
		map[string]any{"name": "annotate"},
		map[string]any{"name": "restart", "enabled": true, "args": map[string]any{"minReadyReplicas": float64(1)}},
	}
	if diff := cmp.Diff(wantRemediators, predicted["remediators"]); diff != "" {
		t.Errorf("ContainerMemoryOOMPredicted's remediators (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"perMinute": float64(60), "burst": float64(20)}, got["rateLimit"]); diff != "" {
		t.Errorf("rateLimit (-want +got):\n%s", diff)
	}
	// Everything else as the default has it.
	delete(got, "rateLimit")
	delete(def, "rateLimit")
	delete(got["alerts"].(map[string]any), rules.AlertContainerMemoryOOMPredicted)
	delete(def["alerts"].(map[string]any), rules.AlertContainerMemoryOOMPredicted)
	if diff := cmp.Diff(def, got); diff != "" {
		t.Errorf("the rest of the policy differs from the default (-default +got):\n%s", diff)
	}
}

// lines returns the timeline's lines printed since the last call, without
// their time prefix, and empties buf.
func lines(buf *bytes.Buffer) []string {
	text := strings.TrimSpace(timeless.ReplaceAllString(buf.String(), ""))
	buf.Reset()
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}
