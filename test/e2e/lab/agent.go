package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CgroupTree is a fixture cgroup v2 tree, as the kubelet's systemd driver
// lays out Burstable pods, for `leakguard agent --cgroup-root`.
type CgroupTree struct{ Root string }

// NewCgroupTree writes the root of a v2 tree (cgroup.controllers,
// cgroup.stat, cgroup.procs) and the kubepods slices under dir.
func NewCgroupTree(dir string) (*CgroupTree, error) {
	t := &CgroupTree{Root: dir}
	files := map[string]string{
		"cgroup.controllers":           "cpuset cpu io memory pids\n",
		"cgroup.stat":                  "nr_descendants 40\nnr_dying_descendants 3\n",
		"cgroup.procs":                 "1\n",
		"kubepods.slice/cgroup.procs":  "",
		"kubepods.slice/cgroup.events": "populated 1\nfrozen 0\n",
		"kubepods.slice/kubepods-burstable.slice/cgroup.procs":   "",
		"kubepods.slice/kubepods-burstable.slice/cgroup.events":  "populated 1\nfrozen 0\n",
		"kubepods.slice/kubepods-besteffort.slice/cgroup.procs":  "",
		"kubepods.slice/kubepods-besteffort.slice/cgroup.events": "populated 0\nfrozen 0\n",
	}
	for rel, content := range files {
		if err := t.write(rel, content); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *CgroupTree) write(rel, content string) error {
	path := filepath.Join(t.Root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// AddPod makes the pod cgroup of uid; populated says whether it holds a
// process (cgroup.events).
func (t *CgroupTree) AddPod(uid string, populated bool) error {
	dir := "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
	p := "0"
	if populated {
		p = "1"
	}
	if err := t.write(dir+"/cgroup.procs", ""); err != nil {
		return err
	}
	return t.write(dir+"/cgroup.events", "populated "+p+"\nfrozen 0\n")
}

// Agent is `leakguard agent`, the built binary, over a fixture tree.
type Agent struct {
	Node string
	addr string
	p    *process
}

// AgentOptions configure StartAgent.
type AgentOptions struct {
	Bin, Dir, Node string
	// CgroupRoot is the fixture tree; Kubeconfig the agent's service
	// account's.
	CgroupRoot, Kubeconfig string
	// ProcRoot is its --proc-root; "" means CgroupRoot (the fixture
	// tree holds what the agent reads of /proc).
	ProcRoot string
	// Interval and GracePeriod of its scans; 0 means 1 s each.
	Interval, GracePeriod time.Duration
	// StartTimeout bounds the start until /metrics answers; 0 means 30 s.
	StartTimeout time.Duration
	// RemoveEmptyOrphans passes --remove-empty-orphans.
	RemoveEmptyOrphans bool
}

// StartAgent starts the agent on a free loopback port.
func StartAgent(ctx context.Context, o AgentOptions) (*Agent, error) {
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.GracePeriod == 0 {
		o.GracePeriod = time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.ProcRoot == "" {
		o.ProcRoot = o.CgroupRoot
	}
	var last error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		a := &Agent{Node: o.Node, addr: freeAddr()}
		args := []string{"agent",
			"--node-name=" + o.Node,
			"--cgroup-root=" + o.CgroupRoot,
			"--proc-root=" + o.ProcRoot,
			"--listen-address=" + a.addr,
			"--kubeconfig=" + o.Kubeconfig,
			"--interval=" + o.Interval.String(),
			"--grace-period=" + o.GracePeriod.String(),
			"--sync-timeout=30s",
		}
		if o.RemoveEmptyOrphans {
			args = append(args, "--remove-empty-orphans")
		}
		p, err := startProcess("agent-"+o.Node, filepath.Join(o.Dir, "agent-"+o.Node+".log"), nil, o.Bin, args...)
		if err != nil {
			return nil, err
		}
		a.p = p
		last = waitFor(ctx, o.StartTimeout, p, func(ctx context.Context) error {
			return httpOK(ctx, nil, "http://"+a.addr+"/metrics")
		})
		if last == nil {
			return a, nil
		}
		_ = p.stop()
		if !errors.Is(last, errExited) {
			break
		}
	}
	return nil, fmt.Errorf("lab: agent: %w", last)
}

// Addr is the agent's host:port (/metrics, /orphans, /healthz).
func (a *Agent) Addr() string { return a.addr }

// Stop stops the agent.
func (a *Agent) Stop() error { return a.p.stop() }

// Log is the tail of its log.
func (a *Agent) Log(lines int) string { return a.p.tail(lines) }
