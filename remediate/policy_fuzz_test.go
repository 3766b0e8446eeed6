package remediate

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePolicy feeds ParsePolicy mutations of the testdata policies
// and the default one: it must never panic, and a policy it accepts must
// be usable (every entry has a check and a known target).
func FuzzParsePolicy(f *testing.F) {
	files, _ := filepath.Glob("testdata/policy/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(defaultPolicyYAML)
	reg := shippedRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data, reg)
		if err != nil {
			return
		}
		for _, name := range p.AlertNames() {
			e := p.Entry(name)
			if e.Check == nil || e.Cooldown <= 0 {
				t.Errorf("accepted entry %q has check %v, cooldown %v", name, e.Check, e.Cooldown)
			}
		}
		if p.RatePerMinute <= 0 || p.RateBurst <= 0 {
			t.Errorf("accepted policy has rate %g/%d", p.RatePerMinute, p.RateBurst)
		}
	})
}
