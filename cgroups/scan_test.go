package cgroups

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestScanner(t *testing.T, f *fixture, pods PodSource, clock *fakeClock, mod func(*Options)) *Scanner {
	t.Helper()
	opts := Options{CgroupRoot: f.root, ProcRoot: f.proc, GracePeriod: 2 * time.Minute, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&opts)
	}
	s, err := NewScanner(opts, pods)
	if err != nil {
		t.Fatalf("NewScanner(%q) error: %v", f.root, err)
	}
	return s
}

// TestScanOrphansEveryLayout builds, for each version, driver and QoS
// class, a node with one pod of each kind and checks which are orphans and
// when they start to count.
func TestScanOrphansEveryLayout(t *testing.T) {
	const grace = 2 * time.Minute
	for _, v := range []Version{V1, V2} {
		for _, d := range []Driver{DriverSystemd, DriverCgroupfs} {
			for _, qos := range []string{qosGuaranteed, qosBurstable, qosBestEffort} {
				t.Run(v.String()+"/"+string(d)+"/"+qos, func(t *testing.T) {
					f := newFixture(t, v)
					var (
						boundBusy   = uid(1) // bound, running
						boundEmpty  = uid(2) // bound, being set up or torn down
						unboundBusy = uid(3) // not (yet) in the informer, running
						orphan      = uid(4) // not bound, empty, with an empty container cgroup
						deepBusy    = uid(5) // not bound, a process two levels down
					)
					f.cgroup(containerRel(d, qos, boundBusy, "c1"), 100)
					f.cgroup(podRel(d, qos, boundEmpty))
					f.cgroup(containerRel(d, qos, unboundBusy, "c3"), 300)
					f.cgroup(containerRel(d, qos, orphan, "c4"))
					f.cgroup(containerRel(d, qos, deepBusy, "c5")+"/sub", 500)
					// Things in kubepods that are not pod cgroups.
					f.cgroup(kubepodsRel(d) + "/not-a-pod")
					f.cgroup(kubepodsRel(d) + "/podnot_hex")

					clock := newFakeClock()
					s := newTestScanner(t, f, newFakePods(boundBusy, boundEmpty), clock, nil)
					want := []Orphan{{Path: f.orphanPath(d, qos, orphan), PodUID: orphan, QoS: qos, FirstSeen: clock.Now()}}
					for _, step := range []struct {
						advance     time.Duration
						wantOrphans []Orphan
						wantPending int
					}{
						{0, nil, 1},
						{grace - time.Second, nil, 1},
						{time.Second, want, 0},
						{time.Hour, want, 0},
					} {
						clock.Advance(step.advance)
						r := s.Scan()
						if r.Err != nil {
							t.Fatalf("Scan() at %s error: %v", clock.Now(), r.Err)
						}
						if !r.OrphansKnown || r.Driver != d || r.Version != v {
							t.Errorf("Scan() = known %v, driver %q, version %s; want true, %q, %s", r.OrphansKnown, r.Driver, r.Version, d, v)
						}
						if diff := cmp.Diff(step.wantOrphans, r.Orphans); diff != "" {
							t.Errorf("Scan() at +%s orphans (-want +got):\n%s", clock.Now().Sub(want[0].FirstSeen), diff)
						}
						if r.Pending != step.wantPending {
							t.Errorf("Scan() at +%s pending = %d, want %d", clock.Now().Sub(want[0].FirstSeen), r.Pending, step.wantPending)
						}
					}
				})
			}
		}
	}
}

// TestScanGracePeriod checks that an orphan counts only when seen orphaned
// on two scans at least the grace period apart, and that anything that
// makes it not an orphan in between restarts the wait.
func TestScanGracePeriod(t *testing.T) {
	const grace = 2 * time.Minute
	type step struct {
		name    string
		advance time.Duration
		change  func(f *fixture, pods *fakePods, path string)
		want    int // orphans counted
	}
	addProc := func(f *fixture, _ *fakePods, path string) {
		f.write(filepath.Join(path, "cgroup.procs"), "42\n")
	}
	dropProc := func(f *fixture, _ *fakePods, path string) {
		f.write(filepath.Join(path, "cgroup.procs"), "")
	}
	bind := func(_ *fixture, p *fakePods, _ string) { p.uids[uid(7)] = true }
	unbind := func(_ *fixture, p *fakePods, _ string) { delete(p.uids, uid(7)) }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"counted after the grace period", []step{
			{"first seen", 0, nil, 0},
			{"one scan later", time.Minute, nil, 0},
			{"grace period after first sight", time.Minute, nil, 1},
		}},
		{"a single late scan is enough", []step{
			{"first seen", 0, nil, 0},
			{"two scans a grace period apart", grace, nil, 1},
		}},
		{"pod reappears in the informer", []step{
			{"first seen", 0, nil, 0},
			{"pod bound again", time.Minute, bind, 0},
			{"after the old grace period", 2 * time.Minute, nil, 0},
			{"unbound again: first seen anew", time.Minute, unbind, 0},
			{"not yet a grace period since", time.Minute, nil, 0},
			{"a grace period since", time.Minute, nil, 1},
		}},
		{"a process comes back", []step{
			{"first seen", 0, nil, 0},
			{"counted", grace, nil, 1},
			{"process appears", time.Minute, addProc, 0},
			{"process gone: first seen anew", time.Minute, dropProc, 0},
			{"a grace period since", grace, nil, 1},
		}},
		{"cgroup removed by the kubelet", []step{
			{"first seen", 0, nil, 0},
			{"removed", grace, func(f *fixture, _ *fakePods, path string) {
				if err := os.RemoveAll(path); err != nil {
					f.tb.Fatal(err)
				}
			}, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, V2)
			path := f.cgroup(podRel(DriverSystemd, qosBurstable, uid(7)))
			pods := newFakePods()
			clock := newFakeClock()
			s := newTestScanner(t, f, pods, clock, func(o *Options) { o.GracePeriod = grace })
			for _, st := range tc.steps {
				clock.Advance(st.advance)
				if st.change != nil {
					st.change(f, pods, path)
				}
				r := s.Scan()
				if r.Err != nil {
					t.Fatalf("%s: Scan() error: %v", st.name, r.Err)
				}
				if got := len(r.Orphans); got != st.want {
					t.Errorf("%s: Scan() counted %d orphans, want %d", st.name, got, st.want)
				}
			}
		})
	}
}

// TestScanCounts checks the live and dying cgroup counts of both versions.
func TestScanCounts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v          Version
		setup      func(f *fixture)
		wantCounts map[string]int
		wantDying  int
		wantKnown  bool
	}{
		{
			name: "v2 without nr_descendants counts directories",
			v:    V2,
			setup: func(f *fixture) {
				f.cgroup(containerRel(DriverSystemd, qosBurstable, uid(1), "a"))         // kubepods, burstable, pod, container: 4
				f.cgroup(containerRel(DriverSystemd, qosBurstable, uid(2), "b"))         // pod, container: 2
				f.cgroup(containerRel(DriverSystemd, qosGuaranteed, uid(3), "c") + "/x") // pod, container, x: 3
				f.cgroup("system.slice/containerd.service")                              // 2
				// Without nr_descendants the directories are counted.
				f.write(filepath.Join(f.root, "cgroup.stat"), "nr_dying_descendants 37\n")
				// A file is not a cgroup.
				f.write(filepath.Join(f.root, "system.slice", "memory.max"), "max\n")
			},
			wantCounts: map[string]int{UnifiedController: 12}, // 11 and the root
			wantDying:  37,
			wantKnown:  true,
		},
		{
			name: "v2 takes the count from nr_descendants when the kernel gives it",
			v:    V2,
			setup: func(f *fixture) {
				f.cgroup(podRel(DriverSystemd, qosBurstable, uid(1)))
				f.write(filepath.Join(f.root, "cgroup.stat"), "nr_descendants 4711\nnr_subsys_memory 9\nnr_dying_descendants 2\n")
			},
			wantCounts: map[string]int{UnifiedController: 4712},
			wantDying:  2,
			wantKnown:  true,
		},
		{
			name:       "v1 reads /proc/cgroups; dying is memory's num_cgroups minus its directories",
			v:          V1,
			setup:      func(f *fixture) { f.cgroup(podRel(DriverCgroupfs, qosBurstable, uid(1))) },
			wantCounts: map[string]int{"cpuset": 31, "cpu": 212, "cpuacct": 212, "memory": 1480, "pids": 219},
			wantDying:  1480 - 4, // memory, kubepods, burstable, the pod
			wantKnown:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.v)
			tc.setup(f)
			r := newTestScanner(t, f, newFakePods(), newFakeClock(), nil).Scan()
			if r.Err != nil {
				t.Fatalf("Scan() error: %v", r.Err)
			}
			if diff := cmp.Diff(tc.wantCounts, r.Cgroups); diff != "" {
				t.Errorf("Scan().Cgroups (-want +got):\n%s", diff)
			}
			if r.Dying != tc.wantDying || r.DyingKnown != tc.wantKnown {
				t.Errorf("Scan() dying = %d (known %v), want %d (known %v)", r.Dying, r.DyingKnown, tc.wantDying, tc.wantKnown)
			}
		})
	}
}

// unreadable makes path impossible to read even for root: it replaces it
// with a directory, so a read fails with EISDIR.
func unreadable(f *fixture, path string) {
	f.tb.Helper()
	if err := os.RemoveAll(path); err != nil {
		f.tb.Fatal(err)
	}
	f.mkdir(path)
}

// TestScanErrors checks that what cannot be read is reported, counted as an
// error, and never turned into an orphan or a zero.
func TestScanErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		v           Version
		setup       func(f *fixture, pods *fakePods)
		wantErr     string
		wantOrphans int
		wantKnown   bool // orphans judged
		wantCounts  bool
		wantDying   bool
	}{
		{
			name: "unreadable cgroup.procs: that cgroup is not an orphan, the others are",
			v:    V2,
			setup: func(f *fixture, _ *fakePods) {
				f.cgroup(podRel(DriverSystemd, qosBurstable, uid(1)))
				p := f.cgroup(podRel(DriverSystemd, qosBurstable, uid(2)))
				unreadable(f, filepath.Join(p, "cgroup.procs"))
			},
			wantErr:     "cgroup.procs",
			wantOrphans: 1,
			wantKnown:   true,
			wantCounts:  true,
			wantDying:   true,
		},
		{
			name: "unreadable container cgroup.procs",
			v:    V1,
			setup: func(f *fixture, _ *fakePods) {
				p := f.cgroup(containerRel(DriverCgroupfs, qosBestEffort, uid(1), "c"))
				unreadable(f, filepath.Join(p, "cgroup.procs"))
			},
			wantErr:    "cgroup.procs",
			wantKnown:  true,
			wantCounts: true,
			wantDying:  true, // num_cgroups minus the memory hierarchy's directories
		},
		{
			name: "unreadable cgroup.stat",
			v:    V2,
			setup: func(f *fixture, _ *fakePods) {
				f.cgroup(podRel(DriverSystemd, qosBurstable, uid(1)))
				unreadable(f, filepath.Join(f.root, "cgroup.stat"))
			},
			wantErr:     "cgroup.stat",
			wantOrphans: 1,
			wantKnown:   true,
			wantCounts:  true,
		},
		{
			name: "unreadable /proc/cgroups",
			v:    V1,
			setup: func(f *fixture, _ *fakePods) {
				f.cgroup(podRel(DriverCgroupfs, qosBurstable, uid(1)))
				unreadable(f, filepath.Join(f.proc, "cgroups"))
			},
			wantErr:     "cgroups",
			wantOrphans: 1,
			wantKnown:   true,
		},
		{
			name: "malformed /proc/cgroups",
			v:    V1,
			setup: func(f *fixture, _ *fakePods) {
				f.cgroup(podRel(DriverCgroupfs, qosBurstable, uid(1)))
				f.write(filepath.Join(f.proc, "cgroups"), "memory 4 lots 1\n")
			},
			wantErr:     `num_cgroups "lots" is not a count`,
			wantOrphans: 1,
			wantKnown:   true,
		},
		{
			name:       "no kubepods cgroup",
			v:          V2,
			setup:      func(f *fixture, _ *fakePods) { f.cgroup("system.slice") },
			wantErr:    "no kubepods cgroup",
			wantCounts: true,
			wantDying:  true,
		},
		{
			name: "pods not synced",
			v:    V2,
			setup: func(f *fixture, p *fakePods) {
				f.cgroup(podRel(DriverSystemd, qosBurstable, uid(1)))
				p.unsynced = true
			},
			wantErr:    ErrPodsNotSynced.Error(),
			wantCounts: true,
			wantDying:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.v)
			pods := newFakePods()
			tc.setup(f, pods)
			clock := newFakeClock()
			s := newTestScanner(t, f, pods, clock, func(o *Options) { o.GracePeriod = time.Minute })
			s.Scan()
			clock.Advance(time.Minute)
			r := s.Scan()
			if r.Err == nil || !strings.Contains(r.Err.Error(), tc.wantErr) {
				t.Fatalf("Scan() error = %v, want one containing %q", r.Err, tc.wantErr)
			}
			if len(r.Orphans) != tc.wantOrphans || r.OrphansKnown != tc.wantKnown {
				t.Errorf("Scan() orphans = %d (known %v), want %d (known %v)", len(r.Orphans), r.OrphansKnown, tc.wantOrphans, tc.wantKnown)
			}
			if got := r.Cgroups != nil; got != tc.wantCounts {
				t.Errorf("Scan() cgroup counts known = %v (%v), want %v", got, r.Cgroups, tc.wantCounts)
			}
			if r.DyingKnown != tc.wantDying {
				t.Errorf("Scan() dying known = %v, want %v", r.DyingKnown, tc.wantDying)
			}
		})
	}
}

// TestScanNotSyncedKeepsTimers checks that a scan without the pods neither
// counts nor forgets the cgroups seen orphaned before.
func TestScanNotSyncedKeepsTimers(t *testing.T) {
	f := newFixture(t, V2)
	f.cgroup(podRel(DriverSystemd, qosBestEffort, uid(1)))
	pods := newFakePods()
	clock := newFakeClock()
	s := newTestScanner(t, f, pods, clock, nil)
	if r := s.Scan(); len(r.Orphans) != 0 || r.Pending != 1 {
		t.Fatalf("first Scan() = %d orphans, %d pending; want 0, 1", len(r.Orphans), r.Pending)
	}
	pods.unsynced = true
	clock.Advance(2 * time.Minute)
	if r := s.Scan(); !errors.Is(r.Err, ErrPodsNotSynced) || r.OrphansKnown {
		t.Fatalf("unsynced Scan() = err %v, known %v; want ErrPodsNotSynced, false", r.Err, r.OrphansKnown)
	}
	pods.unsynced = false
	if r := s.Scan(); len(r.Orphans) != 1 {
		t.Errorf("Scan() after resync counted %d orphans, want 1 (first seen before the unsynced scan)", len(r.Orphans))
	}
}

// TestScanForgetsVanishedCgroups checks that the scanner's memory of
// orphans follows the tree through pod churn: a cgroup that is gone, bound
// again or busy again is forgotten, so the memory does not grow with every
// pod the node has ever run.
func TestScanForgetsVanishedCgroups(t *testing.T) {
	f := newFixture(t, V2)
	pods := newFakePods()
	clock := newFakeClock()
	s := newTestScanner(t, f, pods, clock, nil)
	for round := range 3 {
		var paths []string
		for i := range 50 {
			paths = append(paths, f.cgroup(podRel(DriverSystemd, qosBurstable, uid(round*100+i))))
		}
		if r := s.Scan(); r.Err != nil || r.Pending != 50 {
			t.Fatalf("round %d: Scan() = %d pending, %v; want 50, nil", round, r.Pending, r.Err)
		}
		if got := len(s.seen); got != 50 {
			t.Errorf("round %d: scanner remembers %d cgroups after seeing 50, want 50", round, got)
		}
		for i, p := range paths {
			switch i % 3 {
			case 0: // removed by the kubelet
				if err := os.RemoveAll(p); err != nil {
					t.Fatal(err)
				}
			case 1: // its pod shows up in the informer
				pods.uids[uid(round*100+i)] = true
			case 2: // a process moves in, then the kubelet removes it
				f.write(filepath.Join(p, "cgroup.procs"), "1\n")
			}
		}
		clock.Advance(time.Minute)
		if r := s.Scan(); r.Err != nil || r.Pending != 0 || len(r.Orphans) != 0 {
			t.Fatalf("round %d: Scan() after churn = %d pending, %d orphans, %v; want 0, 0, nil", round, r.Pending, len(r.Orphans), r.Err)
		}
		if got := len(s.seen); got != 0 {
			t.Errorf("round %d: scanner remembers %d cgroups after they all went, want 0", round, got)
		}
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestNewScannerErrors(t *testing.T) {
	v2 := newFixture(t, V2)
	file := filepath.Join(t.TempDir(), "file")
	v2.write(file, "x")
	for _, tc := range []struct {
		name    string
		opts    Options
		pods    PodSource
		wantErr string
	}{
		{"root does not exist", Options{CgroupRoot: filepath.Join(v2.root, "missing")}, newFakePods(), "no such file or directory"},
		{"root is a file", Options{CgroupRoot: file}, newFakePods(), "not a directory"},
		{"root is not a cgroup mount", Options{CgroupRoot: t.TempDir()}, newFakePods(), "neither a cgroup v2 root"},
		{"negative grace", Options{CgroupRoot: v2.root, GracePeriod: -time.Second}, newFakePods(), "negative grace period"},
		{"no pod source", Options{CgroupRoot: v2.root}, nil, "nil pod source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScanner(tc.opts, tc.pods)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewScanner(%+v) = %v, %v; want error containing %q", tc.opts, s, err, tc.wantErr)
			}
		})
	}
}

func TestDetectLayout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dirs     []string
		files    []string
		want     Layout // Root and Hierarchy relative to the temp dir
		wantErr  string
		noCreate bool
	}{
		{name: "v2", files: []string{"cgroup.controllers"}, want: Layout{Version: V2, Hierarchy: "."}},
		{name: "v1", dirs: []string{"memory", "cpu", "pids"}, want: Layout{Version: V1, Hierarchy: "memory", Controller: "memory", Pids: "pids"}},
		{name: "hybrid", dirs: []string{"unified", "memory", "cpu"}, want: Layout{Version: V1, Hierarchy: "memory", Controller: "memory"}},
		{name: "v1 without memory", dirs: []string{"cpu", "pids"}, want: Layout{Version: V1, Hierarchy: "cpu", Controller: "cpu", Pids: "pids"}},
		{name: "v1 pids only", dirs: []string{"pids"}, want: Layout{Version: V1, Hierarchy: "pids", Controller: "pids", Pids: "pids"}},
		{name: "empty", wantErr: "neither a cgroup v2 root"},
		{name: "missing", noCreate: true, wantErr: "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "cg")
			if !tc.noCreate {
				for _, d := range append([]string{"."}, tc.dirs...) {
					if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				for _, fn := range tc.files {
					if err := os.WriteFile(filepath.Join(root, fn), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := DetectLayout(root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("DetectLayout(%q) = %+v, %v; want error containing %q", root, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DetectLayout(%q) error: %v", root, err)
			}
			want := tc.want
			want.Root = root
			want.Hierarchy = filepath.Join(root, tc.want.Hierarchy)
			if tc.want.Pids != "" {
				want.Pids = filepath.Join(root, tc.want.Pids)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DetectLayout(%q) (-want +got):\n%s", root, diff)
			}
		})
	}
}

func TestParsePodDir(t *testing.T) {
	const dashed = "0f3a9c1e-5b2d-4e8f-9a7b-6c5d4e3f2a1b"
	const underscored = "0f3a9c1e_5b2d_4e8f_9a7b_6c5d4e3f2a1b"
	const hash = "6b3f0c2a9d8e7f6a5b4c3d2e1f0a9b8c" // a static pod's config hash
	for _, tc := range []struct {
		driver  Driver
		qos     string
		name    string
		wantUID string
		wantOK  bool
	}{
		{DriverSystemd, qosBurstable, "kubepods-burstable-pod" + underscored + ".slice", dashed, true},
		{DriverSystemd, qosBestEffort, "kubepods-besteffort-pod" + underscored + ".slice", dashed, true},
		{DriverSystemd, qosGuaranteed, "kubepods-pod" + underscored + ".slice", dashed, true},
		{DriverSystemd, qosGuaranteed, "kubepods-pod" + hash + ".slice", hash, true},
		{DriverSystemd, qosGuaranteed, "kubepods-pod" + strings.ToUpper(underscored) + ".slice", dashed, true},
		{DriverSystemd, qosGuaranteed, "kubepods-burstable.slice", "", false},
		{DriverSystemd, qosBurstable, "kubepods-besteffort-pod" + underscored + ".slice", "", false},
		{DriverSystemd, qosBurstable, "kubepods-burstable-pod" + underscored, "", false},
		{DriverSystemd, qosBurstable, "kubepods-burstable-pod.slice", "", false},
		{DriverSystemd, qosBurstable, "cri-containerd-abc.scope", "", false},
		{DriverCgroupfs, qosBurstable, "pod" + dashed, dashed, true},
		{DriverCgroupfs, qosGuaranteed, "pod" + hash, hash, true},
		{DriverCgroupfs, qosGuaranteed, "burstable", "", false},
		{DriverCgroupfs, qosGuaranteed, "pod", "", false},
		{DriverCgroupfs, qosGuaranteed, "podxyz", "", false},
		{DriverCgroupfs, qosGuaranteed, "pod" + strings.Repeat("a", 65), "", false},
		{Driver("other"), qosGuaranteed, "pod" + dashed, "", false},
	} {
		t.Run(string(tc.driver)+"/"+tc.name, func(t *testing.T) {
			got, ok := parsePodDir(tc.driver, tc.qos, tc.name)
			if got != tc.wantUID || ok != tc.wantOK {
				t.Errorf("parsePodDir(%s, %s, %q) = %q, %v; want %q, %v", tc.driver, tc.qos, tc.name, got, ok, tc.wantUID, tc.wantOK)
			}
		})
	}
}

// recordingRmdir removes a fixture directory the way the kernel removes a
// cgroup: only when it has no child cgroup and its cgroup.procs is empty
// (the interface files of a real cgroup do not stop an rmdir).
type recordingRmdir struct {
	removed []string
	refuse  map[string]bool
}

func (r *recordingRmdir) rmdir(path string) error {
	if r.refuse[filepath.Base(path)] {
		return syscall.EBUSY
	}
	names, err := subdirs(path, nil)
	if err != nil {
		return err
	}
	procs, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
	if err != nil {
		return err
	}
	if len(names) > 0 || len(strings.TrimSpace(string(procs))) > 0 {
		return syscall.EBUSY
	}
	r.removed = append(r.removed, path)
	return os.RemoveAll(path)
}

func TestRemoveEmptyOrphans(t *testing.T) {
	const d = DriverSystemd
	for _, tc := range []struct {
		name        string
		refuse      map[string]bool
		wantRemoved int
		wantOrphans []string // UIDs still counted after removal
	}{
		{name: "removes pod and container cgroups", wantRemoved: 5},
		{name: "a refused rmdir keeps the orphan counted", refuse: map[string]bool{"cri-containerd-c2.scope": true}, wantRemoved: 3, wantOrphans: []string{uid(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, V2)
			f.cgroup(containerRel(d, qosBurstable, uid(1), "c1"))
			f.cgroup(containerRel(d, qosBurstable, uid(1), "c1b"))
			f.cgroup(containerRel(d, qosBestEffort, uid(2), "c2"))
			busy := f.cgroup(containerRel(d, qosBurstable, uid(3), "c3"), 33)
			bound := f.cgroup(podRel(d, qosGuaranteed, uid(4)))
			rm := &recordingRmdir{refuse: tc.refuse}
			clock := newFakeClock()
			s := newTestScanner(t, f, newFakePods(uid(4)), clock, func(o *Options) {
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
				t.Errorf("Scan() removed %d (%v), want %d", r.Removed, rm.removed, tc.wantRemoved)
			}
			var got []string
			for _, o := range r.Orphans {
				got = append(got, o.PodUID)
			}
			if diff := cmp.Diff(tc.wantOrphans, got); diff != "" {
				t.Errorf("Scan() orphans after removal (-want +got):\n%s", diff)
			}
			for _, keep := range []string{busy, bound} {
				if _, err := os.Stat(keep); err != nil {
					t.Errorf("%s was removed: %v", keep, err)
				}
			}
		})
	}
}

// TestScanPopulated checks that on v2 the kernel's populated flag in
// cgroup.events decides whether a pod holds a process, without a walk.
func TestScanPopulated(t *testing.T) {
	const d = DriverSystemd
	for _, tc := range []struct {
		name       string
		events     string // cgroup.events of the pod; "dir" makes it unreadable
		procs      []int  // in the pod's container
		badProcs   bool   // the container's cgroup.procs is unreadable
		wantOrphan bool
		wantErr    string
	}{
		{name: "populated 0 is an orphan", events: "populated 0\nfrozen 0\n", wantOrphan: true},
		{name: "populated 1 is not, whatever cgroup.procs says", events: "populated 1\nfrozen 0\n"},
		{name: "populated 0 is trusted without reading cgroup.procs", events: "populated 0\nfrozen 0\n", badProcs: true, wantOrphan: true},
		{name: "no cgroup.events: cgroup.procs is read", procs: []int{9}},
		{name: "no cgroup.events and empty cgroup.procs", wantOrphan: true},
		{name: "malformed cgroup.events", events: "populated yes\n", wantErr: "not a count"},
		{name: "populated out of range", events: "populated 2\n", wantErr: "neither 0 nor 1"},
		{name: "unreadable cgroup.events", events: "dir", wantErr: "cgroup.events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, V2)
			c := f.cgroup(containerRel(d, qosBurstable, uid(1), "c"), tc.procs...)
			pod := filepath.Dir(c)
			switch tc.events {
			case "":
			case "dir":
				unreadable(f, filepath.Join(pod, "cgroup.events"))
			default:
				f.write(filepath.Join(pod, "cgroup.events"), tc.events)
			}
			if tc.badProcs {
				unreadable(f, filepath.Join(c, "cgroup.procs"))
			}
			checkLonePod(t, f, tc.wantOrphan, tc.wantErr)
		})
	}
}

// checkLonePod scans the fixture, whose one pod is bound to nothing, twice
// an hour apart, and checks whether the pod is then an orphan and the error.
func checkLonePod(t *testing.T, f *fixture, wantOrphan bool, wantErr string) {
	t.Helper()
	clock := newFakeClock()
	s := newTestScanner(t, f, newFakePods(), clock, nil)
	s.Scan()
	clock.Advance(time.Hour)
	r := s.Scan()
	if wantErr == "" && r.Err != nil {
		t.Fatalf("Scan() error: %v", r.Err)
	}
	if wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), wantErr)) {
		t.Fatalf("Scan() error = %v, want one containing %q", r.Err, wantErr)
	}
	if got := len(r.Orphans) == 1; got != wantOrphan {
		t.Errorf("Scan() orphan = %v (%v), want %v", got, r.Orphans, wantOrphan)
	}
}

// TestScanV1PidsCurrent checks that on v1 the pids controller's
// pids.current, which counts tasks in every PID namespace, decides whether a
// pod holds a process; cgroup.procs, which lists only the agent's own
// namespace, is read only when pids.current is missing.
func TestScanV1PidsCurrent(t *testing.T) {
	const d = DriverCgroupfs
	for _, tc := range []struct {
		name       string
		pids       string // pids.current of the pod in the pids hierarchy; "" for none
		procs      []int  // in the memory hierarchy's container
		wantOrphan bool
		wantErr    string
	}{
		{name: "tasks in another PID namespace", pids: "3\n"},
		{name: "no task", pids: "0\n", wantOrphan: true},
		{name: "no pids cgroup: cgroup.procs is read", procs: []int{7}},
		{name: "no pids cgroup and no process", wantOrphan: true},
		{name: "malformed pids.current", pids: "max\n", wantErr: "is not a count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, V1)
			f.cgroup(containerRel(d, qosBurstable, uid(1), "c"), tc.procs...)
			if tc.pids != "" {
				dir := filepath.Join(f.root, "pids", podRel(d, qosBurstable, uid(1)))
				f.mkdir(dir)
				f.write(filepath.Join(dir, "pids.current"), tc.pids)
			}
			checkLonePod(t, f, tc.wantOrphan, tc.wantErr)
		})
	}
}

// FuzzParsePodDir checks that a name the scanner accepts as a pod cgroup
// always yields a UID in the form the pod source compares: lower case,
// dashes not underscores, only hex digits and dashes.
func FuzzParsePodDir(f *testing.F) {
	f.Add("kubepods-burstable-pod0f3a9c1e_5b2d_4e8f_9a7b_6c5d4e3f2a1b.slice", true)
	f.Add("pod0f3a9c1e-5b2d-4e8f-9a7b-6c5d4e3f2a1b", false)
	f.Add("kubepods-podABC.slice", true)
	f.Fuzz(func(t *testing.T, name string, systemd bool) {
		d := DriverCgroupfs
		if systemd {
			d = DriverSystemd
		}
		for _, qos := range []string{qosGuaranteed, qosBurstable, qosBestEffort} {
			got, ok := parsePodDir(d, qos, name)
			if !ok {
				continue
			}
			if got == "" || got != NormalizeUID(got) || !validUID(got) || strings.ContainsAny(got, "_ABCDEF") {
				t.Errorf("parsePodDir(%s, %s, %q) = %q, not a normalised UID", d, qos, name, got)
			}
		}
	})
}
