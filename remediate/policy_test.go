package remediate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/leakguard/leakguard/rules"
)

var update = flag.Bool("update", false, "rewrite the expected errors of testdata/policy/bad-*.yaml")

// TestParsePolicyBad checks that every bad policy in testdata is rejected
// with exactly the error in its .err file.
func TestParsePolicyBad(t *testing.T) {
	files, err := filepath.Glob("testdata/policy/bad-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad policies found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePolicy(data, shippedRegistry())
			if err == nil {
				t.Fatalf("ParsePolicy(%s) = %v, nil; want an error", f, p)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("read expected error: %v (run go test -update once and review it)", rerr)
			}
			if diff := cmp.Diff(strings.TrimSuffix(string(want), "\n"), err.Error()); diff != "" {
				t.Errorf("ParsePolicy(%s) error mismatch (-want +got):\n%s", f, diff)
			}
		})
	}
}

func TestParsePolicyGood(t *testing.T) {
	tests := []struct {
		file          string
		dryRun        bool
		cooldown      time.Duration
		perMinute     float64
		burst         int
		alerts        []string
		entryCooldown map[string]time.Duration
		entryTarget   map[string]string
		entryCheck    map[string]string
		remediators   map[string]int
	}{
		{
			file: "good-minimal.yaml", cooldown: DefaultCooldown, perMinute: DefaultRatePerMinute, burst: DefaultRateBurst,
			alerts:        []string{"ContainerOOMKilled"},
			entryCooldown: map[string]time.Duration{"ContainerOOMKilled": DefaultCooldown},
			entryTarget:   map[string]string{"ContainerOOMKilled": TargetWorkload},
			entryCheck:    map[string]string{"ContainerOOMKilled": CheckNone},
			remediators:   map[string]int{"ContainerOOMKilled": 1},
		},
		{
			file: "good-full.yaml", dryRun: true, cooldown: 30 * time.Minute, perMinute: 2, burst: 1,
			alerts: []string{"ContainerMemoryLeak", "KubeAPIServerMemoryHigh", "KubeAPIServerObjectSurge"},
			entryCooldown: map[string]time.Duration{
				"ContainerMemoryLeak": 6 * time.Hour, "KubeAPIServerMemoryHigh": 30 * time.Minute, "KubeAPIServerObjectSurge": 30 * time.Minute,
			},
			entryTarget: map[string]string{"ContainerMemoryLeak": TargetPod, "KubeAPIServerMemoryHigh": TargetAPIServer, "KubeAPIServerObjectSurge": TargetNone},
			entryCheck:  map[string]string{"ContainerMemoryLeak": CheckWorkingSetSlope, "KubeAPIServerMemoryHigh": CheckAPIServerMemory, "KubeAPIServerObjectSurge": CheckNone},
			remediators: map[string]int{"ContainerMemoryLeak": 1, "KubeAPIServerMemoryHigh": 1, "KubeAPIServerObjectSurge": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p, err := LoadPolicyFile(filepath.Join("testdata/policy", tc.file), shippedRegistry())
			if err != nil {
				t.Fatalf("LoadPolicyFile(%s) error: %v", tc.file, err)
			}
			if p.DryRun != tc.dryRun || p.Cooldown != tc.cooldown || p.RatePerMinute != tc.perMinute || p.RateBurst != tc.burst {
				t.Errorf("globals = dryRun %v cooldown %v rate %g/%d, want %v %v %g/%d",
					p.DryRun, p.Cooldown, p.RatePerMinute, p.RateBurst, tc.dryRun, tc.cooldown, tc.perMinute, tc.burst)
			}
			if diff := cmp.Diff(tc.alerts, p.AlertNames()); diff != "" {
				t.Errorf("AlertNames() mismatch (-want +got):\n%s", diff)
			}
			for name, want := range tc.entryCooldown {
				e := p.Entry(name)
				if e.Cooldown != want {
					t.Errorf("Entry(%s).Cooldown = %v, want %v", name, e.Cooldown, want)
				}
				if e.Target != tc.entryTarget[name] {
					t.Errorf("Entry(%s).Target = %q, want %q", name, e.Target, tc.entryTarget[name])
				}
				if e.Check.Name() != tc.entryCheck[name] {
					t.Errorf("Entry(%s).Check = %q, want %q", name, e.Check.Name(), tc.entryCheck[name])
				}
				if len(e.Remediators) != tc.remediators[name] {
					t.Errorf("Entry(%s) has %d remediators, want %d", name, len(e.Remediators), tc.remediators[name])
				}
			}
		})
	}
}

func TestLoadPolicyFileMissing(t *testing.T) {
	_, err := LoadPolicyFile(filepath.Join(t.TempDir(), "absent.yaml"), shippedRegistry())
	if err == nil || !strings.Contains(err.Error(), "read policy") {
		t.Errorf("LoadPolicyFile(absent) error = %v, want a read error", err)
	}
}

// TestDefaultPolicyCoversEveryAlert checks that the embedded policy parses
// and has an entry for every alert of the catalogue, and no other.
func TestDefaultPolicyCoversEveryAlert(t *testing.T) {
	p, err := DefaultPolicy(shippedRegistry())
	if err != nil {
		t.Fatalf("DefaultPolicy() error: %v", err)
	}
	want := rules.AlertNames()
	got := p.AlertNames()
	if diff := cmp.Diff(sortedCopy(want), got); diff != "" {
		t.Errorf("default policy alerts mismatch (-catalogue +policy):\n%s", diff)
	}
	if p.DryRun {
		t.Errorf("default policy DryRun = true, want false (dry-run is the --dry-run flag's job)")
	}
	wantTargets := map[string]string{
		rules.AlertContainerMemoryLeak: TargetWorkload, rules.AlertNodeOrphanCgroups: TargetNode,
		rules.AlertKubeAPIServerMemoryHigh: TargetAPIServer, rules.AlertKubeAPIServerObjectSurge: TargetNone,
	}
	for name, target := range wantTargets {
		if got := p.Entry(name).Target; got != target {
			t.Errorf("default Entry(%s).Target = %q, want %q", name, got, target)
		}
	}
	if !p.namespaceAllowed(p.Entry(rules.AlertKubeAPIServerMemoryHigh), "kube-system") {
		t.Errorf("default policy does not allow KubeAPIServerMemoryHigh in kube-system")
	}
	if p.namespaceAllowed(p.Entry(rules.AlertContainerMemoryLeak), "kube-system") {
		t.Errorf("default policy allows ContainerMemoryLeak in kube-system, want it excluded")
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestNamespaceAllowed(t *testing.T) {
	reg := shippedRegistry()
	parse := func(t *testing.T, y string) *Policy {
		t.Helper()
		p, err := ParsePolicy([]byte(y+"\nalerts:\n  A:\n    target: pod\n    check: {name: none}\n    allowNamespaces: [special]\n"), reg)
		if err != nil {
			t.Fatalf("ParsePolicy: %v", err)
		}
		return p
	}
	tests := []struct {
		name, policy, ns string
		want             bool
	}{
		{"default allows user namespace", "", "shop", true},
		{"default excludes kube-system", "", "kube-system", false},
		{"include lists kube-system", "namespaces: {include: [kube-system]}", "kube-system", true},
		{"include list restricts", "namespaces: {include: [shop]}", "other", false},
		{"include list allows listed", "namespaces: {include: [shop]}", "shop", true},
		{"exclude", "namespaces: {exclude: [shop]}", "shop", false},
		{"entry allowance beats exclude", "namespaces: {exclude: [special]}", "special", true},
		{"entry allowance beats include list", "namespaces: {include: [shop]}", "special", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.policy)
			if got := p.namespaceAllowed(p.Entry("A"), tc.ns); got != tc.want {
				t.Errorf("namespaceAllowed(%q) = %v, want %v", tc.ns, got, tc.want)
			}
		})
	}
}
