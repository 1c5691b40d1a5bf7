.PHONY: run test build generate bench

# Run the server on the embedded SQLite default (first run prints a staff login).
run:
	go run . serve

# The whole test suite; installs Chromium and Dendrite when missing.
test:
	scripts/test.sh

build:
	CGO_ENABLED=1 go build -o bin/matrixas .

generate:
	go generate ./...

# The performance benchmark: writes docs/PERFORMANCE.md (about 18 minutes; needs wrk).
bench:
	go run ./bench
