package check

import (
	"encoding/json"
	"testing"

	"github.com/prometheus/common/model"
)

func TestDyingCgroups(t *testing.T) {
	c, err := NewDyingCgroups(json.RawMessage(`{"threshold": 100}`))
	if err != nil {
		t.Fatal(err)
	}
	a := alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "n1"})
	q, err := c.Query(a)
	if err != nil || q != `max(node:leakguard_node_dying_cgroups:max{node="n1"})` {
		t.Errorf("Query = %q, %v", q, err)
	}
	for _, tc := range []struct {
		v    float64
		want bool
	}{{101, true}, {100, false}, {3, false}} {
		r, err := c.Evaluate(a, vec(tc.v), testNow)
		if err != nil || r.Confirmed != tc.want {
			t.Errorf("Evaluate(%g) = %v (%v), want %v", tc.v, r.Confirmed, err, tc.want)
		}
	}
	if _, err := c.Evaluate(a, model.Vector{}, testNow); err == nil {
		t.Errorf("Evaluate(no data) = nil error")
	}
	if _, err := NewDyingCgroups(json.RawMessage(`{"threshold": -1}`)); err == nil {
		t.Errorf("a negative threshold is accepted")
	}
}
