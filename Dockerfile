# syntax=docker/dockerfile:1
# The manager image: a static binary on distroless, running as the unprivileged 65532 ("nonroot").
# `make image` (hack/image, no Docker) builds the same image from scratch layers: the static binary at
# /manager built with the same flags, user 65532:65532, entrypoint ["/manager"], no shell
# (docs/design/release.md). Keep the two equivalent.
#   docker build -t ghcr.io/nodeagentset/nodeagentset:dev .        (or: make docker-build IMG=...)
#   docker buildx build --platform linux/amd64,linux/arm64 -t ... .  (cross-compiles: no emulation)

# Build on the build machine's platform and cross-compile for the target one.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Dependencies first, so that their layer survives source changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY cmd/ cmd/
COPY api/ api/
COPY internal/ internal/

# Static (no cgo) so that it runs on distroless/static; without TARGETARCH (plain `docker build`) the
# build machine's architecture.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o manager ./cmd

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
