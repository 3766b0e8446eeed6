package rules

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func TestFilesAreDeterministic(t *testing.T) {
	a, err := Files(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, err := Files(DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		for path := range a {
			if !bytes.Equal(a[path], b[path]) {
				t.Fatalf("%s differs between two renderings", path)
			}
		}
	}
}

// The rule file and the PrometheusRule's spec hold the same rules.
func TestRuleFileAndPrometheusRuleAgree(t *testing.T) {
	files, err := Files(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	var plain monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(files[RuleFilePath], &plain); err != nil {
		t.Fatalf("rule file: %v", err)
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(files[PrometheusRulePath], &pr); err != nil {
		t.Fatalf("PrometheusRule: %v", err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("PrometheusRule is %s %s", pr.APIVersion, pr.Kind)
	}
	if pr.Namespace != "monitoring" || pr.Name != "leakguard" || pr.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("PrometheusRule metadata = %+v", pr.ObjectMeta)
	}
	if diff := cmp.Diff(plain, pr.Spec); diff != "" {
		t.Errorf("rule file and PrometheusRule spec differ (-file +object):\n%s", diff)
	}
	if strings.Contains(string(files[PrometheusRulePath]), "creationTimestamp") {
		t.Error("PrometheusRule carries creationTimestamp")
	}
}

// The Mimir ruler namespace file holds the rule file's groups under a
// namespace, the layout mimirtool reads (namespace, then groups).
func TestMimirNamespaceHoldsTheRuleFilesGroups(t *testing.T) {
	files, err := Files(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	var plain monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(files[RuleFilePath], &plain); err != nil {
		t.Fatalf("rule file: %v", err)
	}
	var ns struct {
		Namespace string                   `json:"namespace"`
		Groups    []monitoringv1.RuleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(files[MimirRulesPath], &ns); err != nil {
		t.Fatalf("Mimir namespace file: %v", err)
	}
	if ns.Namespace != MimirNamespace {
		t.Errorf("namespace = %q, want %q", ns.Namespace, MimirNamespace)
	}
	if diff := cmp.Diff(plain.Groups, ns.Groups); diff != "" {
		t.Errorf("rule file and Mimir namespace differ (-file +mimir):\n%s", diff)
	}
	first := strings.SplitN(strings.TrimPrefix(string(files[MimirRulesPath]), header), "\n", 2)[0]
	if first != "namespace: "+MimirNamespace {
		t.Errorf("first line after the header = %q, want the namespace", first)
	}
}
