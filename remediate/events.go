package remediate

import (
	"context"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Event reasons leakguard records on targets.
const (
	EventReasonActed  = "LeakguardActed"
	EventReasonDryRun = "LeakguardDryRun"
	EventReasonHeld   = "LeakguardHeld"
	EventReasonFailed = "LeakguardFailed"
)

// eventComponent is the source component of leakguard's Events.
const eventComponent = "leakguard"

// maxEventNamePrefix keeps an Event's name (object name, a dot and 24 hex
// digits) within the 253 characters of a DNS subdomain.
const maxEventNamePrefix = 200

// maxEventMessage is the API server's limit on an Event's message.
const maxEventMessage = 1024

// recordEvent creates a core/v1 Event on the decision's target. Events of a
// cluster-scoped target (a node) go to the default namespace, as
// kubectl's do. The name is unique per target, decision and fingerprint
// at nanosecond resolution, so two replicas never collide.
func recordEvent(ctx context.Context, c kubernetes.Interface, d *Decision, t *Target, eventType, reason string) error {
	ns := t.Object.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := d.at
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%s|%d", t.Object, d.Fingerprint, reason, now.UnixNano())
	prefix := t.Object.Name
	if len(prefix) > maxEventNamePrefix {
		prefix = prefix[:maxEventNamePrefix]
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x%08x", prefix, now.UnixNano(), h.Sum32()),
			Namespace: ns,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": eventComponent},
		},
		InvolvedObject: corev1.ObjectReference{
			Kind:            t.Object.Kind,
			APIVersion:      t.Object.APIVersion,
			Namespace:       t.Object.Namespace,
			Name:            t.Object.Name,
			UID:             t.Object.UID,
			ResourceVersion: t.ResourceVersion,
		},
		Reason:              reason,
		Message:             truncate(d.eventMessage(), maxEventMessage),
		Type:                eventType,
		Source:              corev1.EventSource{Component: eventComponent},
		ReportingController: "leakguard.io/serve",
		ReportingInstance:   eventComponent,
		Action:              d.Decision,
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		EventTime:           metav1.NewMicroTime(now),
		Count:               1,
	}
	if _, err := c.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("record event on %s: %w", t.Object, classifyKube(err))
	}
	return nil
}
