package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// procCgroupsMemory is a /proc/cgroups whose memory controller counts n
// cgroups.
func procCgroupsMemory(n int) string {
	return fmt.Sprintf("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t40\t1\nmemory\t4\t%d\t1\npids\t8\t41\t1\n", n)
}

// TestScanDyingV1 checks the v1 count of dying memory cgroups: the memory
// controller's num_cgroups minus the directories of the memory hierarchy,
// taken only when num_cgroups is the same before and after the walk.
func TestScanDyingV1(t *testing.T) {
	const d = DriverCgroupfs
	// The tree of every case: the memory hierarchy's root, kubepods,
	// burstable, two pods and a container of each, system.slice.
	const live = 1 + 1 + 1 + 2 + 2 + 1
	for _, tc := range []struct {
		name       string
		noMemory   bool     // the memory hierarchy is not mounted
		reads      []string // successive contents of /proc/cgroups; "err" fails the read
		wantDying  int
		wantKnown  bool
		wantMemory int    // num_cgroups of memory in Result.Cgroups; 0 when none
		wantErr    string // "" for none
		wantReads  int
	}{
		{name: "num_cgroups minus live directories", reads: []string{procCgroupsMemory(live + 37)},
			wantDying: 37, wantKnown: true, wantMemory: live + 37, wantReads: 2},
		{name: "no dying cgroup", reads: []string{procCgroupsMemory(live)},
			wantDying: 0, wantKnown: true, wantMemory: live, wantReads: 2},
		{name: "fewer counted than directories is clamped at zero", reads: []string{procCgroupsMemory(live - 3)},
			wantDying: 0, wantKnown: true, wantMemory: live - 3, wantReads: 2},
		{name: "a count that changed during the walk is read again",
			reads:     []string{procCgroupsMemory(live + 5), procCgroupsMemory(live + 9), procCgroupsMemory(live + 9)},
			wantDying: 9, wantKnown: true, wantMemory: live + 9, wantReads: 3},
		{name: "a count that changes during every walk is unknown, not an error",
			reads:      []string{procCgroupsMemory(live + 1), procCgroupsMemory(live + 2), procCgroupsMemory(live + 3), procCgroupsMemory(live + 4)},
			wantMemory: live + 4, wantReads: 1 + dyingV1Attempts},
		{name: "memory controller disabled", reads: []string{"#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t40\t1\nmemory\t4\t90\t0\n"},
			wantReads: 1},
		{name: "no memory hierarchy", noMemory: true, reads: []string{procCgroupsMemory(live + 37)},
			wantMemory: live + 37, wantReads: 1},
		{name: "memory controller gone on the second read",
			reads:      []string{procCgroupsMemory(live + 2), "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t3\t40\t1\n"},
			wantMemory: 0, wantErr: "memory controller gone", wantReads: 2},
		{name: "second read fails", reads: []string{procCgroupsMemory(live + 2), "err"},
			wantMemory: live + 2, wantErr: "no such file", wantReads: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, V1)
			if tc.noMemory {
				if err := os.RemoveAll(filepath.Join(f.root, "memory")); err != nil {
					t.Fatal(err)
				}
				f.hier = "cpu"
			}
			f.cgroup(containerRel(d, qosBurstable, uid(1), "a"))
			f.cgroup(containerRel(d, qosBurstable, uid(2), "b"))
			f.cgroup("system.slice")
			f.write(filepath.Join(f.root, f.hier, "system.slice", "memory.stat"), "cache 0\n") // a file is not a cgroup
			s := newTestScanner(t, f, newFakePods(uid(1), uid(2)), newFakeClock(), nil)
			reads := 0
			s.readProc = func(procRoot string) (map[string]int, error) {
				i := min(reads, len(tc.reads)-1)
				reads++
				content := tc.reads[i]
				if content == "err" {
					return readProcCgroups(filepath.Join(procRoot, "missing"))
				}
				f.write(filepath.Join(procRoot, "cgroups"), content)
				return readProcCgroups(procRoot)
			}
			r := s.Scan()
			if tc.wantErr == "" && r.Err != nil {
				t.Fatalf("Scan() error: %v", r.Err)
			}
			if tc.wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tc.wantErr) || !strings.Contains(r.Err.Error(), "dying cgroups")) {
				t.Fatalf("Scan() error = %v, want one about dying cgroups containing %q", r.Err, tc.wantErr)
			}
			if r.Dying != tc.wantDying || r.DyingKnown != tc.wantKnown {
				t.Errorf("Scan() dying = %d (known %v), want %d (known %v)", r.Dying, r.DyingKnown, tc.wantDying, tc.wantKnown)
			}
			if got := r.Cgroups["memory"]; got != tc.wantMemory {
				t.Errorf("Scan().Cgroups[memory] = %d, want %d (%v)", got, tc.wantMemory, r.Cgroups)
			}
			if reads != tc.wantReads {
				t.Errorf("Scan() read /proc/cgroups %d times, want %d", reads, tc.wantReads)
			}
		})
	}
}

// cgroupIn makes the cgroup at rel in hierarchy h, as f.cgroup does in the
// pod hierarchy, and returns its path.
func (f *fixture) cgroupIn(h, rel string, procs ...int) string {
	f.tb.Helper()
	saved := f.hier
	f.hier = h
	defer func() { f.hier = saved }()
	return f.cgroup(rel, procs...)
}

// v1Rmdir removes a fixture directory as the kernel removes a v1 cgroup
// (see recordingRmdir), refuses the paths containing one of refuse, and
// runs before (if set) ahead of every removal.
type v1Rmdir struct {
	recordingRmdir
	refuseIn []string
	before   func(path string)
}

func (r *v1Rmdir) rmdir(path string) error {
	for _, s := range r.refuseIn {
		if strings.Contains(path, s) {
			return syscall.EBUSY
		}
	}
	if r.before != nil {
		r.before(path)
	}
	return r.recordingRmdir.rmdir(path)
}

// TestRemoveEmptyOrphansV1 checks the removal of orphans on v1: from every
// hierarchy where the pod has a cgroup, the hierarchy orphans are found in
// last, and nowhere when any of them holds a process.
func TestRemoveEmptyOrphansV1(t *testing.T) {
	const d = DriverCgroupfs
	var (
		everywhere = uid(1) // in memory, cpu, pids and systemd
		busyInCPU  = uid(2) // empty in memory and pids, a process in cpu
		memoryOnly = uid(3)
		bound      = uid(4)
		joined     = uid(5) // a process joins while it is removed
	)
	type dirs map[string][]string // hierarchy -> UIDs whose pod cgroup should be there
	for _, tc := range []struct {
		name        string
		refuseIn    []string
		join        bool
		wantRemoved int
		wantOrphans []string
		want        dirs
	}{
		{
			name:        "removes the pod from every hierarchy; not one with a process anywhere",
			wantRemoved: 2*4 + 1 + 2*4,
			wantOrphans: []string{busyInCPU},
			want: dirs{
				"memory": {busyInCPU, bound}, "cpu": {busyInCPU, bound}, "pids": {busyInCPU}, "systemd": {busyInCPU},
			},
		},
		{
			name:     "a refusal in another hierarchy keeps the pod in the one orphans are found in",
			refuseIn: []string{"/cpu/"},
			// The hierarchies go in name order with memory moved last
			// (cpu, pids, systemd, memory; blkio holds no pod): cpu refuses
			// first, and of the pods in cpu nothing is removed.
			wantRemoved: 1,
			wantOrphans: []string{everywhere, busyInCPU, joined},
			want: dirs{
				"memory":  {everywhere, busyInCPU, bound, joined},
				"cpu":     {everywhere, busyInCPU, bound, joined},
				"pids":    {everywhere, busyInCPU, joined},
				"systemd": {everywhere, busyInCPU, joined},
			},
		},
		{
			name: "a process that joins during the removal stops it",
			join: true,
			// joined: its cpu, pids and systemd trees go before the
			// process is seen in memory; memory, where orphans are found,
			// stays, so it is still counted and tried again.
			wantRemoved: 2*4 + 1 + 2*3,
			wantOrphans: []string{busyInCPU, joined},
			want: dirs{
				"memory": {busyInCPU, bound, joined}, "cpu": {busyInCPU, bound}, "pids": {busyInCPU}, "systemd": {busyInCPU},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, V1)
			f.mkdir(filepath.Join(f.root, "systemd"))
			f.mkdir(filepath.Join(f.root, "blkio")) // a hierarchy the pods are not in
			for _, u := range []string{everywhere, busyInCPU, joined} {
				for _, h := range []string{"memory", "cpu", "pids", "systemd"} {
					f.cgroupIn(h, containerRel(d, qosBurstable, u, "c"))
				}
				f.write(filepath.Join(f.root, "pids", podRel(d, qosBurstable, u), "pids.current"), "0\n")
			}
			f.cgroupIn("cpu", containerRel(d, qosBurstable, busyInCPU, "c"), 4242)
			f.cgroup(podRel(d, qosBestEffort, memoryOnly))
			for _, h := range []string{"memory", "cpu"} {
				f.cgroupIn(h, podRel(d, qosGuaranteed, bound), 77)
			}
			rm := &v1Rmdir{recordingRmdir: recordingRmdir{}, refuseIn: tc.refuseIn}
			if tc.join {
				// The process comes into joined's memory container cgroup
				// after everything was read, while its cpu tree goes.
				target := filepath.Join(f.root, "memory", containerRel(d, qosBurstable, joined, "c"), "cgroup.procs")
				rm.before = func(path string) {
					if strings.Contains(path, joined) && strings.Contains(path, "/cpu/") {
						f.write(target, "999\n")
					}
				}
			}
			clock := newFakeClock()
			s := newTestScanner(t, f, newFakePods(bound), clock, func(o *Options) {
				o.RemoveEmptyOrphans = true
				o.Rmdir = rm.rmdir
			})
			if r := s.Scan(); r.Removed != 0 || len(rm.removed) != 0 {
				t.Fatalf("Scan() within the grace period removed %d (%v), want 0", r.Removed, rm.removed)
			}
			clock.Advance(2 * time.Minute)
			r := s.Scan()
			if r.Err != nil {
				t.Fatalf("Scan() error: %v", r.Err)
			}
			if r.Removed != tc.wantRemoved || len(rm.removed) != tc.wantRemoved {
				t.Errorf("Scan() removed %d, want %d: %v", r.Removed, tc.wantRemoved, rm.removed)
			}
			var got []string
			for _, o := range r.Orphans {
				got = append(got, o.PodUID)
			}
			if diff := cmp.Diff(tc.wantOrphans, got); diff != "" {
				t.Errorf("Scan() orphans after removal (-want +got):\n%s", diff)
			}
			left := dirs{}
			for _, h := range []string{"blkio", "memory", "cpu", "pids", "systemd"} {
				for _, u := range []string{everywhere, busyInCPU, memoryOnly, bound, joined} {
					for _, qos := range []string{qosGuaranteed, qosBurstable, qosBestEffort} {
						if _, err := os.Stat(filepath.Join(f.root, h, podRel(d, qos, u))); err == nil {
							left[h] = append(left[h], u)
						} else if !errors.Is(err, os.ErrNotExist) {
							t.Fatal(err)
						}
					}
				}
			}
			if diff := cmp.Diff(tc.want, left); diff != "" {
				t.Errorf("pod cgroups left per hierarchy (-want +got):\n%s", diff)
			}
		})
	}
}
