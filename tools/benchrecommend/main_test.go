package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// week returns a window's observation with every sample at base and the
// given samples overridden.
func week(base float64, at map[int]float64) observed {
	o := observed{ws: make([]float64, perWin), flag: make([]bool, perWin), killDays: make([]bool, 7)}
	for i := range o.ws {
		o.ws[i] = base
	}
	for i, v := range at {
		o.ws[i] = v
	}
	return o
}

func near(a, b float64) bool { return math.Abs(a-b) < 1 }

func TestFormulas(t *testing.T) {
	day := int(24 * time.Hour / step)
	peaky := week(400*mib, map[int]float64{3: 1000 * mib})
	killed := week(400*mib, nil)
	killed.kills, killed.killLimit, killed.killDays[6] = 1, 500*mib, true
	// Daily peaks falling from 700 MiB (the oldest day) to 100 MiB (the
	// latest), weighted 1/64 .. 1.
	falling := week(0, nil)
	for d := range 7 {
		for i := d * day; i < (d+1)*day; i++ {
			falling.ws[i] = float64(100*(7-d)) * mib
		}
	}
	tests := []struct {
		name string
		f    func([]observed, float64) (float64, bool)
		o    observed
		want float64
	}{
		{"KRR simple: the peak plus 15 %", krrSimple, peaky, 1150 * mib},
		{"KRR simple: the OOM kill not counted", krrSimple, killed, 460 * mib},
		{"KRR simple-oom: the limit at the kill plus 15 %", krrSimpleOOM, killed, 575 * mib},
		{"KRR simple-oom: the peak when higher", krrSimpleOOM, peaky, 1150 * mib},
		// Ascending, the weights add up to 1, 1.5, 1.75, 1.875 of 127/64:
		// 90 % (1.79) is reached at the 4th day's 400 MiB; the older, higher
		// peaks have decayed.
		{"VPA: the 90th percentile of decayed daily peaks plus 15 %", vpa, falling, 460 * mib},
		// the OOM day counts max(500 MiB * 1.2, 500 MiB + 100 MiB) = 600 MiB.
		{"VPA: an OOM day counts the kill plus 20 %, at least 100 MiB", vpa, killed, 690 * mib},
		{"VPA: at least 250 MiB", vpa, week(10*mib, nil), 250 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.f([]observed{tt.o}, 0)
			if !ok || !near(got, tt.want) {
				t.Errorf("got %.0f MiB, %v; want %.0f MiB", got/mib, ok, tt.want/mib)
			}
		})
	}
}

func TestRunOOMKill(t *testing.T) {
	c := &container{kind: steady, base: 100 * mib, rollouts: map[int]bool{}}
	rs := 0
	o := run(c, 0, 90*mib, &rs)
	if o.kills == 0 || o.restarts != o.kills {
		t.Errorf("demand above the limit: %d kills, %d restarts; want kills, each a restart", o.kills, o.restarts)
	}
	if peak := peakOf(o); peak >= 90*mib {
		t.Errorf("working set peak %.0f MiB, want it below the limit (the scrape misses the kill)", peak/mib)
	}
	if o.truePeak < 97*mib {
		t.Errorf("true peak %.0f MiB, want the demand's (about 100 MiB)", o.truePeak/mib)
	}
	if o := run(c, 1, 0, &rs); o.kills != 0 {
		t.Errorf("no limit: %d kills, want 0", o.kills)
	}
}

func TestLeakguardHoldsALeak(t *testing.T) {
	// Flat at 200 MiB for a window, then leaking and flagged.
	pre := week(200*mib, nil)
	leak := week(200*mib, nil)
	for i := range leak.ws {
		leak.ws[i] = 200*mib + float64(i)*mib
		leak.flag[i] = i >= 24
	}
	got, ok := leakguard([]observed{pre, leak}, 4000*mib)
	if !ok || got != 256*mib {
		t.Errorf("leakguard on a leak = %.0f MiB, %v; want 256 MiB (200 MiB + 15 %%, rounded), from before the leak", got/mib, ok)
	}
	if got, _ := krrSimple([]observed{pre, leak}, 4000*mib); got < 2000*mib {
		t.Errorf("KRR simple on a leak = %.0f MiB, want it to follow the leak up", got/mib)
	}
}

func TestPopulationDeterministic(t *testing.T) {
	a := population(3, rand.New(rand.NewPCG(1, 1)))
	b := population(3, rand.New(rand.NewPCG(1, 1)))
	for i := range a {
		if a[i].limit0 != b[i].limit0 || a[i].demand(1000, 0) != b[i].demand(1000, 0) {
			t.Fatalf("container %d differs between two populations of the same seed", i)
		}
	}
}
