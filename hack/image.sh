#!/usr/bin/env bash
# hack/image.sh IMAGE VERSION: build the container images IMAGE:VERSION and
# IMAGE-agent:VERSION (the Dockerfile's agent target) from
# the Dockerfile with the first container engine that can build here
# ($ENGINE if set, else docker, podman, buildah), for the machine's own
# platform. make image runs it. With no usable engine it says why and exits
# 1 rather than failing halfway through a build.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:?usage: hack/image.sh IMAGE VERSION}
version=${2:?usage: hack/image.sh IMAGE VERSION}

fail() {
  echo "make image: $*" >&2
  echo "  The image is the Dockerfile's static binary on distroless; the binary alone needs no engine: make build." >&2
  exit 1
}

engines=(${ENGINE:-docker podman buildah})
found=()
for e in "${engines[@]}"; do
  command -v "$e" >/dev/null 2>&1 || continue
  found+=("$e")
  case "$(basename "$e")" in
    docker)
      # The docker CLI can be installed without a daemon to talk to.
      if ! out=$("$e" info 2>&1); then
        echo "make image: $e is installed but cannot reach a Docker daemon:" >&2
        echo "$out" | grep -v "^[[:space:]]*$" | tail -n 2 | sed "s/^/    /" >&2
        continue
      fi
      # The Dockerfile uses BuildKit's automatic platform arguments.
      set -x
      DOCKER_BUILDKIT=1 "$e" build --build-arg VERSION="$version" -t "$image:$version" .
      DOCKER_BUILDKIT=1 "$e" build --build-arg VERSION="$version" --target agent -t "$image-agent:$version" .
      exit 0
      ;;
    *)
      set -x
      "$e" build --build-arg VERSION="$version" -t "$image:$version" .
      "$e" build --build-arg VERSION="$version" --target agent -t "$image-agent:$version" .
      exit 0
      ;;
  esac
done
if [ ${#found[@]} -eq 0 ]; then
  fail "no container engine found (looked for ${engines[*]} on PATH); install one, or name it: make image ENGINE=/path/to/podman"
fi
fail "no usable container engine (found ${found[*]}, none could build; see above)"
