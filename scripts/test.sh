#!/usr/bin/env bash
# The whole test suite, as README and CI run it: installs what the integration tests need
# (Chromium from Debian's packages, Dendrite v0.13.8 with go install; both skipped when
# already there), checks go.mod tidiness, formatting, vet, staticcheck and templ drift, then
# runs every test with the race detector and integration tests switched on.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tools"
scripts/install-tools.sh

step "go mod tidy (drift check)"
# go.mod lists what the code imports, direct requirements apart from indirect ones;
# -diff changes nothing and fails when tidying would.
go mod tidy -diff

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "templ generate (drift check)"
go tool templ generate >/dev/null
drift=$(git status --porcelain -- '*_templ.go')
if [ -n "$drift" ]; then
  echo "templ generate changed generated files; run 'go generate ./...' and commit them:"; echo "$drift"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
go tool staticcheck ./...

step "fuzz targets (${FUZZTIME:=5s} each)"
# Every Fuzz* function in the module runs for a short bounded time, so a new fuzzer is
# picked up without editing this script.
for pkg in $(go list ./...); do
  for fz in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "  $pkg $fz"
    go test -run=NONE -fuzz="^${fz}\$" -fuzztime="$FUZZTIME" "$pkg" >/tmp/matrixas-fuzz.log 2>&1 || { cat /tmp/matrixas-fuzz.log; exit 1; }
  done
done

step "go test (race detector, integration on)"
export MATRIXAS_INTEGRATION=1
export DENDRITE_BIN_DIR="${DENDRITE_BIN_DIR:-$HOME/.cache/matrixas/tools/dendrite-v0.13.8}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
go test -race -count=1 -timeout 30m ./...
