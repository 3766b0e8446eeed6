// Command pause is the pod sandbox ("pause") container of the lab's real
// node: it holds the pod's namespaces and does nothing until it is told to
// stop. No registry is reachable from the lab, so containerd's
// sandbox_image names this program, packed as an image by tools/ociimage
// and imported into containerd, instead of registry.k8s.io/pause. Like
// that image's program it reaps the children that its namespaces inherit
// and exits 0 on SIGTERM or SIGINT.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every child that has exited; one SIGCHLD may stand for
		// several.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
