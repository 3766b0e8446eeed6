#!/usr/bin/env bash
# Regenerates every generated file into a scratch directory and fails when a
# committed file under deploy/ differs, is missing, or is a generated file
# that the generator no longer writes (a stale dashboard, say).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${GO:-go} run ./cmd/leakguard generate --out-dir "$tmp" --chart-from deploy
hack/policy-copy.sh "$tmp"
status=0
while IFS= read -r -d '' f; do
  rel=${f#"$tmp"/}
  if ! diff -u "deploy/$rel" "$f" >"$tmp.diff" 2>&1; then
    echo "stale: deploy/$rel (run 'make generate')"
    head -n 40 "$tmp.diff"
    status=1
  fi
done < <(find "$tmp" -type f -print0 | sort -z)
# Wholly generated directories hold only what the generator writes, and
# the kustomization that includes it in deploy/.
for dir in grafana mimir prometheus; do
  for f in deploy/"$dir"/*; do
    [ -e "$f" ] || continue
    [ "$f" = deploy/grafana/kustomization.yaml ] && continue
    [ -e "$tmp/${f#deploy/}" ] || { echo "stale: $f is no longer generated (remove it)"; status=1; }
  done
done
# The Helm chart is wholly generated too.
while IFS= read -r -d '' f; do
  [ -e "$tmp/${f#deploy/}" ] || { echo "stale: $f is no longer generated (remove it)"; status=1; }
done < <(find deploy/helm/leakguard -type f -print0 2>/dev/null | sort -z)
rm -f "$tmp.diff"
[ "$status" -eq 0 ] && echo "generated files are up to date"
exit "$status"
