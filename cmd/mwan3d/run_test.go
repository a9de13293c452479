package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefuses covers what `mwan3d run` refuses before the daemon touches
// anything: bad usage (exit 2) and configurations it cannot start with
// (exit 1, with the reason). The daemon itself runs in the daemon
// package's tests and in its testbed tests as `mwan3d run`.
func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("config interface 'wan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "extra"}, 2, "usage: mwan3d run"},
		{[]string{"run", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"run", "-c", filepath.Join(dir, "missing"), "--state-dir", dir}, 1, "read configuration"},
		{[]string{"run", "-c", bad, "--state-dir", dir}, 1, "refused"},
	}
	for _, tt := range tests {
		code, _, stderr := runMain(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
}
