package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/daemon/cli"
)

func TestCLIOptions(t *testing.T) {
	env := map[string]string{envSocket: "/env/ubus.sock", envInitScript: "/env/init"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		args []string
		want cli.Options
		rest []string
	}{
		{[]string{"status"}, cli.Options{Socket: "/env/ubus.sock", InitScript: "/env/init"}, []string{"status"}},
		{[]string{"-s", "/x.sock", "--init=/y", "ifup", "wan"}, cli.Options{Socket: "/x.sock", InitScript: "/y"}, []string{"ifup", "wan"}},
		{[]string{"--s=/x.sock", "-init", "/y", "use", "wan", "ping", "-s", "100"}, cli.Options{Socket: "/x.sock", InitScript: "/y"},
			[]string{"use", "wan", "ping", "-s", "100"}},
		{[]string{"--json", "-s", "/x"}, cli.Options{Socket: "/env/ubus.sock", InitScript: "/env/init"}, []string{"--json", "-s", "/x"}},
		{[]string{"-s"}, cli.Options{Socket: "/env/ubus.sock", InitScript: "/env/init"}, []string{"-s"}},
		{nil, cli.Options{Socket: "/env/ubus.sock", InitScript: "/env/init"}, nil},
	}
	for _, tt := range tests {
		got, rest := cliOptions(tt.args, getenv)
		if got != tt.want || !slices.Equal(rest, tt.rest) {
			t.Errorf("cliOptions(%q) = %+v, %q; want %+v, %q", tt.args, got, rest, tt.want, tt.rest)
		}
	}
}

// TestCalledAsMwan3 runs the CLI through a link named mwan3 and as
// `mwan3d cli`: both print legacy's help and exit 0.
func TestCalledAsMwan3(t *testing.T) {
	for _, argv := range [][]string{{"/usr/sbin/mwan3"}, {"mwan3", "help"}, {"mwan3d", "cli", "nonsense"}} {
		var out, errb bytes.Buffer
		if code := dispatch(argv, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "Syntax: mwan3 [command]\n") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", argv, code, out.String(), errb.String())
		}
	}
	// ifup without the service: legacy's message and status 1.
	t.Setenv(envSocket, t.TempDir()+"/none.sock")
	var out, errb bytes.Buffer
	if code := dispatch([]string{"mwan3", "ifup", "wan"}, &out, &errb); code != 1 || !strings.Contains(out.String(), "global disabled") {
		t.Errorf("ifup without the service: status %d, stdout %q", code, out.String())
	}
}
