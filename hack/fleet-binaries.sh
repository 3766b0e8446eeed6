#!/usr/bin/env bash
# hack/fleet-binaries.sh: make sure the binaries of the fleet tests
# (test/fleet) exist and print the directory that holds them (the tests read
# it from LEAKGUARD_FLEET_BIN).
#
# thanos is built from its module's own source, fetched through the Go module
# proxy: its go.mod has replace directives, so 'go install pkg@version'
# refuses it. It is built as Thanos' own release is (.promu.yml): with the
# tags netgo and slicelabels. Without slicelabels, Thanos' labels code (which
# reads Prometheus' labels as a slice) corrupts its gRPC answers: the sidecar
# panics on the first Info call. The binary is cached by version and by
# that recipe ($dir/thanos.build); a second run finds it and does nothing.
# victoria-metrics and vmalert are Debian's victoria-metrics package, linked
# into the same directory so that one path names them all.
#
# Progress goes to stderr; stdout carries only the directory.
set -euo pipefail

version=${THANOS_VERSION:-v0.40.1}
cache=${LEAKGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leakguard}
dir=$cache/bin/thanos-$version
mkdir -p "$dir"

# TestTwoClustersOnThanos needs it; BUILD_THANOS=0 skips the build (the
# Thanos test then skips, or fails under LEAKGUARD_FLEET=1).
tags=netgo,slicelabels
recipe="thanos $version tags=$tags"
if [ "${BUILD_THANOS:-1}" = 1 ] && { [ ! -x "$dir/thanos" ] || [ "$(cat "$dir/thanos.build" 2>/dev/null)" != "$recipe" ]; }; then
  echo "building thanos $version from source, first time only, about 4 minutes on 2 cores (into $dir)" >&2
  start=$(date +%s)
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/thanos-io/thanos@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
    echo "fleet-binaries: go mod download gave no source directory for thanos $version" >&2
    exit 1
  fi
  work=$(mktemp -d)
  tmp=$(mktemp "$dir/.thanos.XXXXXX")
  trap 'rm -rf "$work" "$tmp"' EXIT
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -tags "$tags" -o "$tmp" \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${version#v}" ./cmd/thanos)
  chmod +x "$tmp"
  mv "$tmp" "$dir/thanos"
  echo "$recipe" >"$dir/thanos.build"
  rm -rf "$work"
  trap - EXIT
  echo "built thanos $version in $(( $(date +%s) - start ))s" >&2
fi

# LINK_VM=0 (make fleet-thanos) leaves VictoriaMetrics out.
for b in victoria-metrics vmalert; do
  [ "${LINK_VM:-1}" = 1 ] || break
  path=$(command -v "$b" || true)
  if [ -z "$path" ]; then
    echo "fleet-binaries: $b not found; install Debian's victoria-metrics package (apt-get install victoria-metrics)" >&2
    exit 1
  fi
  ln -sfn "$path" "$dir/$b"
done

echo "$dir"
