#!/usr/bin/env bash
# Measures what evaluating leakguard's rules costs: promtool evaluates the
# whole rule file once a minute over synthetic series (tools/rulebench), and
# the time of the same run with an empty rule file is subtracted.
#
# usage: [RULES=rule-file] hack/rules-bench.sh [CONTAINERS [MINUTES]]
# (promtool caps a query at 10,000 samples, about 1,500 containers here.)
set -euo pipefail
cd "$(dirname "$0")/.."
containers=${1:-1000}
minutes=${2:-180}
promtool=${PROMTOOL:-promtool}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'groups: []\n' >"$tmp/empty.yaml"
rules=$(realpath "${RULES:-deploy/prometheus/rules.yaml}")
go run ./tools/rulebench -containers "$containers" -minutes "$minutes" -rules "$rules" >"$tmp/rules.test.yaml"
go run ./tools/rulebench -containers "$containers" -minutes "$minutes" -rules "$tmp/empty.yaml" >"$tmp/empty.test.yaml"
run() { # prints the best wall time in seconds of three runs
  local best=
  for _ in 1 2 3; do
    local start end t
    start=$(date +%s.%N)
    GOMAXPROCS=1 "$promtool" test rules "$1" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
with=$(run "$tmp/rules.test.yaml")
without=$(run "$tmp/empty.test.yaml")
series=$(grep -c "series:" "$tmp/rules.test.yaml")
evals=$((minutes + 1))
awk -v w="$with" -v wo="$without" -v n="$containers" -v s="$series" -v e="$evals" 'BEGIN {
  d = w - wo
  printf "containers %d, input series %d, evaluations %d\n", n, s, e
  printf "promtool with the rules %.2f s, without %.2f s (best of 3, GOMAXPROCS=1)\n", w, wo
  printf "rule evaluation: %.1f ms per evaluation of all groups, %.1f us per container\n", d / e * 1000, d / e / n * 1e6
}'
