# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on a distroless base, running as non-root.
#
# Both base images are pinned by digest, so that a rebuild of the same commit
# gets the same bases. To update one, look up what its tag points at now:
#   docker buildx imagetools inspect golang:1.26-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
# (or `crane digest IMAGE`), then replace the digest, and the Go release in the
# golang tag. That image builds with GOTOOLCHAIN=local: its Go must be at least
# the `go` line of go.mod (cmd/bot/packaging_test.go checks the tag).
FROM golang:1.26.8-bookworm@sha256:f4191582e1522dfc5980a6bdc0309a756f9697f3e7d0f199c7e26fc82ab324fd AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/bot ./cmd/bot \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/bot /bot
COPY --from=build --chown=65532:65532 /out/data /data
# The embedded store (used only when REDIS_URL is unset) lives here. The
# health and metrics listener takes every interface of the container (the
# bot's own default, 127.0.0.1:8080, is for running it outside one).
ENV DATA_DIR=/data HTTP_ADDR=:8080
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
# No shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/bot", "healthcheck"]
ENTRYPOINT ["/bot"]
