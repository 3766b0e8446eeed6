//go:build !linux

package cgroups

// countDirs returns the number of directories in the tree at root; see
// countDirsPortable.
func countDirs(root string) (int, error) { return countDirsPortable(root) }

// subdirs returns the names of the directories in dir; see subdirsPortable.
func subdirs(dir string, names []string) ([]string, error) { return subdirsPortable(dir, names) }

// readSmall reads the start of a small file; see readSmallPortable.
func readSmall(path string, buf []byte) (int, error) { return readSmallPortable(path, buf) }

// readOnlyMount reports false: only Linux says, and the kernel refuses an
// rmdir on a read-only mount in any case.
func readOnlyMount(string) (bool, error) { return false, nil }
