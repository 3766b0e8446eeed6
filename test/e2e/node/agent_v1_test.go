package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leakguard/leakguard/cgroups"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// agentOrphans GETs the agent's /orphans.
func agentOrphans(ctx context.Context, addr string) (cgroups.OrphanList, error) {
	var list cgroups.OrphanList
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/orphans", nil)
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

// listed reports whether list counts the orphan pod uid.
func listed(list cgroups.OrphanList, uid string) bool {
	for _, o := range list.Orphans {
		if o.PodUID == uid {
			return true
		}
	}
	return false
}

// realOrphan is a pod cgroup that outlives its pod the way it does in
// production when the kubelet cannot remove it: a pod UID the API server
// does not know, with an emptyDir volume still mounted under the kubelet's
// pods/ directory (the kubelet keeps such a pod's cgroups: "volumes are not
// cleaned up"), and its cgroup, with a container cgroup below it, in every
// hierarchy where the kubelet made kubepods/besteffort.
type realOrphan struct {
	uid    string
	volume string
	dirs   []string // pod cgroups, one per hierarchy
	leaves []string // their container cgroups
}

// makeRealOrphan makes one; the test's cleanup unmounts the volume and
// removes whatever is left of its cgroups.
func makeRealOrphan(t *testing.T, c *lab.Chain, n int) *realOrphan {
	t.Helper()
	o := &realOrphan{uid: fmt.Sprintf("7e57a9e0-%04d-4000-8000-%012d", n, os.Getpid())}
	besteffort, err := filepath.Glob(filepath.Join(cgroupRoot, "*", "kubepods", "besteffort"))
	if err != nil || len(besteffort) < 3 {
		t.Fatalf("kubepods/besteffort in %d hierarchies (%v, %v); the kubelet makes it in every one", len(besteffort), besteffort, err)
	}
	podDir := filepath.Join(c.RealNode.KubeletRootDir(), "pods", o.uid)
	o.volume = filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "cache")
	if err := os.MkdirAll(o.volume, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", o.volume, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs volume at %s: %v", o.volume, err)
	}
	t.Cleanup(func() {
		_ = syscall.Unmount(o.volume, syscall.MNT_DETACH)
		_ = os.RemoveAll(podDir)
		for i, d := range o.dirs {
			for _, p := range []string{o.leaves[i], d} {
				if err := syscall.Rmdir(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("remove %s: %v", p, err)
				}
			}
		}
	})
	container := strings.Repeat(fmt.Sprintf("%02x", n), 32) // a containerd ID's length
	for _, be := range besteffort {
		dir := filepath.Join(be, "pod"+o.uid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("make the orphan's cgroup: %v", err)
		}
		o.dirs = append(o.dirs, dir)
		o.leaves = append(o.leaves, filepath.Join(dir, container))
		if err := os.Mkdir(o.leaves[len(o.leaves)-1], 0o755); err != nil {
			t.Fatalf("make the orphan's container cgroup: %v", err)
		}
	}
	return o
}

// left returns the orphan's pod cgroups that still exist.
func (o *realOrphan) left() []string {
	var left []string
	for _, d := range o.dirs {
		if _, err := os.Stat(d); err == nil {
			left = append(left, d)
		}
	}
	return left
}

// mounted reports whether the orphan's volume is still a mount point.
func (o *realOrphan) mounted(t *testing.T) bool {
	t.Helper()
	var vol, parent syscall.Stat_t
	if err := syscall.Stat(o.volume, &vol); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Dir(o.volume), &parent); err != nil {
		t.Fatal(err)
	}
	return vol.Dev != parent.Dev
}

// testAgentRemovesOrphans is scenario 4's cleanup on the real v1 tree: a
// second agent, with --remove-empty-orphans, removes an empty orphan from
// every hierarchy while its volume is still mounted (so the kubelet, which
// keeps such a pod's cgroups, as the first part of the test showed, cannot
// be the one that removed it), and keeps an orphan whose cgroup in one
// hierarchy (cpu) holds a process, until that process is gone.
func testAgentRemovesOrphans(t *testing.T, c *lab.Chain, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	empty := makeRealOrphan(t, c, 1)
	busy := makeRealOrphan(t, c, 2)
	// A process in the busy orphan's cpu container cgroup only: its pids
	// cgroup (what the agent's scan reads) is the test's, so the scan
	// counts the pod as an orphan, and only the check of every hierarchy
	// before removal finds the process.
	sleep := exec.Command("sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stopSleep := func() {
		if !stopped {
			stopped = true
			_ = sleep.Process.Kill()
			_ = sleep.Wait()
		}
	}
	t.Cleanup(stopSleep)
	cpuLeaf := ""
	for _, l := range busy.leaves {
		if strings.HasPrefix(l, filepath.Join(cgroupRoot, "cpu")+"/") {
			cpuLeaf = l
		}
	}
	if cpuLeaf == "" {
		t.Fatalf("no cpu hierarchy among %v", busy.leaves)
	}
	if err := os.WriteFile(filepath.Join(cpuLeaf, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
		t.Fatalf("move the process into %s: %v", cpuLeaf, err)
	}

	startedAt := time.Now()
	agent, err := lab.StartAgent(ctx, lab.AgentOptions{
		Bin: bin, Dir: t.TempDir(), Node: lab.NodeName, CgroupRoot: cgroupRoot, ProcRoot: "/proc",
		Kubeconfig: c.AgentKubeconfig, GracePeriod: 3 * time.Second, RemoveEmptyOrphans: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("removing agent's log:\n%s", agent.Log(40))
		}
		if err := agent.Stop(); err != nil {
			t.Errorf("stop the removing agent: %v", err)
		}
	})

	removedAt := waitFor(t, time.Minute, "the agent removing the empty orphan from every hierarchy", func(ctx context.Context) (bool, string, error) {
		list, err := agentOrphans(ctx, agent.Addr())
		if err != nil {
			return false, "", err
		}
		left := empty.left()
		return len(left) == 0 && list.RemovedTotal >= 2*len(empty.dirs),
			fmt.Sprintf("left %v; agent %+v", left, list), nil
	})
	t.Logf("timing: removing agent started to the empty orphan removed from %d hierarchies: %s (grace period 3s)",
		len(empty.dirs), removedAt.Sub(startedAt).Round(100*time.Millisecond))
	if !empty.mounted(t) {
		t.Fatalf("the empty orphan's volume %s is no longer mounted: the kubelet may have removed its cgroups", empty.volume)
	}
	if log := agent.Log(200); !strings.Contains(log, "removed orphan cgroup") || !strings.Contains(log, empty.uid) {
		t.Errorf("the agent's log has no removal of %s:\n%s", empty.uid, log)
	}

	// Every scan that lists an orphan past its grace period has tried to
	// remove it: two such scans, and its cgroups are all still there.
	var first time.Time
	waitFor(t, time.Minute, "two scans counting the busy orphan and not removing it", func(ctx context.Context) (bool, string, error) {
		list, err := agentOrphans(ctx, agent.Addr())
		if err != nil {
			return false, "", err
		}
		if !listed(list, busy.uid) || list.ScannedAt == nil {
			return false, fmt.Sprintf("%+v", list), nil
		}
		if first.IsZero() {
			first = *list.ScannedAt
		}
		return list.ScannedAt.After(first), fmt.Sprintf("%+v", list), nil
	})
	if left := busy.left(); len(left) != len(busy.dirs) {
		t.Fatalf("the orphan with a process in its cpu cgroup lost cgroups: %d of %d left (%v)", len(left), len(busy.dirs), left)
	}
	if log := agent.Log(200); !strings.Contains(log, "orphan cgroups not removed") {
		t.Errorf("the agent's log does not say it kept the busy orphan:\n%s", log)
	}

	stopSleep()
	emptiedAt := time.Now()
	goneAt := waitFor(t, time.Minute, "the agent removing the orphan once its process is gone", func(ctx context.Context) (bool, string, error) {
		left := busy.left()
		return len(left) == 0, fmt.Sprintf("left %v", left), nil
	})
	t.Logf("timing: the busy orphan's process ended to its cgroups removed: %s", goneAt.Sub(emptiedAt).Round(100*time.Millisecond))
	if !busy.mounted(t) {
		t.Fatalf("the busy orphan's volume %s is no longer mounted", busy.volume)
	}
}

// kernelDyingMemcgs is the test's own count of dying memory cgroups: the
// memory controller's num_cgroups in /proc/cgroups minus the directories of
// the memory hierarchy, walked with the standard library between two reads
// that agree.
func kernelDyingMemcgs() (int, error) {
	for range 5 {
		before, err := memoryNumCgroups()
		if err != nil {
			return 0, err
		}
		live := 0
		err = filepath.WalkDir(filepath.Join(cgroupRoot, "memory"), func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed during the walk
				}
				return err
			}
			if d.IsDir() {
				live++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		after, err := memoryNumCgroups()
		if err != nil {
			return 0, err
		}
		if before == after {
			return after - live, nil
		}
	}
	return 0, errors.New("memory num_cgroups changed during five walks")
}

// memoryNumCgroups reads the memory controller's num_cgroups.
func memoryNumCgroups() (int, error) {
	f, err := os.Open("/proc/cgroups")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 4 && fields[0] == "memory" {
			return strconv.Atoi(fields[2])
		}
	}
	return 0, fmt.Errorf("no memory line in /proc/cgroups: %v", sc.Err())
}

// agentDying scrapes the agent's leakguard_node_dying_cgroups; ok is false
// when its last scan left it out.
func agentDying(ctx context.Context, addr string) (float64, bool, error) {
	mfs, err := scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		return 0, false, err
	}
	mf := mfs["leakguard_node_dying_cgroups"]
	if mf == nil || len(mf.GetMetric()) != 1 {
		return 0, false, nil
	}
	m := mf.GetMetric()[0]
	if got := labelsOf(m)["node"]; got != lab.NodeName {
		return 0, false, fmt.Errorf("leakguard_node_dying_cgroups has node=%q, want %q", got, lab.NodeName)
	}
	return sampleValue(m), true, nil
}

// dyingPods is how many pods testDyingMemcgs starts; each leaves at least
// two dying memory cgroups (its pod's and its container's).
const dyingPods = 4

// testDyingMemcgs makes dying memory cgroups for real: dyingPods pods each
// write 16 MiB to a file on a hostPath directory on disk (page cache,
// charged to the container's memory cgroup) and are deleted; the kubelet
// removes their cgroups, which the kernel cannot free while the page cache
// they are charged with is still cached (the files outlive the pods). The
// agent's leakguard_node_dying_cgroups must rise, and agree with the
// test's own count.
func testDyingMemcgs(t *testing.T, c *lab.Chain, agentAddr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns = "cgroup-dying"
	data := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(data, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == 0x01021994 { // TMPFS_MAGIC: its pages are shmem, not a file's page cache on disk
		t.Fatalf("%s is on tmpfs; the dying memory cgroups need page cache of a file on disk", data)
	}
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	const size = 16 << 20
	grace := int64(5)
	hostPathType := corev1.HostPathDirectory
	start := time.Now()
	var uids []string
	for i := range dyingPods {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cache-%d", i), Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName:                      lab.NodeName,
				HostNetwork:                   true,
				TerminationGracePeriodSeconds: &grace,
				Containers: []corev1.Container{{
					Name:            "cache",
					Image:           lab.LeakerImage,
					ImagePullPolicy: corev1.PullNever,
					Args:            []string{"-flat", "-write", fmt.Sprintf("/data/file-%d", i), "-write-size", strconv.Itoa(size)},
					VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
				}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: data, Type: &hostPathType},
				}}},
			},
		}
		created, err := c.Admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, string(created.UID))
	}
	writtenAt := waitFor(t, 2*time.Minute, fmt.Sprintf("%d pods writing %d MiB each", dyingPods, size>>20), func(ctx context.Context) (bool, string, error) {
		var missing []string
		for i := range dyingPods {
			fi, err := os.Stat(filepath.Join(data, fmt.Sprintf("file-%d", i)))
			if err != nil || fi.Size() != size {
				missing = append(missing, fmt.Sprintf("file-%d", i))
			}
		}
		return len(missing) == 0, fmt.Sprintf("not written yet: %v", missing), nil
	})
	t.Logf("timing: %d pods created to their files written: %s", dyingPods, writtenAt.Sub(start).Round(100*time.Millisecond))

	// The agent's count before the pods go, from a scan after the writes.
	var before float64
	waitFor(t, time.Minute, "the agent's dying count after the writes", func(ctx context.Context) (bool, string, error) {
		list, err := agentOrphans(ctx, agentAddr)
		if err != nil || list.ScannedAt == nil || !list.ScannedAt.After(writtenAt) {
			return false, fmt.Sprintf("last scan %v", list.ScannedAt), err
		}
		v, ok, err := agentDying(ctx, agentAddr)
		before = v
		return ok, fmt.Sprintf("present %v", ok), err
	})
	kernelBefore, err := kernelDyingMemcgs()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before the pods are deleted: agent %v dying memory cgroups, the test's own count %d", before, kernelBefore)

	deletedAt := time.Now()
	for i := range dyingPods {
		if err := c.Admin.CoreV1().Pods(ns).Delete(ctx, fmt.Sprintf("cache-%d", i), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	goneAt := waitFor(t, 2*time.Minute, "the pods deleted and the kubelet removing their cgroups", func(ctx context.Context) (bool, string, error) {
		var left []string
		for i, uid := range uids {
			if _, err := c.Admin.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("cache-%d", i), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				left = append(left, fmt.Sprintf("pod cache-%d (%v)", i, err))
			}
			dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "kubepods", "besteffort", "pod"+uid))
			left = append(left, dirs...)
		}
		return len(left) == 0, fmt.Sprintf("left %v", left), nil
	})
	t.Logf("timing: pods deleted to their cgroups removed by the kubelet: %s", goneAt.Sub(deletedAt).Round(100*time.Millisecond))

	// Why at least one more, and why this cannot flake: each pod leaves at
	// least two memory cgroups dying (its container's, charged with the
	// 16 MiB of page cache of a file that still exists, and its pod's,
	// which the kernel keeps while a child is not freed), so the kernel's
	// count rises by at least 2*dyingPods when the kubelet removes them.
	// Those are freed only when the page cache is reclaimed, that is under
	// memory pressure on the whole node, which a 2-core lab with its
	// small pods does not come near (the OOM kills of the scenarios are
	// reclaim inside their own limits, which touches no cgroup outside
	// their pods). What can fall concurrently is older dying cgroups of
	// the scenarios' restarted containers inside their pods, a few at
	// most. Asking for a rise of one, not of 2*dyingPods, leaves room for
	// all of that; without the agent's v1 count the gauge is not there.
	var after float64
	roseAt := waitFor(t, time.Minute, "the agent's dying count risen", func(ctx context.Context) (bool, string, error) {
		list, err := agentOrphans(ctx, agentAddr)
		if err != nil || list.ScannedAt == nil || !list.ScannedAt.After(goneAt) {
			return false, fmt.Sprintf("last scan %v", list.ScannedAt), err
		}
		v, ok, err := agentDying(ctx, agentAddr)
		after = v
		return ok && v >= before+1, fmt.Sprintf("dying %v (present %v), before %v", v, ok, before), err
	})
	t.Logf("timing: cgroups removed to the agent's dying count risen: %s; it rose by %v (%v to %v) for %d pods",
		roseAt.Sub(goneAt).Round(100*time.Millisecond), after-before, before, after, dyingPods)

	// The agent's count is the kernel's: a scan between two counts of the
	// test reads a value between them, give or take the cgroups the
	// scenarios' restarting containers make and free meanwhile (their
	// dying cgroups come and go in ones, a scan a second).
	const tolerance = 3
	waitFor(t, 30*time.Second, "the agent's dying count between two of the test's own", func(ctx context.Context) (bool, string, error) {
		k1, err := kernelDyingMemcgs()
		if err != nil {
			return false, "", err
		}
		at := time.Now()
		var v float64
		var ok bool
		for v, ok = 0, false; !ok; {
			list, err := agentOrphans(ctx, agentAddr)
			if err != nil {
				return false, "", err
			}
			if list.ScannedAt == nil || !list.ScannedAt.After(at) {
				select {
				case <-ctx.Done():
					return false, "no scan", ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if v, ok, err = agentDying(ctx, agentAddr); err != nil {
				return false, "", err
			}
			if !ok {
				return false, "gauge left out", nil
			}
		}
		k2, err := kernelDyingMemcgs()
		if err != nil {
			return false, "", err
		}
		lo, hi := float64(min(k1, k2)-tolerance), float64(max(k1, k2)+tolerance)
		return v >= lo && v <= hi && !math.IsNaN(v), fmt.Sprintf("agent %v, test %d then %d", v, k1, k2), nil
	})
}
