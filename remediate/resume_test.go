package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// countingResumer records the Env it was resumed with and answers with
// its counts and error.
type countingResumer struct {
	calls            int
	env              Env
	resumed, reports int
	err              error
}

func (c *countingResumer) Resume(_ context.Context, env Env) (int, int, error) {
	c.calls++
	c.env = env
	return c.resumed, c.reports, c.err
}

// TestResumeCallsEveryResumer: Engine.Resume calls each registered
// Resumer once, whether the policy names it or not, with the engine's
// client, clock and gate, and sums their counts; a Resumer's error is
// returned (named) without keeping the others from running.
func TestResumeCallsEveryResumer(t *testing.T) {
	reg := shippedRegistry()
	a := &countingResumer{resumed: 2, reports: 1}
	b := &countingResumer{reports: 3, err: errors.New("list nodes: 503")}
	for name, r := range map[string]*countingResumer{"resume-a": a, "resume-b": b} {
		if err := reg.AddRemediator(RemediatorInfo{Name: name, Targets: []string{TargetNode}, Resumer: r,
			New: func(json.RawMessage) (Remediator, error) { return disruptor{}, nil }}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := DefaultPolicy(reg)
	if err != nil {
		t.Fatal(err)
	}
	cs := newCluster(t, fixtures()...)
	e, err := NewEngine(Options{Client: cs, Policy: p, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	resumed, reported, err := e.Resume(context.Background())
	if resumed != 2 || reported != 4 {
		t.Errorf("Resume() = %d, %d; want 2 resumed (a) and 4 reported (a and b)", resumed, reported)
	}
	if err == nil || !strings.Contains(err.Error(), "resume resume-b: list nodes: 503") {
		t.Errorf("Resume() error = %v, want b's, named", err)
	}
	for name, r := range map[string]*countingResumer{"a": a, "b": b} {
		if r.calls != 1 || r.env.Client != cs || r.env.Gate == nil || r.env.Clock == nil || !r.env.Clock().Equal(testNow) || !r.env.Now.Equal(testNow) {
			t.Errorf("%s: %d calls, env %+v; want one call with the engine's client, clock and gate", name, r.calls, r.env)
		}
	}
	// The policy names neither: the gate says so, and lets the work end
	// its record.
	if g := a.env.Gate(context.Background(), "ContainerMemoryLeak", "resume-a"); g.Wait == "" || !g.MayWrite || g.Remediator != nil {
		t.Errorf("Gate() = %+v, want a wait that may write (the entry has no resume-a)", g)
	}
}
