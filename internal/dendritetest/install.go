package dendritetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
)

// DendriteVersion is the Dendrite release that BinDir installs and Start runs.
const DendriteVersion = "v0.13.8"

// binaries are the commands BinDir provides, all from github.com/matrix-org/dendrite/cmd.
var binaries = []string{"dendrite", "generate-keys", "generate-config"}

// installMu serialises installs inside this process; the flock on the lock
// file serialises them across processes (go test ./... runs test binaries in
// parallel).
var installMu sync.Mutex

// BinDir returns the directory holding the dendrite, generate-keys and
// generate-config binaries, installing them with
// `go install github.com/matrix-org/dendrite/cmd/...@v0.13.8` when any is
// missing. The directory is $DENDRITE_BIN_DIR if set, else
// $HOME/.cache/matrixas/tools/dendrite-v0.13.8. Concurrent callers, also in
// other processes, are serialised by an flock on a lock file in that
// directory, so only one of them installs. Any failure is returned as an
// error.
func BinDir() (string, error) {
	dir := os.Getenv("DENDRITE_BIN_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("dendritetest: locating the tool cache: %w", err)
		}
		dir = filepath.Join(home, ".cache", "matrixas", "tools", "dendrite-"+DendriteVersion)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("dendritetest: %w", err)
	}

	installMu.Lock()
	defer installMu.Unlock()

	// Fast path without touching the lock file.
	if binariesPresent(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("dendritetest: creating %s: %w", dir, err)
	}
	lockPath := filepath.Join(dir, ".install.lock")
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("dendritetest: opening install lock: %w", err)
	}
	defer lock.Close()
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("dendritetest: locking %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file unlocks too

	// Another process may have installed while we waited for the lock.
	if binariesPresent(dir) {
		return dir, nil
	}
	if err := install(dir); err != nil {
		return "", err
	}
	if !binariesPresent(dir) {
		return "", fmt.Errorf("dendritetest: go install finished but %v are not all in %s", binaries, dir)
	}
	return dir, nil
}

// binariesPresent reports whether all binaries exist in dir as executable files.
func binariesPresent(dir string) bool {
	for _, name := range binaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 || fi.Size() == 0 {
			return false
		}
	}
	return true
}

// install runs go install for all binaries with GOBIN=dir.
func install(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		//lint:ignore SA1019 a test helper: the toolchain that built the tests is the one to use
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, statErr := os.Stat(goBin); statErr != nil {
			return fmt.Errorf("dendritetest: no go command to install Dendrite with: %w", err)
		}
	}
	args := []string{"install"}
	for _, name := range binaries {
		args = append(args, "github.com/matrix-org/dendrite/cmd/"+name+"@"+DendriteVersion)
	}
	cmd := exec.Command(goBin, args...)
	// Run outside any module so the caller's go.mod and GOFLAGS (-mod=vendor)
	// play no part.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dendritetest: %s %v failed: %w\n%s", goBin, args, err, tail(out.String(), 60))
	}
	return nil
}
