# The leakguard images: static binaries on distroless static, as user
# nonroot (65532). The default target is leakguard (serve, agent, generate,
# replay, version); the target agent is the node agent's own program
# (cmd/leakguard-agent, about 21 MiB resident instead of 33), the image of
# deploy/agent's DaemonSet. Build with
# `make image`, which passes VERSION; for several platforms at once,
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v0.1.0 .
# BuildKit sets TARGETOS and TARGETARCH for each platform, and the build
# stage runs on the builder's own platform and cross-compiles (no
# emulation: CGO is off).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
# Set by BuildKit (and podman, buildah) for the platform being built;
# empty, go builds for the machine it runs on.
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/leakguard ./cmd/leakguard && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/leakguard-agent ./cmd/leakguard-agent

FROM gcr.io/distroless/static:nonroot AS agent
COPY --from=build /out/leakguard-agent /leakguard-agent
USER 65532:65532
ENTRYPOINT ["/leakguard-agent"]

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/leakguard /leakguard
USER 65532:65532
ENTRYPOINT ["/leakguard"]
