package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(append([]string{"mwan3d"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := "../../config/testdata/default.conf"
	warn := write("warn", "config interface 'wan'\n\toption enabled '1'\n\toption timeout 'x'\n")
	bad := write("bad", "config interface 'wan'\n\toption enabled '1\n")

	tests := []struct {
		args []string
		code int
		out  []string
	}{
		{[]string{"check", "-c", def}, 0, []string{def + ": 4 interfaces (1 enabled), 10 members, 5 policies, 3 rules; 0 errors, 0 warnings: ok\n"}},
		{[]string{"check", "-c", warn}, 0, []string{warn + ":3: section 'wan': option 'timeout': 'x' is not a number (default 4 used)\n", "1 warnings: ok"}},
		{[]string{"check", "--strict", "-c", warn}, 1, []string{"refused (--strict)"}},
		{[]string{"check", "-c", bad}, 1, []string{bad + ":2: unterminated ' quote", "1 errors, 0 warnings: refused"}},
		{[]string{"check", "-c", filepath.Join(dir, "missing")}, 1, nil},
		{[]string{"check", "extra"}, 2, nil},
	}
	for _, tt := range tests {
		code, out, _ := runMain(t, tt.args...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d; output:\n%s", tt.args, code, tt.code, out)
		}
		for _, w := range tt.out {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, w, out)
			}
		}
	}
}

func TestDispatch(t *testing.T) {
	if code, _, _ := runMain(t); code != 2 {
		t.Errorf("no arguments: exit %d", code)
	}
	if code, out, _ := runMain(t, "help"); code != 0 || !strings.Contains(out, "check") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	if code, _, errOut := runMain(t, "nonsense"); code != 2 || !strings.Contains(errOut, `unknown command "nonsense"`) {
		t.Errorf("unknown: exit %d, %q", code, errOut)
	}
}
