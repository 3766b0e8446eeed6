#!/usr/bin/env bash
# hack/policy-copy.sh OUT_DIR: write OUT_DIR/leakguard/policy.yaml, the
# policy that deploy/leakguard's ConfigMap ships: the default policy that
# leakguard serve embeds, under a header that says where it comes from.
# make generate writes it into deploy/; hack/verify-generated.sh into a
# scratch directory, to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "$1/leakguard"
{
  echo "# Copied from remediate/default_policy.yaml by \`make generate\`; do not edit."
  echo "# To change the policy, patch the ConfigMap leakguard-policy in an overlay"
  echo "# (configMapGenerator with behavior: replace and your own policy.yaml)."
  cat remediate/default_policy.yaml
} > "$1/leakguard/policy.yaml"
