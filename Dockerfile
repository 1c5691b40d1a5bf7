# syntax=docker/dockerfile:1

# Build: cgo is needed for SQLite (mattn/go-sqlite3 compiles it in). The golang image
# (Debian bookworm) has gcc and libc headers. The generated templ files are committed,
# so no generate step is needed here.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/matrixas . \
 && mkdir -p /out/data

# Run: distroless base has glibc (the binary links it dynamically), CA certificates (to
# call an https homeserver) and a nonroot user (uid 65532); no shell, no package manager.
# There is no curl for a HEALTHCHECK: probe GET /healthz and GET /readyz from outside.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/matrixas /usr/local/bin/matrixas
# /data must exist and belong to the runtime user before it becomes a volume.
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATABASE_PATH=/data/matrixas.db \
    LISTEN_ADDR=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/matrixas"]
CMD ["serve"]
