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
		{[]string{"run", "--gogc", "-5"}, 2, "--gogc -5: want a percent >= 0"},
		{[]string{"run", "--memory-limit", "12MB"}, 2, `--memory-limit: want a positive size such as 16MiB, got "12MB"`},
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

func TestMemorySettings(t *testing.T) {
	env := func(vals map[string]string) func(string) string {
		return func(k string) string { return vals[k] }
	}
	tests := []struct {
		gogc   int
		given  bool
		limit  string
		env    map[string]string
		gc     int
		mem    int64
		errMsg string
	}{
		{gogc: defaultGOGC, gc: defaultGOGC, mem: keepSetting},
		{gogc: defaultGOGC, env: map[string]string{"GOGC": "200"}, gc: keepSetting, mem: keepSetting},
		{gogc: 80, given: true, env: map[string]string{"GOGC": "200"}, gc: 80, mem: keepSetting},
		{gogc: 0, given: true, gc: 0, mem: keepSetting},
		{gogc: -1, given: true, errMsg: "--gogc -1"},
		{gogc: defaultGOGC, limit: "12MiB", gc: defaultGOGC, mem: 12 << 20},
		{gogc: defaultGOGC, limit: "512KiB", gc: defaultGOGC, mem: 512 << 10},
		{gogc: defaultGOGC, limit: "1GiB", gc: defaultGOGC, mem: 1 << 30},
		{gogc: defaultGOGC, limit: "1000000", gc: defaultGOGC, mem: 1000000},
		{gogc: defaultGOGC, limit: "100B", gc: defaultGOGC, mem: 100},
		{gogc: defaultGOGC, limit: "0", errMsg: "want a positive size"},
		{gogc: defaultGOGC, limit: "MiB", errMsg: "want a positive size"},
		{gogc: defaultGOGC, limit: "99999999999GiB", errMsg: "too large"},
	}
	for _, tt := range tests {
		gc, mem, err := memorySettings(tt.gogc, tt.given, tt.limit, env(tt.env))
		if tt.errMsg != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errMsg) {
				t.Errorf("%+v: error %v, want %q", tt, err, tt.errMsg)
			}
			continue
		}
		if err != nil || gc != tt.gc || mem != tt.mem {
			t.Errorf("%+v: %d %d %v, want %d %d", tt, gc, mem, err, tt.gc, tt.mem)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"12MiB", "1", "0", "512KiB", "9223372036854775807", "99999999999GiB", "-1B", "MiB", "1.5MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n <= 0 {
			t.Fatalf("parseSize(%q) = %d without error", s, n)
		}
	})
}
