//go:build tools

// Package tools records the one command this module exists to build:
// kube-state-metrics, whose main package is the root of its module, for the
// lab's real node (hack/node-binaries.sh).
package tools

import _ "k8s.io/kube-state-metrics/v2"
