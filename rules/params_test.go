package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/spf13/pflag"
)

func TestDefaultParamsAreValid(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v, want nil", err)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Params)
		want   string
	}{
		{"empty selector", func(p *Params) { p.CadvisorSelector = " " }, "cadvisorSelector: must not be empty"},
		{"braces in selector", func(p *Params) { p.AgentSelector = `{job="x"}` }, "agentSelector: \"{job=\\\"x\\\"}\": give the matchers without braces"},
		{"unbalanced quotes", func(p *Params) { p.APIServerSelector = `job="x` }, "apiServerSelector: \"job=\\\"x\": unbalanced quotes"},
		{"no runbook base", func(p *Params) { p.RunbookBaseURL = "" }, "runbookBaseURL: must not be empty"},
		{"bad alert label", func(p *Params) { p.AlertLabels = map[string]string{"1team": "x"} }, `alertLabels: "1team" is not a valid label name`},
		{"severity override", func(p *Params) { p.AlertLabels = map[string]string{"severity": "x"} }, `alertLabels: "severity" is set by the catalogue`},
		{"zero floor window", func(p *Params) { p.FloorWindow = 0 }, "floorWindow: must be positive, got 0s"},
		{"negative for", func(p *Params) { p.LeakFor = model.Duration(-time.Minute) }, "leakFor: must not be negative"},
		{"one step", func(p *Params) { p.LeakSteps = 1 }, "leakSteps: must be between 2 and 12, got 1"},
		{"one fast step", func(p *Params) { p.FastSteps = 1 }, "fastSteps: must be between 2 and 12, got 1"},
		{"too many slow steps", func(p *Params) { p.SlowSteps = 13 }, "slowSteps: must be between 2 and 12, got 13"},
		{"more rising steps than steps", func(p *Params) { p.LeakMinRisingSteps = 5 }, "leakMinRisingSteps: must be between 1 and leakSteps (4), got 5"},
		{"no rising step", func(p *Params) { p.LeakMinRisingSteps = 0 }, "leakMinRisingSteps: must be between 1 and leakSteps (4), got 0"},
		{"floor not a multiple of the fast step", func(p *Params) { p.FastStepWindow = model.Duration(20 * time.Minute) }, "floorWindow: must be a whole multiple of fastStepWindow (20m), got 30m"},
		{"zero slow step", func(p *Params) { p.SlowStepWindow = 0 }, "slowStepWindow: must be positive, got 0s"},
		{"trend interval over the lookback", func(p *Params) { p.TrendInterval = model.Duration(10 * time.Minute) }, "trendInterval: must be positive and at most 5m (Prometheus's lookback), got 10m"},
		{"window not a multiple of the trend interval", func(p *Params) { p.TrendInterval = model.Duration(4 * time.Minute) }, "fastStepWindow: must be a whole multiple of trendInterval (4m), got 15m"},
		{"headroom ratio over one", func(p *Params) { p.FastMinHeadroomRatio = 2 }, "fastMinHeadroomRatio: must be in (0, 1], got 2"},
		{"ratio over one", func(p *Params) { p.NearLimitRatio = 1.5 }, "nearLimitRatio: must be in (0, 1], got 1.5"},
		{"negative threshold", func(p *Params) { p.OrphanCgroupsThreshold = -1 }, "orphanCgroupsThreshold: must be a finite number >= 0, got -1"},
		{"no name", func(p *Params) { p.Name = "" }, "namespace and name: must not be empty"},
		{"empty alert label value", func(p *Params) { p.AlertLabels = map[string]string{"team": ""} }, `alertLabels: team: the value must be non-empty UTF-8, got ""`},
		{"object label key", func(p *Params) { p.ObjectLabels = map[string]string{"bad key!": "x"} }, `objectLabels: "bad key!": name part must consist of alphanumeric characters`},
		{"object label value", func(p *Params) { p.ObjectLabels = map[string]string{"release": "a,b=c"} }, `objectLabels: release: "a,b=c": a valid label must be`},
		{"cluster label name", func(p *Params) { p.ClusterLabel = "1cluster" }, `clusterLabel: "1cluster" is not a valid label name`},
		{"cluster label in use", func(p *Params) { p.ClusterLabel = "node" }, `clusterLabel: "node" is a label the rules already group by`},
		{"no warm-up", func(p *Params) { p.MaxWarmUp = 0 }, "maxWarmUp: must be positive, got 0s"},
		{"negative warm-up", func(p *Params) { p.MaxWarmUp = model.Duration(-time.Minute) }, "maxWarmUp: must be positive, got -1m"},
		{"warm-up not a multiple of the trend interval", func(p *Params) { p.MaxWarmUp = model.Duration(42 * time.Minute) }, "maxWarmUp: must be a whole multiple of trendInterval (5m), got 42m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.modify(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := Files(p); err == nil {
				t.Errorf("Files() rendered invalid parameters")
			}
		})
	}
}

func TestLoadParamsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("fields replace defaults, others stay", func(t *testing.T) {
		p := DefaultParams()
		path := write("good.yaml", "oomHorizon: 3h\nnearLimitRatio: 0.8\nobjectLabels:\n  release: prom\n")
		if err := LoadParamsFile(path, &p); err != nil {
			t.Fatal(err)
		}
		if p.OOMHorizon != model.Duration(3*time.Hour) || p.NearLimitRatio != 0.8 || p.ObjectLabels["release"] != "prom" {
			t.Errorf("LoadParamsFile: oomHorizon=%s nearLimitRatio=%g release=%q", p.OOMHorizon, p.NearLimitRatio, p.ObjectLabels["release"])
		}
		if p.LeakSteps != DefaultParams().LeakSteps {
			t.Errorf("leakSteps = %d, want the default %d", p.LeakSteps, DefaultParams().LeakSteps)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		p := DefaultParams()
		err := LoadParamsFile(write("typo.yaml", "oomHorizn: 3h\n"), &p)
		if err == nil || !strings.Contains(err.Error(), `unknown field "oomHorizn"`) {
			t.Fatalf("LoadParamsFile(typo) = %v, want an unknown field error", err)
		}
	})
	t.Run("bad duration", func(t *testing.T) {
		p := DefaultParams()
		err := LoadParamsFile(write("dur.yaml", "leakFor: soon\n"), &p)
		if err == nil || !strings.Contains(err.Error(), "soon") {
			t.Fatalf("LoadParamsFile(bad duration) = %v, want an error naming the value", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		p := DefaultParams()
		if err := LoadParamsFile(filepath.Join(dir, "nope.yaml"), &p); err == nil {
			t.Fatal("LoadParamsFile(missing) = nil, want an error")
		}
	})
}

func TestFlagsChangeTheRules(t *testing.T) {
	p := DefaultParams()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	p.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--oom-horizon=3h", "--near-limit-ratio=0.8", "--leak-steps=3", "--leak-step-window=20m",
		"--object-label=release=prom", "--object-label=app.kubernetes.io/part-of=",
		"--alert-label=cluster=eu-1", "--runbook-base-url=https://runbooks.example/",
	})
	if err != nil {
		t.Fatal(err)
	}
	alerts := AlertsByName(p)
	if got := alerts[AlertContainerMemoryOOMPredicted].Expr; !strings.Contains(got, "< 10800") {
		t.Errorf("OOMPredicted expr does not use the 3h horizon: %s", got)
	}
	if got := alerts[AlertContainerMemoryNearLimit].Expr; !strings.HasSuffix(got, ">= 0.8") {
		t.Errorf("NearLimit expr = %q, want the 0.8 ratio", got)
	}
	recs := recordExprs(p)
	if got := recs[RecWorkingSetFloorGrowth]; !strings.Contains(got, "offset 1h >") {
		t.Errorf("%s does not look 3 steps of 20m back: %s", RecWorkingSetFloorGrowth, got)
	}
	if got := recs[RecWorkingSetFloorStep]; !strings.Contains(got, "offset 20m >") {
		t.Errorf("%s does not look one step of 20m back: %s", RecWorkingSetFloorStep, got)
	}
	pr, err := PrometheusRule(p)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Labels["release"] != "prom" {
		t.Errorf("object label release = %q, want prom", pr.Labels["release"])
	}
	if _, ok := pr.Labels["app.kubernetes.io/part-of"]; ok {
		t.Error("object label app.kubernetes.io/part-of= was not removed")
	}
	for _, r := range pr.Spec.Groups[0].Rules {
		if r.Alert != "" && (r.Labels["cluster"] != "eu-1" || !strings.HasPrefix(r.Annotations["runbook_url"], "https://runbooks.example/")) {
			t.Errorf("%s: labels %v, runbook %q", r.Alert, r.Labels, r.Annotations["runbook_url"])
		}
	}
	if err := fs.Parse([]string{"--object-label=novalue"}); err == nil {
		t.Error("--object-label=novalue was accepted")
	}
}

func TestTrendFlagsShapeTheRecords(t *testing.T) {
	records := func(args ...string) map[string]string {
		t.Helper()
		p := DefaultParams()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		p.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Validate(%v) = %v", args, err)
		}
		return recordExprs(p)
	}

	def := records()
	if _, ok := def[RecWorkingSetFloorSlowStep]; ok {
		t.Errorf("defaults record %s, which is the steady trend's growth (a 2h slow step)", RecWorkingSetFloorSlowStep)
	}
	if steady, slow := def[RecLeakRateSteady], def[RecLeakRateSlow]; !strings.Contains(steady, ") >= 3") || !strings.Contains(slow, RecWorkingSetFloorGrowth+" offset 10h") {
		t.Errorf("default leak rate does not count 3 rising steps or read the slow steps from the steady growth:\n%s\n%s", steady, slow)
	}
	if got, want := def[RecLeakRate], RecLeakRateFast+"\nor\n"+RecLeakRateSteady+"\nor\n"+RecLeakRateSlow+"\nor\n"+RecLeakRateYoung; got != want {
		t.Errorf("leak rate = %q, want %q", got, want)
	}

	got := records("--fast-step-window=10m", "--fast-steps=3", "--slow-step-window=3h", "--slow-steps=4", "--leak-min-rising-steps=4")
	for name, want := range map[string]string{
		RecWorkingSetFloorFast:       "[10m])",
		RecWorkingSetFloorFastGrowth: "offset 30m > 33554432",
		// A step counts when it rose by a quarter of the average step of a
		// growth of at least 32 MiB: the record leaves out smaller rises.
		RecWorkingSetFloorFastStep:   "offset 10m > 2796202",
		RecWorkingSetFloorSlowStep:   "offset 3h > 2097152",
		RecWorkingSetFloorSlowGrowth: "offset 12h > 33554432",
	} {
		if !strings.HasSuffix(got[name], want) {
			t.Errorf("%s = %q, want it to end in %q", name, got[name], want)
		}
	}
	// The 30m floor is the lowest of the three last 10m floors.
	if floor := got[RecWorkingSetFloor]; !strings.Contains(floor, RecWorkingSetFloorFast+" offset 20m") || strings.Contains(floor, "offset 30m") {
		t.Errorf("floor = %s, want the fast floor now, 10m and 20m ago", floor)
	}
	// Every steady step must rise (all four scores), and no fall is
	// recorded, since none can fail the trend that a flat step does not.
	if steady, slow := got[RecLeakRateSteady], got[RecLeakRateSlow]; !strings.Contains(steady, ") >= 4") || !strings.Contains(slow, ") >= 4") || !strings.Contains(slow, RecWorkingSetFloorSlowStep+" offset 9h") {
		t.Errorf("leak rate with every steady step rising and four 3h slow steps:\n%s\n%s", steady, slow)
	}
	// Where every steady step must rise, a fall fails like a flat step: the
	// step is gated like the others.
	if step := got[RecWorkingSetFloorStep]; !strings.HasSuffix(step, "offset 30m > 2097152") {
		t.Errorf("floor step with every steady step rising = %s, want it gated", step)
	}
}

// recordExprs maps every recording rule of the catalogue to its expression.
func recordExprs(p Params) map[string]string {
	m := map[string]string{}
	for _, g := range Groups(p) {
		for _, r := range g.Records {
			m[r.Name] = r.Expr
		}
	}
	return m
}
