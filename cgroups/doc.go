// Package cgroups is leakguard's node agent: it reads a node's cgroup tree
// (cgroup v1 or v2, systemd or cgroupfs kubelet driver) through a
// configurable root, finds the pod-level cgroups that outlive their pods
// (orphans), counts live and dying cgroups, and exports the
// leakguard_node_* metrics of the project's alert contract.
//
// The pieces are kept apart so that each can be tested alone: a Scanner
// reads a file-system root and a PodSource (the pods bound to the node) and
// returns a Result; an Agent runs the Scanner on an interval, turns each
// Result into metrics and serves /metrics, /orphans and /healthz without ever
// waiting for a scan.
package cgroups
