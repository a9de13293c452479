package packaging

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paths relative to this package's directory (go test runs tests there).
const (
	repoRoot    = ".."
	feedDir     = "openwrt/mwan3d"
	feedMake    = feedDir + "/Makefile"
	filesDir    = feedDir + "/files"
	buildScript = "ipk/build.sh"
	fakeRoot    = "testdata/fakeroot"
)

// shippedScripts are the shell scripts of the package, relative to filesDir.
var shippedScripts = []string{
	"etc/init.d/mwan3",
	"etc/mwan3.user",
	"etc/uci-defaults/mwan3-migrate-flush_conntrack",
}

// scriptTimeout bounds every shell script a test runs, so that a hung script
// fails the test instead of the whole run.
const scriptTimeout = 2 * time.Minute

// requireRoot skips the test unless it runs as root, or fails it when
// MWAN3D_REQUIRE_ROOT_TESTS=1 asks for every privileged test to run.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("MWAN3D_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatalf("needs root (%s) and MWAN3D_REQUIRE_ROOT_TESTS=1", why)
	}
	t.Skipf("needs root (%s)", why)
}

// run runs a command with a small fixed environment plus env and returns
// its combined output and exit status; failing to start it fails the test.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "HOME=" + t.TempDir()}, env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return out.String(), exitErr.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), 0
}

// abs returns the absolute form of a path relative to this package.
func abs(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readFile returns a file's content or fails the test.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeFile creates path (and its directories) with content and mode.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// exists reports whether path exists (a dangling symlink counts).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// controlScripts writes the package's maintainer scripts (postinst, prerm,
// postinst-pkg) into a temporary directory with build.sh -s.
func controlScripts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, code := run(t, ".", nil, "sh", buildScript, "-s", dir); code != 0 {
		t.Fatalf("build.sh -s: exit %d\n%s", code, out)
	}
	return dir
}
