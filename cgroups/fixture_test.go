package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a fake cgroup tree under a temporary directory. Every cgroup
// directory it makes holds a cgroup.procs file, as the kernel's do.
type fixture struct {
	tb      testing.TB
	root    string // the cgroup root given to the scanner
	proc    string // the proc root given to the scanner
	version Version
	hier    string // the hierarchy pods live in, relative to root
}

// newFixture makes an empty tree of the version: on v2 a root with
// cgroup.controllers and cgroup.stat; on v1 the memory, cpu and pids
// hierarchies and a /proc/cgroups.
func newFixture(tb testing.TB, v Version) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	f := &fixture{tb: tb, root: filepath.Join(dir, "cgroup"), proc: filepath.Join(dir, "proc"), version: v}
	f.mkdir(f.root)
	f.mkdir(f.proc)
	switch v {
	case V2:
		f.write(filepath.Join(f.root, "cgroup.controllers"), "cpuset cpu io memory pids\n")
		f.write(filepath.Join(f.root, "cgroup.stat"), "nr_descendants 0\nnr_dying_descendants 0\n")
		f.write(filepath.Join(f.root, "cgroup.procs"), "1\n")
	case V1:
		for _, c := range []string{"memory", "cpu", "pids"} {
			f.mkdir(filepath.Join(f.root, c))
			f.write(filepath.Join(f.root, c, "cgroup.procs"), "1\n")
		}
		f.hier = "memory"
		f.write(filepath.Join(f.proc, "cgroups"), procCgroupsV1)
	}
	return f
}

// procCgroupsV1 is a /proc/cgroups of a v1 node; hugetlb is disabled.
const procCgroupsV1 = `#subsys_name	hierarchy	num_cgroups	enabled
cpuset	5	31	1
cpu	3	212	1
cpuacct	3	212	1
memory	4	1480	1
pids	8	219	1
hugetlb	9	1	0
`

func (f *fixture) mkdir(path string) {
	f.tb.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		f.tb.Fatal(err)
	}
}

func (f *fixture) write(path, content string) {
	f.tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		f.tb.Fatal(err)
	}
}

// cgroup makes the cgroup at rel (relative to the pod hierarchy) and its
// parents, each with an empty cgroup.procs unless it exists already, and
// writes procs into the cgroup.procs of rel itself. It returns the absolute
// path.
func (f *fixture) cgroup(rel string, procs ...int) string {
	f.tb.Helper()
	base := filepath.Join(f.root, f.hier)
	dir := base
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		dir = filepath.Join(dir, part)
		f.mkdir(dir)
		p := filepath.Join(dir, "cgroup.procs")
		if _, err := os.Stat(p); os.IsNotExist(err) {
			f.write(p, "")
		}
	}
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "%d\n", p)
	}
	if len(procs) > 0 {
		f.write(filepath.Join(dir, "cgroup.procs"), b.String())
	}
	return dir
}

// podRel is the path of a pod's cgroup relative to the pod hierarchy, as the
// kubelet names it for the driver and QoS class.
func podRel(d Driver, qos, uid string) string {
	if d == DriverSystemd {
		u := strings.ReplaceAll(uid, "-", "_")
		if qos == qosGuaranteed {
			return "kubepods.slice/kubepods-pod" + u + ".slice"
		}
		return "kubepods.slice/kubepods-" + qos + ".slice/kubepods-" + qos + "-pod" + u + ".slice"
	}
	if qos == qosGuaranteed {
		return "kubepods/pod" + uid
	}
	return "kubepods/" + qos + "/pod" + uid
}

// containerRel is the path of a container's cgroup below its pod's.
func containerRel(d Driver, qos, uid, id string) string {
	if d == DriverSystemd {
		return podRel(d, qos, uid) + "/cri-containerd-" + id + ".scope"
	}
	return podRel(d, qos, uid) + "/" + id
}

// kubepodsRel is the kubepods directory for the driver.
func kubepodsRel(d Driver) string {
	if d == DriverSystemd {
		return "kubepods.slice"
	}
	return "kubepods"
}

// orphanPath is the Orphan.Path the scanner reports for a pod.
func (f *fixture) orphanPath(d Driver, qos, uid string) string {
	return "/" + filepath.ToSlash(filepath.Join(f.hier, podRel(d, qos, uid)))
}

// fakePods is a PodSource over a fixed set of UIDs.
type fakePods struct {
	unsynced bool
	uids     map[string]bool
}

func newFakePods(uids ...string) *fakePods {
	p := &fakePods{uids: map[string]bool{}}
	for _, u := range uids {
		p.uids[u] = true
	}
	return p
}

func (p *fakePods) Synced() bool          { return !p.unsynced }
func (p *fakePods) Bound(uid string) bool { return p.uids[uid] }

// fakeClock is a clock that moves only when told to.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// uid returns a distinct, valid pod UID for a test.
func uid(n int) string {
	return fmt.Sprintf("%08x-1111-4222-8333-%012x", n, n)
}
