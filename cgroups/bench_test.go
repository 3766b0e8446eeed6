package cgroups

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// benchTree describes a generated v2, systemd-driver node.
type benchTree struct {
	pods       int  // pod cgroups, spread over the three QoS classes
	containers int  // container cgroups per pod
	bound      int  // the first pods are bound to the node and run
	files      int  // extra interface files per cgroup besides cgroup.procs
	events     bool // write cgroup.events, as the v2 kernel does
}

// cgroups is the number of cgroup directories the tree holds.
func (bt benchTree) cgroups() int {
	// root, kubepods.slice, two QoS slices, system.slice, then the pods.
	return 5 + bt.pods*(1+bt.containers)
}

// orphans is how many of its pods are orphans: of the unbound pods, every
// other one is empty, the others run a process in their last container.
func (bt benchTree) orphans() int { return (bt.pods - bt.bound + 1) / 2 }

var benchFiles = []string{"cgroup.controllers", "cgroup.freeze", "cgroup.stat", "cpu.stat", "io.stat", "memory.current", "memory.stat", "memory.max", "pids.current"}

// generate writes the tree under root (which must not exist) and returns
// the UIDs of the bound pods.
func (bt benchTree) generate(tb testing.TB, root string) []string {
	tb.Helper()
	mkp := func(dir, procs string, populated bool) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(procs), 0o644); err != nil {
			tb.Fatal(err)
		}
		events := "populated 0\nfrozen 0\n"
		if populated {
			events = "populated 1\nfrozen 0\n"
		}
		if bt.events {
			if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte(events), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
		for _, f := range benchFiles[:bt.files] {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	mk := func(dir, procs string) { mkp(dir, procs, procs != "") }
	mk(root, "1\n")
	if err := os.WriteFile(filepath.Join(root, "cgroup.stat"), []byte("nr_descendants 0\nnr_dying_descendants 321\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	mk(filepath.Join(root, "system.slice"), "2\n")
	mk(filepath.Join(root, "kubepods.slice"), "")
	qos := []string{qosGuaranteed, qosBurstable, qosBestEffort}
	for _, q := range qos[1:] {
		mk(filepath.Join(root, "kubepods.slice", qosDirName(DriverSystemd, q)), "")
	}
	var bound []string
	for i := range bt.pods {
		u := uid(i)
		q := qos[i%3]
		pod := filepath.Join(root, podRel(DriverSystemd, q, u))
		busy := i < bt.bound || (i-bt.bound)%2 == 1
		mkp(pod, "", busy)
		if i < bt.bound {
			bound = append(bound, u)
		}
		for c := range bt.containers {
			procs := ""
			if busy && c == bt.containers-1 {
				procs = fmt.Sprintf("%d\n", 1000+i)
			}
			mk(filepath.Join(pod, fmt.Sprintf("cri-containerd-%064x.scope", i*bt.containers+c)), procs)
		}
	}
	return bound
}

// BenchmarkScan scans a generated 20,000-cgroup v2 node: 3,999 pods of five
// cgroups each (the pod and four containers), 100 of them bound and
// running, and of the others half orphans and half running a process in
// their last container. Each cgroup holds cgroup.procs and nine other
// interface files. The tree is generated once and scanned three ways:
//
//   - v2: as a kernel's tree is, with nr_descendants in the root's
//     cgroup.stat and cgroup.events in every cgroup;
//   - v2-dircount: without nr_descendants, so the directories are counted;
//   - walk: without cgroup.events either, so cgroup.procs is read down every
//     unbound pod, as on cgroup v1.
func BenchmarkScan(b *testing.B) {
	bt := benchTree{pods: 3999, containers: 4, bound: 100, files: 9, events: true}
	root := filepath.Join(b.TempDir(), "cgroup")
	start := time.Now()
	bound := bt.generate(b, root)
	b.Logf("generated %d cgroups in %s", bt.cgroups(), time.Since(start).Round(time.Millisecond))
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write(filepath.Join(root, "cgroup.stat"), fmt.Sprintf("nr_descendants %d\nnr_dying_descendants 321\n", bt.cgroups()-1))
	b.Run("v2", func(b *testing.B) { benchScan(b, bt, root, bound) })
	write(filepath.Join(root, "cgroup.stat"), "nr_dying_descendants 321\n")
	b.Run("v2-dircount", func(b *testing.B) { benchScan(b, bt, root, bound) })
	events, err := filepath.Glob(filepath.Join(root, "kubepods.slice", "*", "*", "cgroup.events"))
	if err != nil || len(events) < bt.pods*2/3 {
		b.Fatalf("glob cgroup.events: %d files, %v", len(events), err)
	}
	for _, e := range events {
		if err := os.Remove(e); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("walk", func(b *testing.B) { benchScan(b, bt, root, bound) })
}

func benchScan(b *testing.B, bt benchTree, root string, bound []string) {
	r := timeScans(b, Options{CgroupRoot: root}, bound, nil)
	if got := r.Cgroups[UnifiedController]; got != bt.cgroups() {
		b.Fatalf("Scan() counted %d cgroups, want %d", got, bt.cgroups())
	}
	if len(r.Orphans) != bt.orphans() || r.Dying != 321 {
		b.Fatalf("Scan() = %d orphans, %d dying; want %d, 321", len(r.Orphans), r.Dying, bt.orphans())
	}
	b.ReportMetric(float64(bt.cgroups()), "cgroups")
}

// BenchmarkScanV1 scans the same 20,000-cgroup node on cgroup v1: the pod
// tree in the memory hierarchy (without cgroup.events, which v1 lacks), each
// pod's pids.current in the pids hierarchy, and /proc/cgroups for the counts.
func BenchmarkScanV1(b *testing.B) {
	bt := benchTree{pods: 3999, containers: 4, bound: 100, files: 9}
	dir := b.TempDir()
	root, proc := filepath.Join(dir, "cgroup"), filepath.Join(dir, "proc")
	bound := bt.generate(b, filepath.Join(root, "memory"))
	qos := []string{qosGuaranteed, qosBurstable, qosBestEffort}
	for i := range bt.pods {
		pids := filepath.Join(root, "pids", podRel(DriverSystemd, qos[i%3], uid(i)))
		if err := os.MkdirAll(pids, 0o755); err != nil {
			b.Fatal(err)
		}
		n := 0
		if i < bt.bound || (i-bt.bound)%2 == 1 {
			n = 1
		}
		if err := os.WriteFile(filepath.Join(pids, "pids.current"), []byte(fmt.Sprintf("%d\n", n)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(proc, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "cgroups"), []byte(procCgroupsV1), 0o644); err != nil {
		b.Fatal(err)
	}
	r := timeScans(b, Options{CgroupRoot: root, ProcRoot: proc}, bound, func(l Layout) {
		if l.Version != V1 || l.Pids == "" {
			b.Fatalf("layout %+v, want v1 with a pids hierarchy", l)
		}
	})
	if len(r.Orphans) != bt.orphans() || r.Cgroups["memory"] != 1480 {
		b.Fatalf("Scan() = %d orphans, %d memory cgroups; want %d, 1480", len(r.Orphans), r.Cgroups["memory"], bt.orphans())
	}
	b.ReportMetric(float64(bt.cgroups()), "cgroups")
}

// timeScans builds a scanner over the tree, scans it once, moves past the
// grace period, then times b.N scans and returns the last result, failing on
// its error. checkLayout, when set, vets the detected layout first.
func timeScans(b *testing.B, opts Options, bound []string, checkLayout func(Layout)) Result {
	clock := newFakeClock()
	opts.Now = clock.Now
	opts.Logger = slog.New(slog.DiscardHandler)
	s, err := NewScanner(opts, newFakePods(bound...))
	if err != nil {
		b.Fatal(err)
	}
	if checkLayout != nil {
		checkLayout(s.Layout())
	}
	s.Scan()
	clock.Advance(time.Hour) // every orphan is past its grace period
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	var r Result
	for b.Loop() {
		r = s.Scan()
	}
	b.StopTimer()
	if r.Err != nil {
		b.Fatalf("Scan() error: %v", r.Err)
	}
	return r
}
