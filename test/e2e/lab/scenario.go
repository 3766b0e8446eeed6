package lab

import (
	"context"
	"fmt"
	"time"
)

// Scenario is the world the chain's tests and the demo share: three nodes
// and four Deployments, created in the API server and served by the
// metrics endpoint.
type Scenario struct {
	// Leaking leaks and is annotated once.
	Leaking Workload
	// Ignored leaks but carries leakguard.io/ignore: "true".
	Ignored Workload
	// Outage leaks; HoldOutage silences its alerts in Alertmanager until
	// the outage scenario stops Prometheus and expires OutageSilence.
	Outage        Workload
	OutageSilence string
	// Flat does not leak.
	Flat Workload
	// Worker runs the workloads; OrphanNode has orphan cgroups (the
	// synthetic agent series); ControlPlane runs a kube-apiserver above
	// 60 % of its memory.
	Worker, OrphanNode, ControlPlane Node
	// AgentNode is the node of the real agent (ChainOptions.AgentNode),
	// with AgentOrphans orphan pod cgroups in its fixture tree and the
	// populated cgroup of Live, a pod that exists.
	AgentNode    Node
	AgentOrphans int
	Live         Workload
	// LeakBytesPerSecond is how fast the leaking containers grow.
	LeakBytesPerSecond float64
}

// ignoreAnnotation opts an object out of leakguard (remediate.AnnotationIgnore).
const ignoreAnnotation = "leakguard.io/ignore"

// NewScenario describes the shared world; Create makes it.
func NewScenario() *Scenario {
	const gib = 1 << 30
	worker := "lab-worker-1"
	orphans := 0
	return &Scenario{
		Leaking: Workload{Namespace: "shop", Name: "web", Node: worker, LimitBytes: 2 * gib, BaseBytes: 256 << 20},
		Ignored: Workload{Namespace: "shop", Name: "batch", Node: worker, LimitBytes: 2 * gib, BaseBytes: 300 << 20,
			Annotations: map[string]string{ignoreAnnotation: "true"}},
		Outage: Workload{Namespace: "pay", Name: "api", Node: worker, LimitBytes: 2 * gib, BaseBytes: 280 << 20},
		Flat:   Workload{Namespace: "shop", Name: "cache", Node: worker, LimitBytes: 2 * gib, BaseBytes: 700 << 20},
		Worker: Node{Name: worker, IP: "10.0.0.11", MemoryBytes: 16 * gib},
		// The agent reports no orphans until StartOrphans.
		OrphanNode:         Node{Name: "lab-worker-2", IP: "10.0.0.12", MemoryBytes: 16 * gib, OrphanCgroups: &orphans},
		AgentNode:          Node{Name: "lab-worker-3", IP: "10.0.0.13", MemoryBytes: 16 * gib},
		AgentOrphans:       25,
		Live:               Workload{Namespace: "shop", Name: "queue", Node: "lab-worker-3", LimitBytes: gib, BaseBytes: 200 << 20},
		ControlPlane:       Node{Name: "lab-cp-1", IP: "10.0.0.1", MemoryBytes: 8 * gib, ControlPlane: true, APIServerRSSBytes: 8 * gib * 7 / 10},
		LeakBytesPerSecond: 3 << 20,
	}
}

// ChainOptions sets the agent of opts for the scenario's AgentNode.
func (s *Scenario) ChainOptions(opts ChainOptions) ChainOptions {
	opts.AgentNode, opts.AgentOrphans = s.AgentNode.Name, s.AgentOrphans
	return opts
}

// Create creates the nodes and workloads; with an agent running (see
// ChainOptions), the live pod's cgroup joins the agent's tree.
func (s *Scenario) Create(ctx context.Context, c *Chain) error {
	for _, n := range []Node{s.Worker, s.OrphanNode, s.ControlPlane, s.AgentNode} {
		if err := c.AddNode(ctx, n, nil); err != nil {
			return err
		}
	}
	for _, w := range []Workload{s.Leaking, s.Ignored, s.Outage, s.Flat, s.Live} {
		if err := c.AddWorkload(ctx, w); err != nil {
			return err
		}
	}
	if c.CgroupTree != nil {
		ctr, _ := c.Metrics.Container(s.Live.Key())
		if err := c.CgroupTree.AddPod(ctr.UID, true); err != nil {
			return err
		}
	}
	return nil
}

// HoldOutage silences the outage workload's alerts in Alertmanager (for
// an hour, or until OutageSilence is expired).
func (s *Scenario) HoldOutage(ctx context.Context, c *Chain) error {
	id, err := c.Alertmanager.Silence(ctx, map[string]string{"namespace": s.Outage.Namespace}, time.Hour)
	if err != nil {
		return fmt.Errorf("silence %s: %w", s.Outage.Namespace, err)
	}
	s.OutageSilence = id
	return nil
}

// StartLeaks makes the workloads leak (the leaking, ignored and outage
// ones when none is named).
func (s *Scenario) StartLeaks(c *Chain, ws ...Workload) error {
	if len(ws) == 0 {
		ws = []Workload{s.Leaking, s.Ignored, s.Outage}
	}
	for _, w := range ws {
		if err := c.Metrics.StartLeak(w.Key(), s.LeakBytesPerSecond); err != nil {
			return err
		}
	}
	return nil
}

// StartOrphans makes the agent report 42 orphan cgroups on OrphanNode,
// above the threshold of 20.
func (s *Scenario) StartOrphans(c *Chain) error {
	return c.Metrics.SetOrphanCgroups(s.OrphanNode.Name, 42)
}
