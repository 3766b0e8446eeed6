package main

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ruleFile is a Prometheus rule file, read loosely: each rule is kept as
// it is, so that a group written back out is the group that was read.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string           `yaml:"name"`
	Interval string           `yaml:"interval,omitempty"`
	Limit    int              `yaml:"limit,omitempty"`
	Rules    []map[string]any `yaml:"rules"`
}

// interval is the group's evaluation interval, or def when it has none.
func (g ruleGroup) interval(def time.Duration) (time.Duration, error) {
	if g.Interval == "" {
		return def, nil
	}
	d, err := model.ParseDuration(g.Interval)
	if err != nil {
		return 0, fmt.Errorf("group %q: interval %q: %w", g.Name, g.Interval, err)
	}
	return time.Duration(d), nil
}

// records are the names the group's recording rules write, each once.
func (g ruleGroup) records() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range g.Rules {
		if name, ok := r["record"].(string); ok && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

func readRuleFile(path string) (ruleFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ruleFile{}, err
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return ruleFile{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Groups) == 0 {
		return ruleFile{}, fmt.Errorf("%s: no rule groups", path)
	}
	return f, nil
}

func writeRuleFile(path string, groups ...ruleGroup) error {
	b, err := yaml.Marshal(ruleFile{Groups: groups})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// referenceGroup holds kube-prometheus's working-set recording rule, as its
// k8s.rules group publishes it; kube-prometheus evaluates that group at
// the Prometheus default it sets, 30 s.
func referenceGroup() ruleGroup {
	return ruleGroup{
		Name:     referenceName,
		Interval: "30s",
		Rules: []map[string]any{{
			"record": "node_namespace_pod_container:container_memory_working_set_bytes",
			"expr": `container_memory_working_set_bytes{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
* on (namespace, pod) group_left(node) topk by(namespace, pod) (1,
  max by(namespace, pod, node) (kube_pod_info{node!=""})
)`,
		}},
	}
}

const referenceName = "reference.kube-prometheus-working-set"
