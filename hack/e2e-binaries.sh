#!/usr/bin/env bash
# hack/e2e-binaries.sh: make sure the binaries of the e2e tests exist and
# print the directory that holds them (the e2e tests read it from
# LEAKGUARD_E2E_BIN).
#
# kube-apiserver is built from source through the Go module proxy, from the
# tools module in tools/kube/kube-apiserver (its go.sum pins every module),
# into a cache directory keyed by version; a second run finds it there and
# does nothing. etcd is built the same way, from tools/kube/etcd (Debian 12's
# etcd-server is 3.4, too old for kube-apiserver 1.37), into a directory
# keyed by its own version, and linked into kube-apiserver's so that one path
# names both. ETCD=/path/to/etcd links that binary instead.
#
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/tools/kube/kube-apiserver
version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$tools/go.mod")
if [ -z "$version" ]; then
  echo "e2e-binaries: no 'require k8s.io/kubernetes vX.Y.Z' line in $tools/go.mod" >&2
  exit 1
fi
cache=${LEAKGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leakguard}
dir=$cache/bin/$version
mkdir -p "$dir"

if [ ! -x "$dir/kube-apiserver" ]; then
  echo "building kube-apiserver $version from source, first time only, about 6 minutes on 2 cores (into $dir)" >&2
  start=$(date +%s)
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  tmp=$(mktemp "$dir/.kube-apiserver.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  # The version flags are those of Kubernetes' own build (hack/lib/version.sh),
  # so that /version answers the release rather than v0.0.0-master.
  pkg=k8s.io/component-base/version
  (cd "$tools" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$tmp" \
    -ldflags "-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    k8s.io/kubernetes/cmd/kube-apiserver)
  chmod +x "$tmp"
  mv "$tmp" "$dir/kube-apiserver"
  trap - EXIT
  echo "built kube-apiserver $version in $(( $(date +%s) - start ))s" >&2
fi

etcd_tools=$root/tools/kube/etcd
etcd_version=$(sed -n 's/^require go.etcd.io\/etcd\/server\/v3 \(v[0-9.]*\)$/\1/p' "$etcd_tools/go.mod")
if [ -z "$etcd_version" ]; then
  echo "e2e-binaries: no 'require go.etcd.io/etcd/server/v3 vX.Y.Z' line in $etcd_tools/go.mod" >&2
  exit 1
fi
if [ -n "${ETCD:-}" ]; then
  etcd=$ETCD
else
  etcd_dir=$cache/bin/etcd-$etcd_version
  etcd=$etcd_dir/etcd
  mkdir -p "$etcd_dir"
  if [ ! -x "$etcd" ]; then
    echo "building etcd $etcd_version from source, first time only, about a minute on 2 cores (into $etcd_dir)" >&2
    start=$(date +%s)
    tmp=$(mktemp "$etcd_dir/.etcd.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    # The module's root package is etcd's main (server/main.go); its
    # version is a constant of go.etcd.io/etcd/api/v3/version.
    (cd "$etcd_tools" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$tmp" \
      -ldflags "-s -w" go.etcd.io/etcd/server/v3)
    chmod +x "$tmp"
    mv "$tmp" "$etcd"
    trap - EXIT
    echo "built etcd $etcd_version in $(( $(date +%s) - start ))s" >&2
  fi
fi
# Replace the link in one rename: a lab starting meanwhile (another
# checkout sharing the cache) sees the old etcd or the new, never none.
if [ "$(readlink "$dir/etcd" 2>/dev/null)" != "$etcd" ]; then
  ln -sfn "$etcd" "$dir/.etcd.link"
  mv -Tf "$dir/.etcd.link" "$dir/etcd"
fi

echo "$dir"
