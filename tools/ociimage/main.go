// Command ociimage packs static programs as container images, one program
// per image at the root of a single layer, and writes them to one image
// tarball (the `docker save` format, which `ctr images import` reads). The
// lab's real node has no registry to pull from: its pause and leaker
// images are built this way and imported into containerd.
//
//	ociimage -o images.tar leakguard.local/pause:lab=bin/pause leakguard.local/leaker:lab=bin/leaker
//
// Each argument is REFERENCE=PROGRAM; the image's entrypoint is
// /BASENAME-OF-PROGRAM. The programs must be static (CGO_ENABLED=0): the
// image holds nothing else.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	out := flag.String("o", "", "the image tarball to write")
	arch := flag.String("arch", runtime.GOARCH, "the images' architecture (the programs' GOARCH)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s -o FILE REFERENCE=PROGRAM...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *arch, flag.Args()); err != nil {
		log.Fatalf("ociimage: %v", err)
	}
}

func run(out, arch string, specs []string) error {
	images := make(map[name.Reference]v1.Image, len(specs))
	for _, spec := range specs {
		ref, prog, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("%q: want REFERENCE=PROGRAM", spec)
		}
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("reference %q: %w", ref, err)
		}
		img, err := programImage(prog, arch)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		images[tag] = img
	}
	tmp := out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, images); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", out, err), os.Remove(tmp))
	}
	return os.Rename(tmp, out)
}

// programImage is an image of one layer holding prog at /BASENAME, which
// is the entrypoint.
func programImage(prog, arch string) (v1.Image, error) {
	data, err := os.ReadFile(prog)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(prog)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed modification time keeps the layer's digest that of its
	// content alone.
	epoch := time.Unix(0, 0).UTC()
	if err := tw.WriteHeader(&tar.Header{
		Name: base, Mode: 0o755, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = arch
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = []string{"/" + base}
	cfg.Config.Env = []string{"PATH=/"}
	return mutate.ConfigFile(img, cfg)
}
