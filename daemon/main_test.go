package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The mwan3d binary the testbed tests run as a subprocess, built once.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// daemonBinary builds cmd/mwan3d (once per test binary).
func daemonBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "mwan3d-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mwan3d")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/mwan3d/mwan3d/cmd/mwan3d").CombinedOutput()
		if err != nil {
			binErr = &buildError{err: err, out: string(out)}
		}
	})
	if binErr != nil {
		t.Fatalf("build mwan3d: %v", binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
