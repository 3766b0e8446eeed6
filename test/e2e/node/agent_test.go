package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/leakguard/leakguard/cgroups"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// TestAgentOnRealCgroupTree is the fourth scenario: `leakguard agent` for
// the real node, over the kubelet's real cgroup tree and /proc, as
// deploy/agent's service account. While the scenarios' pods run it counts
// no orphan. Then a pod cgroup outlives its pod the way it does in
// production when the kubelet cannot remove it: a pod UID that the API
// server does not know, with a volume still mounted under the kubelet's
// pods/ directory (the kubelet keeps such a pod's cgroups, "volumes are not
// cleaned up"), and its cgroup in each hierarchy the agent reads. The agent
// lists it once its grace period has passed, while the kubelet has kept it.
// Once the volume is unmounted the kubelet removes the cgroup itself and
// the agent counts none again. Then the agent's own removal
// (--remove-empty-orphans, testAgentRemovesOrphans) on the real v1 tree,
// and dying memory cgroups made for real and counted (testDyingMemcgs).
func TestAgentOnRealCgroupTree(t *testing.T) {
	c, _ := need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := lab.BuildLeakguard(ctx, repoRoot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	agent, err := lab.StartAgent(ctx, lab.AgentOptions{
		Bin: bin, Dir: t.TempDir(), Node: lab.NodeName, CgroupRoot: cgroupRoot, ProcRoot: "/proc",
		Kubeconfig: c.AgentKubeconfig, GracePeriod: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", agent.Log(30))
		}
		if err := agent.Stop(); err != nil {
			t.Errorf("stop the agent: %v", err)
		}
	})
	orphans := func(ctx context.Context) (cgroups.OrphanList, error) {
		var list cgroups.OrphanList
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+agent.Addr()+"/orphans", nil)
		if err != nil {
			return list, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return list, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return list, fmt.Errorf("GET /orphans: %s", resp.Status)
		}
		return list, json.NewDecoder(resp.Body).Decode(&list)
	}
	podCgroups, _ := filepath.Glob(filepath.Join(cgroupRoot, "memory", "kubepods", "*", "pod*"))
	guaranteed, _ := filepath.Glob(filepath.Join(cgroupRoot, "memory", "kubepods", "pod*"))
	podCgroups = append(podCgroups, guaranteed...)
	if len(podCgroups) == 0 {
		t.Fatalf("no pod cgroups under %s/memory/kubepods while the scenarios' pods run", cgroupRoot)
	}
	t.Logf("%d pod cgroups in the memory hierarchy", len(podCgroups))
	waitFor(t, time.Minute, "the agent's first scans of the real tree: no orphan", func(ctx context.Context) (bool, string, error) {
		list, err := orphans(ctx)
		if err != nil {
			return false, "", err
		}
		// Two grace periods after its start, any orphan would be counted.
		return list.Known && list.Total == 0 && list.ScannedAt != nil && time.Since(*list.ScannedAt) < 5*time.Second && list.Pending == 0,
			fmt.Sprintf("%+v", list), nil
	})

	// The orphan: a volume the kubelet cannot have cleaned up, and the
	// pod's cgroups.
	uid := fmt.Sprintf("7e57a9e0-0000-4000-8000-%012d", os.Getpid())
	volume := filepath.Join(c.RealNode.KubeletRootDir(), "pods", uid, "volumes", "kubernetes.io~empty-dir", "cache")
	if err := os.MkdirAll(volume, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", volume, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs volume at %s: %v", volume, err)
	}
	mounted := true
	var dirs []string
	for _, h := range []string{"memory", "cpu", "pids"} {
		dir := filepath.Join(cgroupRoot, h, "kubepods", "besteffort", "pod"+uid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("make the orphan's cgroup: %v", err)
		}
		dirs = append(dirs, dir)
	}
	t.Cleanup(func() {
		if mounted {
			_ = syscall.Unmount(volume, syscall.MNT_DETACH)
		}
		_ = os.RemoveAll(filepath.Join(c.RealNode.KubeletRootDir(), "pods", uid))
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
				t.Errorf("remove %s: %v", d, err)
			}
		}
	})
	madeAt := time.Now()
	foundAt := waitFor(t, time.Minute, "the orphan listed by the agent", func(ctx context.Context) (bool, string, error) {
		list, err := orphans(ctx)
		if err != nil {
			return false, "", err
		}
		return list.Total == 1 && len(list.Orphans) == 1 && list.Orphans[0].PodUID == uid && list.Orphans[0].QoS == "besteffort",
			fmt.Sprintf("%+v", list), nil
	})
	t.Logf("timing: orphan made to listed by the agent: %s (grace period 3s)", foundAt.Sub(madeAt).Round(100*time.Millisecond))
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the kubelet removed %s while its pod's volume was mounted: %v", d, err)
		}
	}

	// The volume cleaned up: the kubelet removes the orphan's cgroups.
	if err := syscall.Unmount(volume, 0); err != nil {
		t.Fatalf("unmount %s: %v", volume, err)
	}
	mounted = false
	unmountedAt := time.Now()
	goneAt := waitFor(t, 2*time.Minute, "the kubelet removing the orphan's cgroups and the agent counting none", func(ctx context.Context) (bool, string, error) {
		var left []string
		for _, d := range dirs {
			if _, err := os.Stat(d); err == nil {
				left = append(left, d)
			}
		}
		list, err := orphans(ctx)
		if err != nil {
			return false, "", err
		}
		return len(left) == 0 && list.Total == 0, fmt.Sprintf("cgroups left %v, agent %+v", left, list), nil
	})
	t.Logf("timing: volume unmounted to the orphan gone: %s", goneAt.Sub(unmountedAt).Round(100*time.Millisecond))

	t.Run("RemoveOrphans", func(t *testing.T) { testAgentRemovesOrphans(t, c, bin) })
	t.Run("DyingMemoryCgroups", func(t *testing.T) { testDyingMemcgs(t, c, agent.Addr()) })
}
