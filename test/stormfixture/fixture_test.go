package stormfixture

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
)

// TestKinds checks that each kind's alerts get the decision the load
// run's tables name it by, over both clusters: Generated (the load run's)
// and Client over Objects (the storm test's), in dry-run.
func TestKinds(t *testing.T) {
	now := time.Now()
	want := map[Kind]string{
		NoPolicy:   remediate.DecisionHeld + "/" + remediate.ReasonNoPolicy,
		OutOfScope: remediate.DecisionHeld + "/" + remediate.ReasonNamespaceExcluded,
		Cooldown:   remediate.DecisionDryRun + "/" + remediate.ReasonCooldown,
		Leak:       remediate.DecisionDryRun + "/" + remediate.ReasonWouldAct,
	}
	reg := builtin.Registry()
	policy, err := remediate.DefaultPolicy(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		for name, client := range map[string]kubernetes.Interface{
			"generated": Generated(now),
			"stored":    Client(Objects(k, 30, now)...),
		} {
			t.Run(string(k)+"/"+name, func(t *testing.T) {
				e, err := remediate.NewEngine(remediate.Options{
					Client: client, Querier: Querier{}, Policy: policy, DryRun: true, Now: func() time.Time { return now },
				})
				if err != nil {
					t.Fatal(err)
				}
				var msg struct {
					Alerts []template.Alert `json:"alerts"`
				}
				// One alert per delivery: within a delivery, dry-run holds a
				// second leak alert by the first's would-be cooldown.
				for i := range 3 {
					if err := json.Unmarshal(Payload(k, 10*i+1, 1), &msg); err != nil {
						t.Fatal(err)
					}
					ds, err := e.Decide(context.Background(), msg.Alerts)
					if err != nil {
						t.Fatalf("Decide(%s alert %d) error: %v", k, 10*i+1, err)
					}
					if got := ds[0].Decision + "/" + ds[0].Reason; got != want[k] {
						t.Errorf("Decide(%s alert %d) = %s (%s), want %s", k, 10*i+1, got, ds[0].Message, want[k])
					}
				}
			})
		}
	}
}
