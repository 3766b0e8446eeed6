// Command promrule-spec prints the spec of a PrometheusRule manifest as a
// plain Prometheus rule file, so that promtool can check the very rules the
// Prometheus Operator would load.
package main

import (
	"fmt"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: promrule-spec PROMETHEUSRULE.yaml")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "promrule-spec: %v\n", err)
		os.Exit(1)
	}
}

func run(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if pr.Kind != monitoringv1.PrometheusRuleKind {
		return fmt.Errorf("%s: kind is %q, want %q", path, pr.Kind, monitoringv1.PrometheusRuleKind)
	}
	if len(pr.Spec.Groups) == 0 {
		return fmt.Errorf("%s: spec has no rule groups", path)
	}
	out, err := yaml.Marshal(pr.Spec)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
