package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// fakeProbe is a host as the lab choice sees it; calls counts the
// questions asked.
type fakeProbe struct {
	host       error
	binaries   []string
	packages   []string
	canInstall bool
	calls      *int
}

func (p fakeProbe) count() {
	if p.calls != nil {
		*p.calls++
	}
}

func (p fakeProbe) Host() error               { p.count(); return p.host }
func (p fakeProbe) MissingBinaries() []string { p.count(); return p.binaries }
func (p fakeProbe) MissingPackages() []string { p.count(); return p.packages }
func (p fakeProbe) CanInstall() bool          { p.count(); return p.canInstall }

// unfit is a host check's error as lab.CheckNodeHostOnly makes it: every
// reason, joined, under ErrNodeUnsupported.
func unfit(reasons ...string) error {
	var errs []error
	for _, r := range reasons {
		errs = append(errs, errors.New(r))
	}
	return fmt.Errorf("%w: %w", lab.ErrNodeUnsupported, errors.Join(errs...))
}

func TestLabMode(t *testing.T) {
	for _, tc := range []struct {
		name             string
		flag             string
		flagSet          bool
		env              string
		wantMode, wantBy string
		wantErr          string
	}{
		{name: "default", wantMode: labAuto},
		{name: "env auto", env: "auto", wantMode: labAuto},
		{name: "env synthetic", env: "synthetic", wantMode: labSynthetic, wantBy: "LEAKGUARD_DEMO_LAB=synthetic"},
		{name: "env node", env: "node", wantMode: labNode, wantBy: "LEAKGUARD_DEMO_LAB=node"},
		{name: "flag wins over env", flag: "node", flagSet: true, env: "synthetic", wantMode: labNode, wantBy: "--lab=node"},
		{name: "flag auto wins over env", flag: "auto", flagSet: true, env: "node", wantMode: labAuto},
		{name: "flag set empty is auto", flag: "", flagSet: true, env: "node", wantMode: labAuto},
		{name: "unknown env", env: "real", wantErr: "LEAKGUARD_DEMO_LAB=real: want auto, synthetic or node"},
		{name: "unknown flag", flag: "Node", flagSet: true, wantErr: "--lab=Node: want auto, synthetic or node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode, by, err := labMode(tc.flag, tc.flagSet, tc.env)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("labMode = %q, %q, %v; want the error %q", mode, by, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mode != tc.wantMode || by != tc.wantBy {
				t.Errorf("labMode = %q, %q; want %q, %q", mode, by, tc.wantMode, tc.wantBy)
			}
		})
	}
}

func TestChooseLab(t *testing.T) {
	for _, tc := range []struct {
		name         string
		mode, source string
		probe        fakeProbe
		want         labChoice
		wantErr      string
		// wantHeadline is the demo's first line; wantPrep what
		// follows it.
		wantHeadline string
		wantPrep     []string
	}{
		{
			name: "auto on a fit host with everything built", mode: labAuto,
			probe:        fakeProbe{},
			want:         labChoice{Node: true, Why: "this host can run it"},
			wantHeadline: "Lab: the real node (kubelet, containerd and runc, kube-controller-manager, kube-scheduler and kube-state-metrics on 127.0.0.1), this host can run it (LEAKGUARD_DEMO_LAB=synthetic for the synthetic lab)",
		},
		{
			name: "auto on a fit host, binaries to build", mode: labAuto,
			probe:        fakeProbe{binaries: []string{"kubelet", "kube-state-metrics"}},
			want:         labChoice{Node: true, Why: "this host can run it", Build: []string{"kubelet", "kube-state-metrics"}},
			wantHeadline: "Lab: the real node (kubelet, containerd and runc, kube-controller-manager, kube-scheduler and kube-state-metrics on 127.0.0.1), this host can run it (LEAKGUARD_DEMO_LAB=synthetic for the synthetic lab)",
			wantPrep:     []string{"  first: hack/node-binaries.sh builds kubelet, kube-state-metrics from source, once: about 8 minutes on 2 cores with kube-apiserver's caches warm, 6 more when kube-apiserver is built too, up to 20 on a busy machine; then cached in ~/.cache/leakguard/bin"},
		},
		{
			name: "auto on a fit host, packages to install", mode: labAuto,
			probe:    fakeProbe{packages: []string{"containerd", "runc"}, canInstall: true},
			want:     labChoice{Node: true, Why: "this host can run it", Install: []string{"containerd", "runc"}},
			wantPrep: []string{"  first: apt-get install containerd runc (a minute or so)"},
		},
		{
			name: "auto on an unfit host falls back, saying every reason", mode: labAuto,
			probe:        fakeProbe{host: unfit("not root: the kubelet and containerd run as root", "a kubelet is running already (pid [7417])"), binaries: []string{"kubelet"}},
			want:         labChoice{Why: "this host cannot run the real node: not root: the kubelet and containerd run as root; a kubelet is running already (pid [7417])"},
			wantHeadline: "Lab: synthetic (a synthetic metrics endpoint for pods no kubelet runs), this host cannot run the real node: not root: the kubelet and containerd run as root; a kubelet is running already (pid [7417]) (LEAKGUARD_DEMO_LAB=node to insist on the real node)",
		},
		{
			name: "auto without packages and without apt-get falls back", mode: labAuto,
			probe: fakeProbe{packages: []string{"containerd"}},
			want:  labChoice{Why: "this host cannot run the real node: no containerd installed, and no apt-get to install them"},
		},
		{
			name: "node on a fit host", mode: labNode, source: "LEAKGUARD_DEMO_LAB=node",
			probe:        fakeProbe{},
			want:         labChoice{Node: true, Why: "as LEAKGUARD_DEMO_LAB=node asks"},
			wantHeadline: "Lab: the real node (kubelet, containerd and runc, kube-controller-manager, kube-scheduler and kube-state-metrics on 127.0.0.1), as LEAKGUARD_DEMO_LAB=node asks (LEAKGUARD_DEMO_LAB=synthetic for the synthetic lab)",
		},
		{
			name: "node on an unfit host is an error, not the synthetic lab", mode: labNode, source: "--lab=node",
			probe:   fakeProbe{host: unfit("another containerd owns /run/containerd/containerd.sock")},
			wantErr: "--lab=node, but this host cannot run the lab's real node: another containerd owns /run/containerd/containerd.sock",
		},
		{
			name: "synthetic", mode: labSynthetic, source: "LEAKGUARD_DEMO_LAB=synthetic",
			probe:        fakeProbe{},
			want:         labChoice{Why: "as LEAKGUARD_DEMO_LAB=synthetic asks; the host was not probed for the real node"},
			wantHeadline: "Lab: synthetic (a synthetic metrics endpoint for pods no kubelet runs), as LEAKGUARD_DEMO_LAB=synthetic asks; the host was not probed for the real node (LEAKGUARD_DEMO_LAB=node to insist on the real node)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			tc.probe.calls = &calls
			got, err := chooseLab(tc.mode, tc.source, tc.probe)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("chooseLab = %+v, %v; want the error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("chooseLab (-want +got):\n%s", diff)
			}
			if tc.mode == labSynthetic && calls != 0 {
				t.Errorf("the synthetic lab asked for: the host was probed %d times, want none", calls)
			}
			if h := got.headline(); strings.Contains(h, "\n") {
				t.Errorf("the headline spans lines: %q", h)
			} else if tc.wantHeadline != "" && h != tc.wantHeadline {
				t.Errorf("headline:\n got %q\nwant %q", h, tc.wantHeadline)
			}
			if diff := cmp.Diff(tc.wantPrep, got.preparation()); diff != "" {
				t.Errorf("preparation (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunRefusesTheRealNodeWhereTheHostCannot: asked for the real node on
// a host that cannot run it, the demo fails, saying why, before it prints
// or starts anything; an unknown lab fails before the host is probed.
func TestRunRefusesTheRealNodeWhereTheHostCannot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     string
		wantErr string
		probed  bool
	}{
		{"flag", []string{"--lab=node"}, "", "--lab=node, but this host cannot run the lab's real node: not root: the kubelet and containerd run as root", true},
		{"env", nil, "node", "LEAKGUARD_DEMO_LAB=node, but this host cannot run the lab's real node: not root: the kubelet and containerd run as root", true},
		{"unknown lab", nil, "kind", "LEAKGUARD_DEMO_LAB=kind: want auto, synthetic or node", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(labEnv, tc.env)
			calls := 0
			probe := fakeProbe{host: unfit("not root: the kubelet and containerd run as root"), calls: &calls}
			var out, errOut bytes.Buffer
			err := runWith(context.Background(), append(tc.args, "--repo=../../.."), &out, &errOut, func(string) hostProbe { return probe })
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("run = %v, want the error %q", err, tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("run printed %q before failing, want nothing", out.String())
			}
			if (calls > 0) != tc.probed {
				t.Errorf("the host probed %d times, want probed %t", calls, tc.probed)
			}
		})
	}
}

// TestPackagesOf: the Debian packages of the node's missing commands, each
// once.
func TestPackagesOf(t *testing.T) {
	for _, tc := range []struct {
		missing, want []string
	}{
		{nil, nil},
		{[]string{"runc"}, []string{"runc"}},
		{[]string{"ctr", "containerd", "containerd-shim-runc-v2", "runc"}, []string{"containerd", "runc"}},
	} {
		if diff := cmp.Diff(tc.want, packagesOf(tc.missing)); diff != "" {
			t.Errorf("packagesOf(%v) (-want +got):\n%s", tc.missing, diff)
		}
	}
}
