#!/usr/bin/env bash
# Installs what the integration tests need, idempotently: Chromium (Debian package) and
# Dendrite v0.13.8 (go install into a cache folder). Fast when both are present.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "chromium: $(chromium --version 2>/dev/null || echo missing)"

bindir="${DENDRITE_BIN_DIR:-$HOME/.cache/matrixas/tools/dendrite-v0.13.8}"
if [ ! -x "$bindir/dendrite" ] || [ ! -x "$bindir/generate-keys" ] || [ ! -x "$bindir/generate-config" ]; then
  echo "installing dendrite v0.13.8 into $bindir (about 2.5 minutes the first time)"
  mkdir -p "$bindir"
  (cd "$bindir" && GOFLAGS= GOBIN="$bindir" go install \
    github.com/matrix-org/dendrite/cmd/dendrite@v0.13.8 \
    github.com/matrix-org/dendrite/cmd/generate-keys@v0.13.8 \
    github.com/matrix-org/dendrite/cmd/generate-config@v0.13.8)
fi
echo "dendrite: $bindir/dendrite"
