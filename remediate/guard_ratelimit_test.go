package remediate

import (
	"testing"
	"time"
)

func TestRateGuard(t *testing.T) {
	g := newRateGuard(6, 2, testNow) // one token per 10 s, burst 2
	steps := []struct {
		at      time.Duration
		peek    bool
		reserve bool
		cancel  bool
	}{
		{at: 0, peek: true, reserve: true},
		{at: 0, peek: true, reserve: true},
		{at: 0, peek: false, reserve: false},
		{at: 5 * time.Second, peek: false, reserve: false},
		{at: 10 * time.Second, peek: true, reserve: true, cancel: true},
		{at: 10 * time.Second, peek: true, reserve: true},
		{at: 11 * time.Second, peek: false, reserve: false},
	}
	for i, s := range steps {
		now := testNow.Add(s.at)
		if got := g.peekN(now, 1); got != s.peek {
			t.Errorf("step %d: peekN(+%v, 1) = %v, want %v", i, s.at, got, s.peek)
		}
		r := g.reserve(now)
		if (r != nil) != s.reserve {
			t.Errorf("step %d: reserve(+%v) = %v, want %v", i, s.at, r != nil, s.reserve)
		}
		if r != nil && s.cancel {
			r.CancelAt(now)
		}
	}
}
