package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// parseProcCgroups parses the contents of /proc/cgroups:
//
//	#subsys_name	hierarchy	num_cgroups	enabled
//	memory	4	93	1
//
// and returns num_cgroups for every enabled controller. A line that does not
// have four fields with numbers where numbers belong is an error that names
// the line; nothing is returned then.
func parseProcCgroups(data []byte) (map[string]int, error) {
	counts := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 4 {
			return nil, fmt.Errorf("line %d %q: want 4 fields (subsys_name hierarchy num_cgroups enabled), got %d", line, text, len(f))
		}
		num, err := strconv.Atoi(f[2])
		if err != nil || num < 0 {
			return nil, fmt.Errorf("line %d %q: num_cgroups %q is not a count", line, text, f[2])
		}
		enabled, err := strconv.Atoi(f[3])
		if err != nil {
			return nil, fmt.Errorf("line %d %q: enabled %q is not a number", line, text, f[3])
		}
		if enabled == 0 {
			continue
		}
		counts[f[0]] = num
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("no enabled controller listed")
	}
	return counts, nil
}

// readProcCgroups reads and parses <procRoot>/cgroups.
func readProcCgroups(procRoot string) (map[string]int, error) {
	path := procRoot + "/cgroups"
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	counts, err := parseProcCgroups(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return counts, nil
}

// parseStatField returns the value of one key of a flat-keyed cgroup v2 file
// such as cgroup.stat ("nr_descendants 12\nnr_dying_descendants 3\n").
func parseStatField(data []byte, key string) (int, error) {
	for len(data) > 0 {
		var l []byte
		l, data, _ = bytes.Cut(data, []byte{'\n'})
		k, v, ok := bytes.Cut(bytes.TrimSpace(l), []byte{' '})
		if !ok || string(k) != key {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s %q is not a count", key, v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("no %s line", key)
}

// rootStat is what the scanner reads from the v2 root's cgroup.stat.
type rootStat struct {
	descendants    int
	hasDescendants bool
	dying          int
}

// readRootStat reads nr_descendants (the kernel's count of the live, visible
// cgroups below the root: one per directory) and nr_dying_descendants from
// the cgroup.stat of the v2 root. A missing nr_descendants is not an error;
// the caller counts directories instead.
func readRootStat(root string) (rootStat, error) {
	path := root + "/cgroup.stat"
	data, err := os.ReadFile(path)
	if err != nil {
		return rootStat{}, fmt.Errorf("read %s: %w", path, err)
	}
	var st rootStat
	st.dying, err = parseStatField(data, "nr_dying_descendants")
	if err != nil {
		return rootStat{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if n, err := parseStatField(data, "nr_descendants"); err == nil {
		st.descendants, st.hasDescendants = n, true
	}
	return st, nil
}
