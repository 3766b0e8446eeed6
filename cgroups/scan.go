package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultGracePeriod is how long a cgroup must stay orphaned, seen on two
// scans at least this far apart, before it counts: long enough for the
// kubelet to finish tearing a deleted pod down.
const DefaultGracePeriod = 2 * time.Minute

// UnifiedController is the controller label of the v2 cgroup count.
const UnifiedController = "unified"

// ErrPodsNotSynced is the scan error while the PodSource has no complete
// view of the node's pods; no cgroup is judged an orphan then.
var ErrPodsNotSynced = errors.New("pods bound to the node not synced yet: orphans not judged")

// Options configures a Scanner. Zero values take the defaults noted.
type Options struct {
	// CgroupRoot is where the node's cgroup tree is mounted; it must exist.
	CgroupRoot string
	// ProcRoot is where the node's /proc is; /proc when empty. Only
	// <ProcRoot>/cgroups is read, on cgroup v1.
	ProcRoot string
	// GracePeriod is DefaultGracePeriod when zero.
	GracePeriod time.Duration
	// RemoveEmptyOrphans removes the counted orphans with rmdir: on v2 the
	// pod's one cgroup tree; on v1 its tree in every controller hierarchy
	// under CgroupRoot where it exists, only while none of them holds a
	// process.
	RemoveEmptyOrphans bool
	// Now is time.Now when nil.
	Now func() time.Time
	// Logger is slog.Default() when nil.
	Logger *slog.Logger
	// Rmdir is syscall.Rmdir when nil; tests replace it.
	Rmdir func(path string) error
}

// Orphan is one counted orphan cgroup.
type Orphan struct {
	// Path is the cgroup's path relative to the cgroup root.
	Path string `json:"path"`
	// PodUID is the pod UID (or static pod config hash) in dashed form.
	PodUID string `json:"podUID"`
	// QoS is guaranteed, burstable or besteffort.
	QoS string `json:"qos"`
	// FirstSeen is the scan at which it was first seen orphaned.
	FirstSeen time.Time `json:"firstSeen"`
}

// Result is what one scan found. A part that could not be measured is
// marked unknown rather than reported as zero; the errors are in Err.
type Result struct {
	// Version and Driver describe the tree; Driver is empty when no
	// kubepods cgroup was found.
	Version Version
	Driver  Driver
	// Orphans are the counted orphans (seen past the grace period), sorted
	// by path, without those removed by this scan.
	Orphans []Orphan
	// OrphansKnown is false when orphans could not be judged at all.
	OrphansKnown bool
	// Pending counts the cgroups seen orphaned but still within the grace
	// period.
	Pending int
	// Cgroups is the number of live cgroups per controller; nil when
	// unknown.
	Cgroups map[string]int
	// Dying counts removed cgroups the kernel has not freed yet: on v2
	// nr_dying_descendants of the root; on v1 the memory controller's
	// num_cgroups (live and dying) minus its live directories. DyingKnown
	// is false when it could not be measured: cgroup.stat or /proc/cgroups
	// unreadable, no memory hierarchy on v1, or a v1 count that kept
	// changing while the hierarchy was walked.
	Dying      int
	DyingKnown bool
	// Removed counts the cgroup directories removed by this scan.
	Removed int
	// Start and Duration time the scan.
	Start    time.Time
	Duration time.Duration
	// Err joins every error of the scan; nil when it read everything.
	Err error
}

// seenEntry is the scanner's memory of a cgroup seen orphaned.
type seenEntry struct {
	uid   string
	qos   string
	first time.Time
}

// Scanner scans one node's cgroup tree. It remembers, between scans, when
// each orphan was first seen; it is not safe for concurrent use.
type Scanner struct {
	opts   Options
	layout Layout
	pods   PodSource
	log    *slog.Logger
	seen   map[string]seenEntry
	procs  procsChecker
	// readProc reads <ProcRoot>/cgroups: readProcCgroups, or a sequence
	// of answers in the tests of counts that change during a walk.
	readProc func(procRoot string) (map[string]int, error)
}

// NewScanner detects the cgroup layout under opts.CgroupRoot and returns a
// scanner for it. A missing root, a root that is not a cgroup mount, or
// RemoveEmptyOrphans on cgroup v1 is an error.
func NewScanner(opts Options, pods PodSource) (*Scanner, error) {
	if pods == nil {
		return nil, errors.New("new scanner: nil pod source")
	}
	if opts.GracePeriod < 0 {
		return nil, fmt.Errorf("new scanner: negative grace period %s", opts.GracePeriod)
	}
	if opts.GracePeriod == 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rmdir == nil {
		opts.Rmdir = syscall.Rmdir
	}
	layout, err := DetectLayout(opts.CgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("new scanner: %w", err)
	}
	if opts.RemoveEmptyOrphans {
		// On v1 the hierarchies are mounts of their own below the root
		// (which is often a read-only tmpfs): the one orphans are found in
		// must be writable, or no orphan could ever be removed.
		dir := layout.Root
		if layout.Version == V1 {
			dir = layout.Hierarchy
		}
		if ro, err := readOnlyMount(dir); err != nil {
			return nil, fmt.Errorf("new scanner: %w", err)
		} else if ro {
			return nil, fmt.Errorf("new scanner: removing orphans needs %q mounted read-write, it is read-only", dir)
		}
	}
	return &Scanner{
		opts:     opts,
		layout:   layout,
		pods:     pods,
		log:      opts.Logger.With("cgroup_root", opts.CgroupRoot, "cgroup_version", layout.Version.String()),
		seen:     make(map[string]seenEntry),
		readProc: readProcCgroups,
	}, nil
}

// Layout returns the layout detected at construction.
func (s *Scanner) Layout() Layout { return s.layout }

// Scan reads the tree once: live cgroup counts, dying cgroups and orphans,
// removing counted orphans when asked to.
func (s *Scanner) Scan() Result {
	start := s.opts.Now()
	r := Result{Version: s.layout.Version, Start: start}
	var errs []error

	switch s.layout.Version {
	case V2:
		st, err := readRootStat(s.layout.Root)
		if err != nil {
			errs = append(errs, fmt.Errorf("dying cgroups: %w", err))
		} else {
			r.Dying, r.DyingKnown = st.dying, true
		}
		if st.hasDescendants {
			// Every live cgroup below the root is one directory: the
			// kernel's count is the directory count, without a walk.
			r.Cgroups = map[string]int{UnifiedController: st.descendants + 1}
		} else if n, err := countDirs(s.layout.Root); err != nil {
			// A partial count would look like cgroups being freed.
			errs = append(errs, fmt.Errorf("count cgroups: %w", err))
		} else {
			r.Cgroups = map[string]int{UnifiedController: n}
		}
	case V1:
		if c, err := s.readProc(s.opts.ProcRoot); err != nil {
			errs = append(errs, fmt.Errorf("count cgroups: %w", err))
		} else {
			r.Cgroups = c
			if err := s.dyingV1(&r); err != nil {
				errs = append(errs, fmt.Errorf("dying cgroups: %w", err))
			}
		}
	}

	if err := s.scanOrphans(&r, start); err != nil {
		errs = append(errs, err)
	}
	r.Err = errors.Join(errs...)
	r.Duration = s.opts.Now().Sub(start)
	return r
}

// dyingV1Attempts bounds the walks of the memory hierarchy in one scan while
// the kernel's count keeps changing under them.
const dyingV1Attempts = 3

// dyingV1 measures the dying memory cgroups of a v1 node. The memory
// controller's num_cgroups in /proc/cgroups counts every memory cgroup the
// kernel has not freed, live or dying (removed, but still pinned by charged
// page cache or kernel memory); every live one is a directory of the memory
// hierarchy. So dying = num_cgroups - directories, with num_cgroups read
// before and after the walk: when the two reads differ, cgroups were made
// or freed during the walk and the difference would be off by them, so the
// walk is repeated, at most dyingV1Attempts times, after which the count is
// left unknown for this scan rather than reported wrong. r.Cgroups holds
// the first read; it is replaced by the last. The hierarchy must be the
// host's whole memory hierarchy (not a cgroup namespace's view of it), or
// the live cgroups outside the view would count as dying.
func (s *Scanner) dyingV1(r *Result) error {
	if s.layout.Controller != "memory" {
		// No memory hierarchy under the root (DetectLayout prefers it):
		// nothing to walk, and no memory cgroup to leak.
		return nil
	}
	before, ok := r.Cgroups["memory"]
	if !ok {
		// The memory controller is disabled (cgroup_disable=memory).
		return nil
	}
	for attempt := 1; attempt <= dyingV1Attempts; attempt++ {
		live, err := countDirs(s.layout.Hierarchy)
		if err != nil {
			// A partial count would make live cgroups look dying.
			return fmt.Errorf("count memory cgroups: %w", err)
		}
		c, err := s.readProc(s.opts.ProcRoot)
		if err != nil {
			return err
		}
		r.Cgroups = c
		after, ok := c["memory"]
		if !ok {
			return fmt.Errorf("memory controller gone from %s/cgroups during the scan", s.opts.ProcRoot)
		}
		if after == before {
			// Clamped: more directories than the kernel counts cannot be
			// dying cgroups, only a tree that is not the memory
			// hierarchy's.
			r.Dying, r.DyingKnown = max(0, after-live), true
			return nil
		}
		before = after
	}
	// Not an error: a node starting and stopping many containers at once.
	// The gauge is left out for this scan rather than set to a count that
	// is off by the cgroups made or freed during the walks.
	s.log.Debug("dying memory cgroups not counted: num_cgroups changed during every walk", "attempts", dyingV1Attempts)
	return nil
}

// scanOrphans lists the pod cgroups of every QoS class, keeps those whose
// UID is not bound to the node and that hold no process, and counts those
// seen so for at least the grace period.
func (s *Scanner) scanOrphans(r *Result, now time.Time) error {
	kp, driver, err := kubepodsDir(s.layout.Hierarchy)
	if err != nil {
		return fmt.Errorf("orphans: %w", err)
	}
	r.Driver = driver
	if !s.pods.Synced() {
		// Fail closed: without the node's pods every cgroup would look
		// orphaned. What was seen so far is kept for the next scan.
		return fmt.Errorf("orphans: %w", ErrPodsNotSynced)
	}
	var errs []error
	next := make(map[string]seenEntry, len(s.seen))
	var names []string
	for _, qos := range []string{qosGuaranteed, qosBurstable, qosBestEffort} {
		dir := kp
		if qos != qosGuaranteed {
			dir = filepath.Join(kp, qosDirName(driver, qos))
		}
		names, err = subdirs(dir, names[:0])
		if err != nil {
			if qos != qosGuaranteed && errors.Is(err, fs.ErrNotExist) {
				continue // no pod of this class has been started yet
			}
			// The orphans of this class are unknown; their timers restart,
			// which can only delay counting them.
			errs = append(errs, fmt.Errorf("orphans: list %s: %w", dir, err))
			continue
		}
		for _, name := range names {
			uid, ok := parsePodDir(driver, qos, name)
			if !ok || s.pods.Bound(uid) {
				continue
			}
			path := filepath.Join(dir, name)
			busy, err := s.busy(path)
			if errors.Is(err, errVanished) {
				continue
			}
			if err != nil {
				// Fail closed: a cgroup whose processes cannot be read is
				// not called an orphan.
				errs = append(errs, fmt.Errorf("orphans: %w", err))
				continue
			}
			if busy {
				continue
			}
			e, ok := s.seen[path]
			if !ok || e.uid != uid {
				e = seenEntry{uid: uid, qos: qos, first: now}
			}
			next[path] = e
			if now.Sub(e.first) < s.opts.GracePeriod {
				r.Pending++
				continue
			}
			rel, err := filepath.Rel(s.layout.Root, path)
			if err != nil {
				rel = path
			}
			r.Orphans = append(r.Orphans, Orphan{Path: "/" + filepath.ToSlash(rel), PodUID: uid, QoS: qos, FirstSeen: e.first})
		}
	}
	s.seen = next
	r.OrphansKnown = true
	slices.SortFunc(r.Orphans, func(a, b Orphan) int { return strings.Compare(a.Path, b.Path) })
	if s.opts.RemoveEmptyOrphans && len(r.Orphans) > 0 {
		if s.layout.Version == V1 {
			s.removeV1(r)
		} else {
			s.remove(r)
		}
	}
	return errors.Join(errs...)
}

// busy reports whether a pod cgroup holds a process anywhere below it: on
// v2 from cgroup.events, on v1 from pids.current of the same cgroup in the
// pids hierarchy; without those files, by reading cgroup.procs down the tree
// until a process is found. The first two are counted by the kernel across
// PID namespaces; cgroup.procs on v1 lists only the processes of the
// reader's PID namespace (see docs/agent.md).
func (s *Scanner) busy(path string) (bool, error) {
	var (
		busy, ok bool
		err      error
	)
	switch {
	case s.layout.Version == V2:
		busy, ok, err = s.procs.populated(path)
	case s.layout.Pids != "":
		rel, rerr := filepath.Rel(s.layout.Hierarchy, path)
		if rerr != nil {
			return false, fmt.Errorf("pids cgroup of %s: %w", path, rerr)
		}
		busy, ok, err = s.procs.pidsCurrent(filepath.Join(s.layout.Pids, rel))
	}
	if err != nil {
		return false, err
	}
	if ok {
		return busy, nil
	}
	return s.procs.busy(path, 0)
}

// remove removes the counted orphans, deepest cgroup first. A refusal (the
// kernel's EBUSY when a process or child appeared) is logged and leaves the
// orphan counted; it is not a scan error.
func (s *Scanner) remove(r *Result) {
	s.removeEach(r, func(o Orphan) (int, error) {
		return removeTree(filepath.Join(s.layout.Root, filepath.FromSlash(o.Path)), s.opts.Rmdir, 0)
	})
}

// removeV1 removes the counted orphans of a v1 node. A pod has a cgroup in
// every controller hierarchy the kubelet and the runtime use (memory, cpu,
// pids, blkio, name=systemd, ...), each a tree of its own: the orphan's
// tree is removed, deepest cgroup first, from every hierarchy under the
// root where it exists, and only when none of them holds a process. The
// hierarchy orphans are found in goes last, so that an orphan whose removal
// stops half way is still found, counted and tried again on the next scan.
// A refusal (a process found, the kernel's EBUSY) is logged and leaves the
// orphan counted; it is not a scan error.
func (s *Scanner) removeV1(r *Result) {
	hierarchies, err := subdirs(s.layout.Root, nil)
	if err != nil {
		// Fail closed: without the list of hierarchies the orphan would be
		// removed from some of them only.
		s.log.Warn("orphan cgroups not removed: cannot list the cgroup hierarchies", "count", len(r.Orphans), "err", err)
		return
	}
	slices.Sort(hierarchies)
	s.removeEach(r, func(o Orphan) (int, error) { return s.removeV1Orphan(o, hierarchies) })
}

// removeEach removes each counted orphan with rm, which returns how many
// directories it removed: a removed orphan is logged and forgotten, one
// that rm refused stays counted, with one warning per scan, not one per
// orphan, so that a node with thousands of them does not flood the log.
func (s *Scanner) removeEach(r *Result, rm func(Orphan) (int, error)) {
	kept := r.Orphans[:0]
	var refused int
	var firstErr error
	for _, o := range r.Orphans {
		n, err := rm(o)
		r.Removed += n
		if err != nil {
			s.log.Debug("orphan cgroup not removed", "path", o.Path, "pod_uid", o.PodUID, "removed", n, "err", err)
			refused++
			if firstErr == nil {
				firstErr = err
			}
			kept = append(kept, o)
			continue
		}
		s.log.Info("removed orphan cgroup", "path", o.Path, "pod_uid", o.PodUID, "first_seen", o.FirstSeen, "directories", n)
		delete(s.seen, filepath.Join(s.layout.Root, filepath.FromSlash(o.Path)))
	}
	if refused > 0 {
		s.log.Warn("orphan cgroups not removed", "count", refused, "first_err", firstErr)
	}
	r.Orphans = kept
}

// removeV1Orphan removes one orphan from every hierarchy, the one it was
// found in last, and returns how many directories it removed.
func (s *Scanner) removeV1Orphan(o Orphan, hierarchies []string) (int, error) {
	found := filepath.Join(s.layout.Root, filepath.FromSlash(o.Path))
	rel, err := filepath.Rel(s.layout.Hierarchy, found)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return 0, fmt.Errorf("orphan %s is not below %s", o.Path, s.layout.Hierarchy)
	}
	var dirs []string
	for _, h := range hierarchies {
		dir := filepath.Join(s.layout.Root, h, rel)
		if dir == found {
			continue
		}
		if _, err := os.Lstat(dir); err == nil {
			dirs = append(dirs, dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("stat %s: %w", dir, err)
		}
	}
	dirs = append(dirs, found)
	// Every hierarchy is read before anything is removed: a process in
	// one of them (moved there after the scan, or in a hierarchy the scan
	// did not read) keeps the pod's cgroups in all of them.
	if s.layout.Pids != "" {
		busy, ok, err := s.procs.pidsCurrent(filepath.Join(s.layout.Pids, rel))
		if err != nil {
			return 0, err
		}
		if ok && busy {
			return 0, fmt.Errorf("%s holds a task (pids.current): %w", filepath.Join(s.layout.Pids, rel), syscall.EBUSY)
		}
	}
	for _, dir := range dirs {
		busy, err := s.procs.busy(dir, 0)
		if err != nil {
			return 0, err
		}
		if busy {
			return 0, fmt.Errorf("%s holds a process: %w", dir, syscall.EBUSY)
		}
	}
	removed := 0
	for _, dir := range dirs {
		n, err := removeTree(dir, s.rmdirIfEmpty, 0)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// rmdirIfEmpty reads the cgroup's cgroup.procs once more right before the
// rmdir and refuses when it lists a process: one may have joined since
// every hierarchy was read. The kernel refuses to remove a v1 cgroup that
// holds a task as well; the check here names the cgroup, and keeps the
// refusal the same where the kernel does not make it (a fixture tree).
func (s *Scanner) rmdirIfEmpty(dir string) error {
	busy, err := s.procs.readProcs(dir)
	if err != nil {
		return err
	}
	if busy {
		return fmt.Errorf("%s holds a process: %w", dir, syscall.EBUSY)
	}
	return s.opts.Rmdir(dir)
}
