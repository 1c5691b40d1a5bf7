package fakewaldur

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"matrixas/internal/dendritetest"
)

// TestEmbeddedDescriptionIsTheShared: the fake checks answers against its embedded copy
// of the platform's API description; that copy must be the project's shared one
// (../shared/waldur/waldur-api-subset.yaml beside the checkout), byte for byte, so the
// client is held to the real description and not to a copy that drifted. The shared
// folder is always there under the README test command (and CI); a plain `go test`
// in a checkout without it skips.
func TestEmbeddedDescriptionIsTheShared(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	shared, err := readShared(filepath.Join(filepath.Dir(here), "..", ".."))
	if os.IsNotExist(err) && !dendritetest.Enabled() {
		t.Skip("../shared/waldur is not beside this checkout; run the README test command (make test) to compare")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, apiSubset) {
		t.Fatal("internal/fakewaldur/waldur-api-subset.yaml differs from ../shared/waldur/waldur-api-subset.yaml: copy the shared one over it")
	}
}

// readShared reads shared/waldur/waldur-api-subset.yaml from the folder beside the
// checkout at root, or beside one of its parents (a git worktree lives deeper than the
// main checkout).
func readShared(root string) ([]byte, error) {
	dir, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "shared", "waldur", "waldur-api-subset.yaml"))
		if !os.IsNotExist(err) || filepath.Dir(dir) == dir {
			return b, err
		}
		dir = filepath.Dir(dir)
	}
}
