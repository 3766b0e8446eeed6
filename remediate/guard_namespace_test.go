package remediate

import "testing"

func TestNamespaceGuard(t *testing.T) {
	p, err := ParsePolicy([]byte("namespaces: {exclude: [payments]}\nalerts:\n  A: {target: pod, check: {name: none}}\n"), shippedRegistry())
	if err != nil {
		t.Fatal(err)
	}
	e := p.Entry("A")
	tests := []struct {
		name string
		ns   string
		ok   bool
		why  string
	}{
		{"cluster-scoped", "", true, ""},
		{"user namespace", "shop", true, ""},
		{"kube-system", "kube-system", false, "namespace kube-system is excluded unless the policy includes it"},
		{"excluded", "payments", false, "namespace payments is outside the policy's namespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := namespaceGuard(p, e, &Target{Namespace: tc.ns})
			if ok != tc.ok || why != tc.why {
				t.Errorf("namespaceGuard(%q) = %v, %q; want %v, %q", tc.ns, ok, why, tc.ok, tc.why)
			}
		})
	}
}
