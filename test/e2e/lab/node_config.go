package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// renderContainerdConfig is containerd's configuration for the real node:
// everything it keeps (root, state, the runc state, the opt plugin's
// directory) under dir, except its socket, which must be
// containerdSocket; the CRI plugin with the lab's pause image and the CNI
// network in cniDir.
func renderContainerdConfig(dir, cniDir string) string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	return strings.Join([]string{
		`version = 2`,
		`root = ` + q(filepath.Join(dir, "root")),
		`state = ` + q(filepath.Join(dir, "state")),
		// Snapshotters that need a filesystem or a device of their own
		// only log errors here.
		`disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]`,
		``,
		`[grpc]`,
		`  address = ` + q(containerdSocket),
		``,
		// Its default is /opt/containerd, outside the lab.
		`[plugins."io.containerd.internal.v1.opt"]`,
		`  path = ` + q(filepath.Join(dir, "opt")),
		``,
		`[plugins."io.containerd.grpc.v1.cri"]`,
		// No registry is reachable: the sandbox image is the lab's own,
		// imported before any pod starts.
		`  sandbox_image = ` + q(PauseImage),
		// Without CAP_SYS_RESOURCE (this VM lacks it) runc cannot lower
		// oom_score_adj, and every sandbox fails with "can't get final
		// child's PID from pipe: EOF"; restricted, containerd never asks
		// for a score below its own.
		`  restrict_oom_score_adj = true`,
		`  [plugins."io.containerd.grpc.v1.cri".cni]`,
		`    bin_dir = "/usr/lib/cni"`,
		`    conf_dir = ` + q(cniDir),
		`  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
		`    runtime_type = "io.containerd.runc.v2"`,
		`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
		// The kubelet's cgroupDriver is cgroupfs: there is no systemd.
		`      SystemdCgroup = false`,
		`      Root = ` + q(filepath.Join(dir, "runc")),
		``,
	}, "\n")
}

// kubeletConfigParams fill renderKubeletConfig.
type kubeletConfigParams struct {
	Port, HealthzPort         string
	CAFile, CertFile, KeyFile string
	Socket                    string
	VolumePluginDir           string
}

// renderKubeletConfig is the kubelet's KubeletConfiguration for the real
// node: served on loopback with the lab's certificate, clients
// authenticated by the lab's CA and authorized by the API server (as in a
// kubeadm cluster), cgroupfs on cgroup v1 allowed, no static pods.
func renderKubeletConfig(p kubeletConfigParams) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %s
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
# Kubernetes 1.35 and later refuse cgroup v1 unless told.
failCgroupV1: false
failSwapOn: false
volumePluginDir: %q
# Eviction is not what the lab tests: thresholds that a busy CI disk does
# not cross, so that no DiskPressure taint keeps pods off the node.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
# The lab's images cannot be pulled again once collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, p.Port, p.HealthzPort, p.CertFile, p.KeyFile, p.CAFile, p.Socket, p.VolumePluginDir)
}

// buildImages builds the pause and leaker programs statically and packs
// them with tools/ociimage (its own module: go-containerregistry) as one
// image tarball in dir, which it returns. Go's build cache makes a second
// build take a second or two.
func buildImages(ctx context.Context, repoRoot, dir string) (string, error) {
	if repoRoot == "" {
		return "", fmt.Errorf("no repository root (Options.RepoRoot) to build the images from")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	goBuild := func(moduleDir, out, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", pkg, err, b)
		}
		return nil
	}
	pause, leaker, packer := filepath.Join(dir, "pause"), filepath.Join(dir, "leaker"), filepath.Join(dir, "ociimage")
	for _, b := range []struct{ moduleDir, out, pkg string }{
		{repoRoot, pause, "./test/e2e/lab/images/pause"},
		{repoRoot, leaker, "./test/e2e/lab/images/leaker"},
		{filepath.Join(repoRoot, "tools", "ociimage"), packer, "."},
	} {
		if err := goBuild(b.moduleDir, b.out, b.pkg); err != nil {
			return "", err
		}
	}
	tarball := filepath.Join(dir, "images.tar")
	cmd := exec.CommandContext(ctx, packer, "-o", tarball, PauseImage+"="+pause, LeakerImage+"="+leaker)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pack the images: %w: %s", err, b)
	}
	return tarball, nil
}
