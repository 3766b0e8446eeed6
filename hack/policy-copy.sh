#!/usr/bin/env bash
# hack/policy-copy.sh OUT_DIR: write OUT_DIR/leakguard/policy.yaml, the
# policy that deploy/leakguard's ConfigMap ships: the default policy that
# leakguard serve embeds, under a header that says where it comes from;
# and OUT_DIR/overlays/kube-prometheus-stack/policy-restart.yaml, the
# overlay's example: the default policy with restart after annotate for
# ContainerMemoryLeak. make generate writes them into deploy/;
# hack/verify-generated.sh into a scratch directory, to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p "$1/leakguard" "$1/overlays/kube-prometheus-stack"
{
  echo "# Copied from remediate/default_policy.yaml by \`make generate\`; do not edit."
  echo "# To change the policy, patch the ConfigMap leakguard-policy in an overlay"
  echo "# (configMapGenerator with behavior: replace and your own policy.yaml)."
  cat remediate/default_policy.yaml
} > "$1/leakguard/policy.yaml"

example=$1/overlays/kube-prometheus-stack/policy-restart.yaml
{
  echo "# Written from remediate/default_policy.yaml by \`make generate\`; do not edit."
  echo "# The default policy with restart turned on for ContainerMemoryLeak, after"
  echo "# annotate: the example of overlays/kube-prometheus-stack/kustomization.yaml,"
  echo "# which adds components/restart (restart's rights) with it."
  echo
  # The default's own header (up to its first blank line) says it only
  # annotates; this one does not.
  awk '
    !body { if ($0 == "") body = 1; next }
    /^  [A-Za-z]/ { leak = ($0 == "  ContainerMemoryLeak:") }
    { print }
    leak && $0 == "      - name: annotate" {
      print "      # Needs deploy/components/restart (the overlay'"'"'s components)."
      print "      - name: restart"
      print "        enabled: true"
      added++
    }
    END { if (added != 1) { print "policy-copy: ContainerMemoryLeak has no annotate remediator to add restart after" > "/dev/stderr"; exit 1 } }
  ' remediate/default_policy.yaml
} > "$example"
