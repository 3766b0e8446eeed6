//go:build tools

// Package tools records the commands this module exists to build: the
// kube-apiserver of the e2e tests (hack/e2e-binaries.sh) and the kubelet,
// kube-controller-manager and kube-scheduler of the lab's real node
// (hack/node-binaries.sh), all from one Kubernetes release.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
