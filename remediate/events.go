package remediate

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Event reasons leakguard records on targets.
const (
	EventReasonActed  = "LeakguardActed"
	EventReasonDryRun = "LeakguardDryRun"
	EventReasonHeld   = "LeakguardHeld"
	EventReasonFailed = "LeakguardFailed"
)

// EventComponent is the source component of leakguard's Events.
const EventComponent = "leakguard"

// maxEventNamePrefix keeps an Event's name (object name, a dot and at most
// 24 characters) within the 253 characters of a DNS subdomain.
const maxEventNamePrefix = 200

// maxEventMessage is the API server's limit on an Event's message.
const maxEventMessage = 1024

// EventTimeout bounds the writing of one Event, which outlives the
// request: the Event of an action that happened is written even when
// Alertmanager hung up.
const EventTimeout = 10 * time.Second

// eventAttempts bounds the updates of an aggregated Event that keeps
// changing under us (another replica counting the same hold).
const eventAttempts = 3

// recordEvent records d as a core/v1 Event on its target. Events of a
// cluster-scoped target (a node) go to the default namespace, as
// kubectl's do.
//
// A hold (held, or held in dry-run) is aggregated as client-go's event
// recorder does: its name is fixed by the target and the reason, so the
// same hold again (Alertmanager's repeat_interval, a second replica)
// increments the existing Event's count and lastTimestamp instead of
// writing a new Event each time. Every other decision gets an Event of its
// own, named uniquely per target, decision and fingerprint at nanosecond
// resolution, so two replicas never collide.
//
// It runs even when ctx is done, bounded by eventTimeout.
func recordEvent(ctx context.Context, c kubernetes.Interface, d *Decision, t *Target, eventType, reason string) error {
	return writeEvent(ctx, c, eventWrite{d: d, t: t, eventType: eventType, reason: reason, count: 1, first: d.at})
}

// Event is an Event that a remediator's own work records outside a
// decision: a drain's end, say.
type Event struct {
	// Alert is the alert the work is for; Action names the work
	// ("drain"); Message says what it did.
	Alert, Action, Message string
	// Type is corev1.EventTypeNormal or EventTypeWarning; Reason is the
	// Event's reason.
	Type, Reason string
	// At is when it happened.
	At time.Time
}

// RecordEvent records ev on t's object, named and bounded as the Events
// of decisions are.
func RecordEvent(ctx context.Context, c kubernetes.Interface, t *Target, ev Event) error {
	d := &Decision{AlertName: ev.Alert, Decision: ev.Action, Message: ev.Message, at: ev.At}
	return recordEvent(ctx, c, d, t, ev.Type, ev.Reason)
}

// eventWrite is one Event to write: the decision it records (the last of
// count alike, the first of them at first).
type eventWrite struct {
	d                 *Decision
	t                 *Target
	eventType, reason string
	count             int32
	first             time.Time
	// known is what this process knows of its aggregated Events; nil
	// knows nothing.
	known *knownEvents
}

func writeEvent(ctx context.Context, c kubernetes.Interface, w eventWrite) error {
	d, t, reason, eventType := w.d, w.t, w.reason, w.eventType
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), EventTimeout)
	defer cancel()
	ns := t.Object.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := d.at
	prefix := t.Object.Name
	if len(prefix) > maxEventNamePrefix {
		prefix = prefix[:maxEventNamePrefix]
	}
	aggregate := d.isHold()
	var name string
	if aggregate {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s|%s|%s|%s", t.Object, t.Object.UID, reason, d.Reason)
		name = fmt.Sprintf("%s.held.%016x", prefix, h.Sum64())
	} else {
		h := fnv.New32a()
		fmt.Fprintf(h, "%s|%s|%s|%d", t.Object, d.Fingerprint, reason, now.UnixNano())
		name = fmt.Sprintf("%s.%x%08x", prefix, now.UnixNano(), h.Sum32())
	}
	msg := d.eventMessage()
	if w.count > 1 {
		msg = fmt.Sprintf("%d alerts of one delivery, the last: %s", w.count, msg)
	}
	msg = Truncate(msg, maxEventMessage)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": EventComponent},
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
		Message:             msg,
		Type:                eventType,
		Source:              corev1.EventSource{Component: EventComponent},
		ReportingController: "leakguard.io/serve",
		ReportingInstance:   EventComponent,
		Action:              d.Decision,
		FirstTimestamp:      metav1.NewTime(w.first),
		LastTimestamp:       metav1.NewTime(now),
		EventTime:           metav1.NewMicroTime(now),
		Count:               w.count,
	}
	events := c.CoreV1().Events(ns)
	key := ns + "/" + name
	exists := false
	if last, ok := w.known.get(key); aggregate && ok {
		// The Event as this process last wrote it: one patch, under its
		// resourceVersion. Refused because another replica counted
		// meanwhile (Conflict), it is read and counted below; because
		// it expired (NotFound), created anew.
		err := countEvent(ctx, events, name, last.resourceVersion, last.count+w.count, now, msg, eventType, w.known, key)
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err):
			exists = true
		case !apierrors.IsNotFound(err):
			w.known.forget(key)
			return fmt.Errorf("record event on %s: count the aggregated event: %w", t.Object, ClassifyKube(err))
		}
		w.known.forget(key)
	}
	if !exists {
		created, err := events.Create(ctx, ev, metav1.CreateOptions{})
		if err == nil {
			if aggregate {
				w.known.put(key, created, w.count)
			}
			return nil
		}
		if !aggregate || !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("record event on %s: %w", t.Object, ClassifyKube(err))
		}
	}
	for attempt := 1; ; attempt++ {
		cur, err := events.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("record event on %s: read the aggregated event: %w", t.Object, ClassifyKube(err))
		}
		err = countEvent(ctx, events, name, cur.ResourceVersion, cur.Count+w.count, now, msg, eventType, w.known, key)
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == eventAttempts {
			return fmt.Errorf("record event on %s: count the aggregated event: %w", t.Object, ClassifyKube(err))
		}
	}
}

// countEvent sets the aggregated Event's count (and last timestamp,
// message and type) with a merge patch that carries resourceVersion, and
// remembers what it wrote in known.
func countEvent(ctx context.Context, events typedcorev1.EventInterface, name, resourceVersion string, count int32, now time.Time, msg, eventType string,
	known *knownEvents, key string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata":      map[string]any{"resourceVersion": resourceVersion},
		"count":         count,
		"lastTimestamp": metav1.NewTime(now),
		"message":       msg,
		"type":          eventType,
	})
	if err != nil {
		return err
	}
	patched, err := events.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return err
	}
	known.put(key, patched, count)
	return nil
}

// maxKnownEvents bounds knownEvents; past it, it starts over.
const maxKnownEvents = 4096

// knownEvents remembers, for each aggregated Event this process wrote,
// its resourceVersion and count, so that the next hold of the same target
// and reason (the next repeat_interval) is one patch under that
// resourceVersion instead of a create that fails, a read and a patch. It
// is a shortcut, not a record: the count lives in the Event, a patch
// refused because another replica counted meanwhile (Conflict) or because
// the Event expired (NotFound) takes the long way, and a process that
// starts without it loses nothing. A nil *knownEvents knows nothing.
type knownEvents struct {
	mu sync.Mutex
	m  map[string]knownEvent
}

type knownEvent struct {
	resourceVersion string
	count           int32
}

func (k *knownEvents) get(key string) (knownEvent, bool) {
	if k == nil {
		return knownEvent{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[key]
	return e, ok
}

// put remembers ev (as the API server answered) with count; an answer
// without a resourceVersion is not remembered.
func (k *knownEvents) put(key string, ev *corev1.Event, count int32) {
	if k == nil || ev == nil || ev.ResourceVersion == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil || len(k.m) >= maxKnownEvents {
		k.m = map[string]knownEvent{}
	}
	k.m[key] = knownEvent{resourceVersion: ev.ResourceVersion, count: count}
}

func (k *knownEvents) forget(key string) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
}

// heldEvents are the Events of one delivery's holds, written once the
// delivery is decided: one per target and reason, counting every alert
// of the delivery that it holds, where each alert wrote (or counted up)
// the Event in turn. Alertmanager groups alerts, and the pods of one
// workload held by its cooldown, say, arrive together. client-go's
// recorder (tools/record) aggregates in a process of its own instead,
// asynchronously, under Events named by time: two replicas, or one before
// and after a restart, would each start new Events, and its queue and
// spam filter drop Events silently under a storm; here every hold is
// counted in the cluster, in one Event per target and reason, before
// Alertmanager has its answer.
type heldEvents struct {
	order   []heldKey
	pending map[heldKey]*eventWrite
}

type heldKey struct {
	target         ObjectRef
	reason, detail string
}

// add counts d, a hold of t, into the delivery's Events.
func (h *heldEvents) add(d *Decision, t *Target, eventType, reason string) {
	k := heldKey{t.Object, reason, d.Reason}
	if w, ok := h.pending[k]; ok {
		w.d, w.t, w.count = d, t, w.count+1
		if eventType == corev1.EventTypeWarning {
			w.eventType = eventType // a Warning among them is not hidden
		}
		return
	}
	if h.pending == nil {
		h.pending = map[heldKey]*eventWrite{}
	}
	h.pending[k] = &eventWrite{d: d, t: t, eventType: eventType, reason: reason, count: 1, first: d.at}
	h.order = append(h.order, k)
}

// flush writes the delivery's held Events, in the order of their first
// alert; a failure is logged, as an Event written at once is.
func (h *heldEvents) flush(ctx context.Context, c kubernetes.Interface, known *knownEvents, logger *slog.Logger) {
	for _, k := range h.order {
		w := h.pending[k]
		w.known = known
		if err := writeEvent(ctx, c, *w); err != nil {
			logger.Warn("could not record event", "alert", w.d.AlertName, "target", w.d.Target, "alerts", w.count, "error", err)
		}
	}
	h.order, h.pending = nil, nil
}
