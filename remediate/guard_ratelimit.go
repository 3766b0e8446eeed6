package remediate

import (
	"time"

	"golang.org/x/time/rate"
)

// rateGuard is the global token bucket over actions: one token per alert
// that acts, whatever the number of remediators it runs.
type rateGuard struct {
	perMinute float64
	burst     int
	lim       *rate.Limiter
}

func newRateGuard(perMinute float64, burst int, now time.Time) *rateGuard {
	lim := rate.NewLimiter(rate.Limit(perMinute/60), burst)
	// Start full at now, so that an injected clock far from the wall clock
	// sees the bucket as configured.
	lim.SetLimitAt(now, rate.Limit(perMinute/60))
	lim.SetBurstAt(now, burst)
	return &rateGuard{perMinute: perMinute, burst: burst, lim: lim}
}

// reserve takes a token at now. It returns nil when none is available;
// the caller cancels the reservation when it ends up not acting.
func (g *rateGuard) reserve(now time.Time) *rate.Reservation {
	r := g.lim.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return nil
	}
	return r
}

// peekN reports whether n tokens are available at now, taking none
// (dry-run, with the n-1 its ledger took).
func (g *rateGuard) peekN(now time.Time, n int) bool {
	return g.lim.TokensAt(now) >= float64(n)
}
