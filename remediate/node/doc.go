// Package node holds the remediators that act on nodes: cordon (mark a
// node unschedulable, with leakguard's mark, and undo it when the alert
// resolves) and drain (evict a cordoned node's pods in the background,
// through the Eviction API, resumed by another replica when its own
// stops). remediate/builtin registers both. See README.md beside this
// file.
package node
