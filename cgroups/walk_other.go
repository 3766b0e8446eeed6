//go:build !linux

package cgroups

// countDirs returns the number of directories in the tree at root; see
// countDirsPortable.
func countDirs(root string) (int, error) { return countDirsPortable(root) }
