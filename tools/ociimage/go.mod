// Module ociimage packs static programs as container images for the lab's
// real node (test/e2e/lab). It is a module of its own so that the main
// module does not depend on go-containerregistry.
module github.com/leakguard/leakguard/tools/ociimage

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
