#!/usr/bin/env bash
# hack/node-binaries.sh: make sure the binaries of the lab's real node exist
# and print the directory that holds them (the real-node tests read it from
# LEAKGUARD_E2E_BIN, like the other e2e tests).
#
# The directory is hack/e2e-binaries.sh's (kube-apiserver and etcd, built
# first through that script), to which this adds:
# - kubelet, kube-controller-manager and kube-scheduler, built from source
#   through the Go module proxy from the same tools module as kube-apiserver
#   (tools/kube/kube-apiserver, one Kubernetes release for all four), with
#   CGO_ENABLED=0 (the kubelet runs static);
# - kube-state-metrics, built from its own tools module
#   (tools/kube/kube-state-metrics: it pins client-go v0.36, which the
#   Kubernetes module would raise) into a directory keyed by its version and
#   linked into the first, so that one path names every binary.
# A second run finds them there and builds nothing. Containerd, runc and ctr
# are Debian's packages (.ci/run installs them), not built here.
#
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$("$root/hack/e2e-binaries.sh")
tools=$root/tools/kube/kube-apiserver
version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$tools/go.mod")
cache=${LEAKGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leakguard}

# build_kube NAME MINUTES: build k8s.io/kubernetes/cmd/NAME into $dir.
build_kube() {
  local name=$1 about=$2
  [ -x "$dir/$name" ] && return 0
  echo "building $name $version from source, first time only, $about on 2 cores (into $dir)" >&2
  local start major minor pkg
  start=$(date +%s)
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  tmp=$(mktemp "$dir/.$name.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  # The version flags of Kubernetes' own build (hack/lib/version.sh): the
  # kubelet reports its version in the Node's status.
  pkg=k8s.io/component-base/version
  (cd "$tools" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$tmp" \
    -ldflags "-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    "k8s.io/kubernetes/cmd/$name")
  chmod +x "$tmp"
  mv "$tmp" "$dir/$name"
  trap - EXIT
  echo "built $name $version in $(( $(date +%s) - start ))s" >&2
}

build_kube kube-scheduler "about half a minute"
build_kube kube-controller-manager "about 2 minutes"
build_kube kubelet "about 3 minutes"

ksm_tools=$root/tools/kube/kube-state-metrics
ksm_version=$(sed -n 's/^require k8s.io\/kube-state-metrics\/v2 \(v[0-9.]*\)$/\1/p' "$ksm_tools/go.mod")
if [ -z "$ksm_version" ]; then
  echo "node-binaries: no 'require k8s.io/kube-state-metrics/v2 vX.Y.Z' line in $ksm_tools/go.mod" >&2
  exit 1
fi
ksm_dir=$cache/bin/kube-state-metrics-$ksm_version
ksm=$ksm_dir/kube-state-metrics
mkdir -p "$ksm_dir"
if [ ! -x "$ksm" ]; then
  echo "building kube-state-metrics $ksm_version from source, first time only, about 3 minutes on 2 cores (into $ksm_dir)" >&2
  start=$(date +%s)
  tmp=$(mktemp "$ksm_dir/.kube-state-metrics.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  # The version flags of kube-state-metrics' own Makefile: its /metrics
  # (kube_state_metrics_build_info) and --version name the release.
  pkg=github.com/prometheus/common/version
  client_go=$(cd "$ksm_tools" && go list -m -f '{{.Version}}' k8s.io/client-go)
  (cd "$ksm_tools" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$tmp" \
    -ldflags "-s -w -X $pkg.Version=${ksm_version#v} -X $pkg.Branch=release -X k8s.io/kube-state-metrics/v2/pkg/app.ClientGoVersion=$client_go" \
    k8s.io/kube-state-metrics/v2)
  chmod +x "$tmp"
  mv "$tmp" "$ksm"
  trap - EXIT
  echo "built kube-state-metrics $ksm_version in $(( $(date +%s) - start ))s" >&2
fi
# Replace the link in one rename, as hack/e2e-binaries.sh does for etcd.
if [ "$(readlink "$dir/kube-state-metrics" 2>/dev/null)" != "$ksm" ]; then
  ln -sfn "$ksm" "$dir/.kube-state-metrics.link"
  mv -Tf "$dir/.kube-state-metrics.link" "$dir/kube-state-metrics"
fi

echo "$dir"
