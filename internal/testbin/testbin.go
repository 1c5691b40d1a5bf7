// Package testbin builds the server binary for tests that run it as a real subprocess
// (crash and signal tests).
package testbin

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Build compiles the module's main package into t.TempDir() and returns the binary's path.
func Build(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "matrixas")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
