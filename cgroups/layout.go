package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Version is the cgroup version of a node's hierarchy.
type Version int

const (
	// V1 is the legacy hierarchy: one mount per controller (or hybrid mode,
	// where the controllers are still on v1).
	V1 Version = 1
	// V2 is the unified hierarchy.
	V2 Version = 2
)

// String returns "v1" or "v2".
func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	default:
		return fmt.Sprintf("Version(%d)", int(v))
	}
}

// Driver is the kubelet's cgroup driver, which decides how pod cgroups are
// named.
type Driver string

const (
	// DriverSystemd names pod cgroups as systemd slices:
	// kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice,
	// with the dashes of the UID written as underscores.
	DriverSystemd Driver = "systemd"
	// DriverCgroupfs names pod cgroups as plain directories:
	// kubepods/burstable/pod<uid>.
	DriverCgroupfs Driver = "cgroupfs"
)

// v1Hierarchies are the v1 controller hierarchies that orphans are looked
// for in, in order of preference: the memory controller is the one whose ids
// run out.
var v1Hierarchies = []string{"memory", "cpu", "pids"}

// Layout says where a node's cgroups are: the version and the directory of
// the hierarchy that pod cgroups are looked for in. It does not include the
// kubelet's driver, which is detected on every scan because the kubelet may
// create its kubepods cgroup after the agent starts.
type Layout struct {
	// Root is the cgroup root the agent was given (--cgroup-root).
	Root string
	// Version is V1 or V2.
	Version Version
	// Hierarchy is the directory under which kubepods is looked for: Root
	// itself on v2, Root/<controller> on v1.
	Hierarchy string
	// Controller names the v1 hierarchy used ("memory", "cpu" or "pids");
	// empty on v2.
	Controller string
	// Pids is the v1 pids hierarchy (Root/pids), whose pids.current says
	// whether a pod cgroup holds a task whatever PID namespace the agent
	// runs in; empty on v2 or when it is not mounted.
	Pids string
}

// DetectLayout finds the cgroup version under root. A root that holds
// cgroup.controllers is the v2 unified hierarchy; a root that holds a
// memory, cpu or pids directory holds v1 hierarchies (this also covers
// hybrid mode, where the controllers are on v1). A root that does not exist
// or matches neither is an error that says which.
func DetectLayout(root string) (Layout, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return Layout{}, fmt.Errorf("cgroup root %q: %w", root, err)
	}
	if !fi.IsDir() {
		return Layout{}, fmt.Errorf("cgroup root %q: not a directory", root)
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return Layout{Root: root, Version: V2, Hierarchy: root}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Layout{}, fmt.Errorf("cgroup root %q: %w", root, err)
	}
	for _, c := range v1Hierarchies {
		dir := filepath.Join(root, c)
		fi, err := os.Stat(dir)
		if err == nil && fi.IsDir() {
			l := Layout{Root: root, Version: V1, Hierarchy: dir, Controller: c}
			if fi, err := os.Stat(filepath.Join(root, "pids")); err == nil && fi.IsDir() {
				l.Pids = filepath.Join(root, "pids")
			}
			return l, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Layout{}, fmt.Errorf("cgroup root %q: %w", root, err)
		}
	}
	return Layout{}, fmt.Errorf("cgroup root %q: neither a cgroup v2 root (no cgroup.controllers) nor a v1 mount (no %s directory)",
		root, strings.Join(v1Hierarchies, ", "))
}

// kubepodsDir finds the kubelet's top-level pod cgroup under the hierarchy
// and, from its name, the driver.
func kubepodsDir(hierarchy string) (string, Driver, error) {
	for _, c := range []struct {
		name   string
		driver Driver
	}{{"kubepods.slice", DriverSystemd}, {"kubepods", DriverCgroupfs}} {
		dir := filepath.Join(hierarchy, c.name)
		fi, err := os.Stat(dir)
		if err == nil && fi.IsDir() {
			return dir, c.driver, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("find kubepods cgroup: %w", err)
		}
	}
	return "", "", fmt.Errorf("no kubepods cgroup (kubepods.slice or kubepods) under %q: is the kubelet running with cgroups per QoS?", hierarchy)
}

// QoS classes as they appear in pod cgroup paths.
const (
	qosGuaranteed = "guaranteed"
	qosBurstable  = "burstable"
	qosBestEffort = "besteffort"
)

// qosDirName returns the name of a QoS class's directory under kubepods for
// the driver; guaranteed pods have none, they sit directly under kubepods.
func qosDirName(d Driver, qos string) string {
	if d == DriverSystemd {
		return "kubepods-" + qos + ".slice"
	}
	return qos
}

// parsePodDir reports whether name is a pod-level cgroup directory for the
// driver in the QoS class's directory, and returns the pod UID in its dashed
// form. qos is qosGuaranteed for pods directly under kubepods.
func parsePodDir(d Driver, qos, name string) (string, bool) {
	var raw string
	switch d {
	case DriverSystemd:
		prefix := "kubepods-pod"
		if qos != qosGuaranteed {
			prefix = "kubepods-" + qos + "-pod"
		}
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return "", false
		}
		raw, ok = strings.CutSuffix(rest, ".slice")
		if !ok {
			return "", false
		}
		// systemd reserves the dash as a hierarchy separator in unit names,
		// so the kubelet writes the UID's dashes as underscores.
		raw = strings.ReplaceAll(raw, "_", "-")
	case DriverCgroupfs:
		var ok bool
		raw, ok = strings.CutPrefix(name, "pod")
		if !ok {
			return "", false
		}
	default:
		return "", false
	}
	if !validUID(raw) {
		return "", false
	}
	return strings.ToLower(raw), true
}

// validUID accepts what a pod cgroup can be named after: a UUID, or the hex
// config hash the kubelet uses as the UID of a static pod.
func validUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '-':
		default:
			return false
		}
	}
	return true
}

// NormalizeUID returns the form of a pod UID (or a static pod's config hash)
// that the scanner compares: lower case, dashes rather than underscores.
func NormalizeUID(uid string) string {
	return strings.ToLower(strings.ReplaceAll(uid, "_", "-"))
}
