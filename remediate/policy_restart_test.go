package remediate_test

import (
	"os"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/restart"
)

// TestRestartPolicyFile parses the restart example and its arguments.
func TestRestartPolicyFile(t *testing.T) {
	data, err := os.ReadFile("testdata/policy/good-restart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := remediate.ParsePolicy(data, builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	rs := p.Entry("ContainerMemoryOOMPredicted").Remediators
	if len(rs) != 2 || !rs[1].Disruptive {
		t.Fatalf("remediators = %+v, want annotate and a disruptive restart", rs)
	}
	want := restart.Restart{MinReadyReplicas: 1, RecurrenceCount: 2, RecurrenceWindow: 12 * time.Hour}
	if got := rs[1].Remediator.(restart.Restart); got != want {
		t.Errorf("restart = %+v, want %+v", got, want)
	}
}
