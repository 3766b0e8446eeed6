package remediate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

// TestHeldEventsAggregate holds one alert three times by the cooldown:
// one Event, counted three times, as client-go's recorder does; another
// reason on the same target is an Event of its own.
func TestHeldEventsAggregate(t *testing.T) {
	objs := fixtures()
	for _, o := range objs {
		if kindOf(o) == KindDeployment {
			o.(metav1.Object).SetAnnotations(map[string]string{CooldownAnnotation("annotate"): testNow.Add(-time.Minute).Format(time.RFC3339)})
		}
	}
	e, cs := newTestEngine(t, engineSetup{objs: objs})
	for i := range 3 {
		e.now = func() time.Time { return testNow.Add(time.Duration(i) * time.Second) }
		if d, err := e.DecideOne(context.Background(), leakAlert()); err != nil || d.Reason != ReasonCooldown {
			t.Fatalf("DecideOne() #%d = %s/%s, %v; want held/cooldown", i, d.Decision, d.Reason, err)
		}
	}
	evs := events(t, cs)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1 aggregated: %+v", len(evs), evs)
	}
	if ev := evs[0]; ev.Count != 3 || ev.Reason != EventReasonHeld || !ev.LastTimestamp.Time.Equal(testNow.Add(2*time.Second)) || !ev.FirstTimestamp.Time.Equal(testNow) {
		t.Errorf("event count %d reason %s first %v last %v; want 3 LeakguardHeld from %v to %v", ev.Count, ev.Reason, ev.FirstTimestamp, ev.LastTimestamp, testNow, testNow.Add(2*time.Second))
	}
	// Another reason (opt-out on the namespace) on the same Deployment.
	ns, _ := cs.CoreV1().Namespaces().Get(context.Background(), "shop", metav1.GetOptions{})
	ns.Annotations = map[string]string{AnnotationIgnore: "true"}
	if _, err := cs.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.DecideOne(context.Background(), leakAlert()); d.Reason != ReasonOptOut {
		t.Fatalf("DecideOne() = %s/%s, want held/opt-out", d.Decision, d.Reason)
	}
	if n := len(events(t, cs)); n != 2 {
		t.Errorf("%d events after a hold of another reason, want 2", n)
	}
}

// ctxEventsClient is a fake clientset whose Event writes fail once their
// context is done, as a real client's do.
type ctxEventsClient struct{ *fake.Clientset }

func (c ctxEventsClient) CoreV1() corev1client.CoreV1Interface { return ctxCore{c.Clientset.CoreV1()} }

type ctxCore struct{ corev1client.CoreV1Interface }

func (c ctxCore) Events(ns string) corev1client.EventInterface {
	return ctxEvents{c.CoreV1Interface.Events(ns)}
}

type ctxEvents struct{ corev1client.EventInterface }

func (e ctxEvents) Create(ctx context.Context, ev *corev1.Event, opts metav1.CreateOptions) (*corev1.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e.EventInterface.Create(ctx, ev, opts)
}

// TestEventAfterHangUp makes Alertmanager hang up just as annotate
// succeeds: the action happened, and its Event is written all the same.
func TestEventAfterHangUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, cs := newTestEngine(t, engineSetup{opts: func(o *Options) { o.Client = ctxEventsClient{o.Client.(*fake.Clientset)} }})
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if containsFinding(a) {
			cancel()
		}
		return false, nil, nil
	})
	ds, err := e.Decide(ctx, []template.Alert{leakAlert()})
	if err != nil || ds[0].Decision != DecisionActed {
		t.Fatalf("Decide() = %+v, %v; want acted", ds, err)
	}
	evs := events(t, cs)
	if len(evs) != 1 || evs[0].Reason != EventReasonActed {
		t.Errorf("events = %+v, want one LeakguardActed", evs)
	}
}

func containsFinding(a k8stesting.Action) bool {
	pa, ok := a.(k8stesting.PatchActionImpl)
	return ok && len(pa.Patch) > 0 && strings.Contains(string(pa.Patch), AnnotationFinding)
}
