#!/usr/bin/env bash
# check.sh FILE.json...: type-checks each Grafana dashboard JSON file against
# Grafana's schema (the pinned @grafana/schema, see leakguard.ts) with
# `tsc --noEmit --strict`. Exits non-zero, with tsc's errors, when a file has
# an unknown or misspelt field or a wrong type. Needs `npm ci` in this
# directory first (.ci/run does it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tsc="$here/node_modules/.bin/tsc"
if [ ! -x "$tsc" ]; then
  echo "check.sh: $tsc missing: run 'npm ci' in $here" >&2
  exit 2
fi
[ $# -gt 0 ] || { echo "usage: check.sh FILE.json..." >&2; exit 2; }
# The generated .ts files live next to leakguard.ts so that @grafana/schema
# resolves from node_modules here; a per-run directory keeps runs apart.
work=$(mktemp -d "$here/.check.XXXXXX")
trap 'rm -rf "$work"' EXIT
files=()
i=0
for f in "$@"; do
  i=$((i + 1))
  # numbered, so that two files of the same name in different directories
  # do not collide
  name=$(basename "$f" .json | tr -c 'A-Za-z0-9_\n' '_')
  ts="$work/${i}_$name.ts"
  {
    echo "// $f"
    echo "import { checkDashboard } from '../leakguard';"
    printf 'checkDashboard('
    cat "$f"
    echo ');'
  } >"$ts"
  files+=("\"$ts\"")
done
cat >"$work/tsconfig.json" <<JSON
{ "extends": "../tsconfig.base.json", "files": [$(IFS=,; echo "${files[*]}")] }
JSON
"$tsc" -p "$work/tsconfig.json" --pretty false
echo "schema ok: $# dashboard(s) match @grafana/schema $(node -p "require('$here/node_modules/@grafana/schema/package.json').version")"
