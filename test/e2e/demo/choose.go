package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// labEnv is the environment variable that chooses the demo's lab, as the
// --lab flag does (the flag wins).
const labEnv = "LEAKGUARD_DEMO_LAB"

// The values of --lab and LEAKGUARD_DEMO_LAB.
const (
	// labAuto runs the real node where the host can, the synthetic lab
	// otherwise (the default, also spelled "").
	labAuto = "auto"
	// labSynthetic runs the synthetic lab without looking at the host.
	labSynthetic = "synthetic"
	// labNode runs the real node, and fails, saying why, where the host
	// cannot.
	labNode = "node"
)

// labMode returns the mode the flag (when set) or the environment asks
// for, and where it came from ("--lab=node", "LEAKGUARD_DEMO_LAB=node";
// "" for the default); an unknown value is an error that names the valid
// ones.
func labMode(flagValue string, flagSet bool, env string) (mode, source string, err error) {
	mode, source = env, labEnv+"="+env
	if flagSet {
		mode, source = flagValue, "--lab="+flagValue
	}
	switch mode {
	case "", labAuto:
		return labAuto, "", nil
	case labSynthetic, labNode:
		return mode, source, nil
	}
	return "", "", fmt.Errorf("%s: want %s, %s or %s", source, labAuto, labSynthetic, labNode)
}

// hostProbe is what the lab choice asks of the host; realProbe asks the
// real one, the tests a fake.
type hostProbe interface {
	// Host is nil where the host itself can run the real node once its
	// binaries are built and its packages installed
	// (lab.CheckNodeHostOnly), else the reasons it cannot.
	Host() error
	// MissingBinaries names the binaries hack/node-binaries.sh would
	// build first (kube-apiserver and etcd among them when
	// hack/e2e-binaries.sh has not built them).
	MissingBinaries() []string
	// MissingPackages names the Debian packages of the node's commands
	// (containerd, runc) that are not installed.
	MissingPackages() []string
	// CanInstall says whether the demo can install packages (apt-get in
	// PATH; Host has checked that it runs as root).
	CanInstall() bool
}

// labChoice is the lab the demo runs, and what it does first.
type labChoice struct {
	// Node runs the real node; false, the synthetic lab.
	Node bool
	// Why is the reason for the choice: the host's verdict or the
	// setting that asked for it.
	Why string
	// Build are the binaries hack/node-binaries.sh builds first; Install
	// the Debian packages apt-get installs first (Node only).
	Build, Install []string
}

// chooseLab decides which lab the demo runs: with mode synthetic the
// synthetic lab; otherwise the real node where the host can run it,
// building its binaries and installing containerd and runc first where
// they are missing. Where it cannot, mode auto falls back to the synthetic
// lab, saying why, and mode node is an error that says why: asked for the
// real node, the demo does not quietly show something else.
func chooseLab(mode, source string, p hostProbe) (labChoice, error) {
	if mode == labSynthetic {
		return labChoice{Why: "as " + source + " asks; the host was not probed for the real node"}, nil
	}
	why := []string{}
	if err := p.Host(); err != nil {
		why = append(why, reasons(err)...)
	}
	install := p.MissingPackages()
	if len(install) > 0 && !p.CanInstall() {
		why = append(why, fmt.Sprintf("no %s installed, and no apt-get to install them", strings.Join(install, ", ")))
	}
	if len(why) > 0 {
		if mode == labNode {
			return labChoice{}, fmt.Errorf("%s, but this host cannot run the lab's real node: %s", source, strings.Join(why, "; "))
		}
		return labChoice{Why: "this host cannot run the real node: " + strings.Join(why, "; ")}, nil
	}
	c := labChoice{Node: true, Build: p.MissingBinaries(), Install: install}
	if mode == labNode {
		c.Why = "as " + source + " asks"
	} else {
		c.Why = "this host can run it"
	}
	return c, nil
}

// reasons splits a host check's error into its reasons, without the
// ErrNodeUnsupported prefix that every one of them shares.
func reasons(err error) []string {
	text := strings.TrimPrefix(err.Error(), lab.ErrNodeUnsupported.Error()+": ")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// headline is the demo's very first line: which lab, and why.
func (c labChoice) headline() string {
	if c.Node {
		return fmt.Sprintf("Lab: the real node (kubelet, containerd and runc, kube-controller-manager, kube-scheduler and kube-state-metrics on 127.0.0.1), %s (%s=%s for the synthetic lab)", c.Why, labEnv, labSynthetic)
	}
	return fmt.Sprintf("Lab: synthetic (a synthetic metrics endpoint for pods no kubelet runs), %s (%s=%s to insist on the real node)", c.Why, labEnv, labNode)
}

// preparation are the lines after the headline that say what the real
// node's first run installs and builds, and about how long it takes.
func (c labChoice) preparation() []string {
	var lines []string
	if len(c.Install) > 0 {
		lines = append(lines, fmt.Sprintf("  first: apt-get install %s (a minute or so)", strings.Join(c.Install, " ")))
	}
	if len(c.Build) > 0 {
		lines = append(lines, fmt.Sprintf("  first: hack/node-binaries.sh builds %s from source, once: about 8 minutes on 2 cores with kube-apiserver's caches warm, 6 more when kube-apiserver is built too, up to 20 on a busy machine; then cached in ~/.cache/leakguard/bin",
			strings.Join(c.Build, ", ")))
	}
	return lines
}

// realProbe asks this host (lab.CheckNodeHostOnly and friends) about the
// binaries in the directory of repoRoot's cache.
type realProbe struct{ repoRoot string }

func (p realProbe) Host() error { return lab.CheckNodeHostOnly() }

func (p realProbe) MissingBinaries() []string {
	apiserver := []string{"kube-apiserver", "etcd"}
	// FindBinaries names the cache's directory even where it lacks
	// them; "" where it cannot tell.
	dir, _ := lab.FindBinaries(p.repoRoot)
	if dir == "" {
		return append(apiserver, lab.NodeBinaries...)
	}
	var missing []string
	for _, bin := range apiserver {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			missing = append(missing, bin)
		}
	}
	return append(missing, lab.MissingNodeBinaries(dir)...)
}

func (p realProbe) MissingPackages() []string {
	return packagesOf(lab.MissingNodeCommands())
}

func (p realProbe) CanInstall() bool {
	_, err := exec.LookPath("apt-get")
	return err == nil
}

// packagesOf returns the Debian packages of the node's commands, each
// once, in lab.NodeCommandPackages' order.
func packagesOf(commands []string) []string {
	var pkgs []string
	for _, c := range lab.NodeCommandPackages {
		for _, missing := range commands {
			if missing == c.Command && !slices.Contains(pkgs, c.Package) {
				pkgs = append(pkgs, c.Package)
			}
		}
	}
	return pkgs
}
