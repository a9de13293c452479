package bed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The mwan3d binary beds run when Options.Binary is empty, built once per
// process.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Binary builds ./cmd/mwan3d (once per process) into a temporary directory
// that Main removes, and returns its path.
func Binary() (string, error) {
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "mwan3d-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mwan3d")
		binErr = build(binPath)
	})
	return binPath, binErr
}

// build compiles cmd/mwan3d to path.
func build(path string) error {
	out, err := exec.Command("go", "build", "-o", path, "github.com/mwan3d/mwan3d/cmd/mwan3d").CombinedOutput()
	if err != nil {
		return fmt.Errorf("build mwan3d: %w: %s", err, out)
	}
	return nil
}

// Main runs the tests of a package that uses beds and removes the binary
// Binary built: call it from TestMain as os.Exit(bed.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}
