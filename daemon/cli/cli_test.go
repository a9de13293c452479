package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/ubus"
)

// fakeDaemon answers calls with canned replies and records them.
type fakeDaemon struct {
	replies map[string]fakeReply // by method
	calls   []string             // "method {args}"
	closed  int
}

type fakeReply struct {
	data ubus.Table
	err  error
}

func (f *fakeDaemon) call(_ context.Context, method string, args any) (ubus.Table, error) {
	f.calls = append(f.calls, method+" "+ubus.FormatJSON(args, -1))
	r, ok := f.replies[method]
	if !ok {
		return nil, &CallError{Method: method, Status: ubus.StatusMethodNotFound}
	}
	return r.data, r.err
}

func (f *fakeDaemon) close() { f.closed++ }

// harness runs the command against a fake daemon (nil: not running) and
// records the init script runs and the exec.
type harness struct {
	daemon *fakeDaemon
	runs   []string
	runErr error
	execd  []string // cgroup, argv and the added environment
	stdout strings.Builder
	stderr strings.Builder
}

func (h *harness) main(args ...string) int {
	a := &app{
		opts:   Options{InitScript: "/etc/init.d/mwan3", ReleaseFile: "testdata/openwrt_release", Timeout: DefaultTimeout},
		stdout: &h.stdout, stderr: &h.stderr,
		dial: func(context.Context) (caller, error) {
			if h.daemon == nil {
				return nil, fmt.Errorf("%w: ubus lookup \"mwan3\": Not found", errNotRunning)
			}
			return h.daemon, nil
		},
		gather: func(v6 bool) (*netState, error) { return &netState{}, nil },
		ipv6:   func() bool { return true },
		run: func(stdout, _ io.Writer, path string, args ...string) error {
			h.runs = append(h.runs, path+" "+strings.Join(args, " "))
			fmt.Fprintf(stdout, "ran %s\n", args[0])
			return h.runErr
		},
		exec: func(cgroup string, argv, env []string) error {
			h.execd = append([]string{cgroup}, argv...)
			for _, e := range env {
				for _, k := range []string{"FAMILY=", "DEVICE=", "SRCIP=", "FWMARK="} {
					if strings.HasPrefix(e, k) {
						h.execd = append(h.execd, e)
					}
				}
			}
			return errors.New("exec format error")
		},
	}
	return a.main(args)
}

func running(replies map[string]fakeReply) *fakeDaemon {
	return &fakeDaemon{replies: replies}
}

func ok(t ubus.Table) fakeReply { return fakeReply{data: t} }

func refused(method string, st ubus.Status, msg string) fakeReply {
	return fakeReply{data: ubus.Table{{Name: "error", Value: msg}}, err: &CallError{Method: method, Status: st, Message: msg}}
}

const notRunningMsg = "The service mwan3 is global disabled.\nPlease execute \"/etc/init.d/mwan3 start\" first.\n"

// TestCommands checks the arguments, messages and exit statuses of spec
// §8.8–8.10 and the calls each command makes.
func TestCommands(t *testing.T) {
	useOK := ubus.Table{{Name: "interface", Value: "wanb"}, {Name: "family", Value: "ipv4"}, {Name: "device", Value: "eth2"},
		{Name: "source", Value: "10.0.2.2"}, {Name: "mark", Value: "0x200"}, {Name: "cgroup", Value: "/sys/fs/cgroup/mwan3/wanb"}}
	with := func(t ubus.Table, name string, v any) ubus.Table {
		out := slices.Clone(t)
		for i := range out {
			if out[i].Name == name {
				out[i].Value = v
				return out
			}
		}
		return append(out, ubus.Field{Name: name, Value: v})
	}
	tests := []struct {
		name           string
		args           []string
		daemon         *fakeDaemon
		code           int
		stdout, stderr string
		calls          []string
		runs           []string
		execd          []string
	}{
		{name: "no command", code: 0, stdout: "Syntax: mwan3 [command]\n"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 0, stdout: "Syntax: mwan3 [command]\n"},
		{name: "help", args: []string{"help"}, code: 0, stdout: "Syntax: mwan3 [command]\n"},

		{name: "ifup without interface", args: []string{"ifup"}, daemon: running(nil), code: 0,
			stdout: "Expecting interface. Usage: mwan3 ifup <interface>\n"},
		{name: "ifup too many", args: []string{"ifup", "wan", "wanb"}, daemon: running(nil), code: 0,
			stdout: "Too many arguments. Usage: mwan3 ifup <interface>\n"},
		{name: "ifup not running", args: []string{"ifup", "wan"}, code: 1, stdout: notRunningMsg},
		{name: "ifup", args: []string{"ifup", "wan"}, daemon: running(map[string]fakeReply{"ifup": ok(nil)}), code: 0,
			calls: []string{`ifup {"interface":"wan"}`}},
		{name: "ifup not up", args: []string{"ifup", "wan"},
			daemon: running(map[string]fakeReply{"ifup": refused("ifup", ubus.StatusNoData, "The network interace 'wan' is not up.")}),
			code:   0, stdout: "The network interace 'wan' is not up.\nPlease execute 'ifup wan' first.\n"},
		{name: "ifup not mwan3", args: []string{"ifup", "lan"},
			daemon: running(map[string]fakeReply{"ifup": refused("ifup", ubus.StatusNotFound, "lan is not an enabled mwan3 interface")}),
			code:   0, stderr: "mwan3: ifup: lan is not an enabled mwan3 interface\n"},
		{name: "ifdown without interface", args: []string{"ifdown"}, code: 0,
			stdout: "Error: Expecting interface. Usage: mwan3 ifdown <interface>\n"},
		{name: "ifdown too many", args: []string{"ifdown", "a", "b"}, code: 0,
			stdout: "Error: Too many arguments. Usage: mwan3 ifdown <interface>\n"},
		{name: "ifdown", args: []string{"ifdown", "wanb"}, daemon: running(map[string]fakeReply{"ifdown": ok(nil)}), code: 0,
			calls: []string{`ifdown {"interface":"wanb"}`}},
		{name: "ifdown not running", args: []string{"ifdown", "wanb"}, code: 0, stdout: notRunningMsg},

		{name: "start", args: []string{"start"}, code: 0, stdout: "ran enable\nran start\n",
			runs: []string{"/etc/init.d/mwan3 enable", "/etc/init.d/mwan3 start"}},
		{name: "stop", args: []string{"stop"}, code: 0, stdout: "ran disable\nran stop\n",
			runs: []string{"/etc/init.d/mwan3 disable", "/etc/init.d/mwan3 stop"}},
		{name: "restart", args: []string{"restart"}, code: 0, stdout: "ran enable\nran stop\nran start\n",
			runs: []string{"/etc/init.d/mwan3 enable", "/etc/init.d/mwan3 stop", "/etc/init.d/mwan3 start"}},

		{name: "use without command", args: []string{"use", "wanb"}, code: 0, stderr: "no command specified for mwan3 use\n"},
		{name: "use without anything", args: []string{"use"}, code: 0, stderr: "no command specified for mwan3 use\n"},
		{name: "use not running", args: []string{"use", "wanb", "true"}, code: 1, stdout: notRunningMsg},
		{name: "use not mwan3", args: []string{"use", "lan", "true"},
			daemon: running(map[string]fakeReply{"use": refused("use", ubus.StatusNotFound, "lan is not an enabled mwan3 interface")}),
			code:   0, stderr: "could not find device for lan\n"},
		{name: "use no device", args: []string{"use", "wanb", "true"},
			daemon: running(map[string]fakeReply{"use": ok(with(with(useOK, "device", ""), "source", ""))}),
			code:   0, stderr: "could not find device for wanb\n"},
		{name: "use no source", args: []string{"use", "wanb", "true"},
			daemon: running(map[string]fakeReply{"use": ok(with(useOK, "source", ""))}),
			code:   0, stderr: "could not find src_ip for wanb\n"},
		{name: "use no cgroup", args: []string{"use", "wanb", "true"},
			daemon: running(map[string]fakeReply{"use": ok(with(with(useOK, "cgroup", ""), "cgroup_error", "cgroup v2 is not available: no cgroup2 file system is mounted"))}),
			code:   1, stderr: "mwan3 use: cgroup v2 is not available: no cgroup2 file system is mounted\n"},
		{name: "use", args: []string{"use", "wanb", "ping", "-c", "1", "198.51.100.1"},
			daemon: running(map[string]fakeReply{"use": ok(useOK)}), code: 1,
			stderr: "Running 'ping -c 1 198.51.100.1' with DEVICE=eth2 SRCIP=10.0.2.2 FWMARK=0x200 FAMILY=ipv4\nmwan3 use: exec format error\n",
			calls:  []string{`use {"interface":"wanb"}`},
			execd:  []string{"/sys/fs/cgroup/mwan3/wanb", "ping", "-c", "1", "198.51.100.1", "FAMILY=ipv4", "DEVICE=eth2", "SRCIP=10.0.2.2", "FWMARK=0x200"}},

		{name: "explain without destination", args: []string{"explain"}, code: 1,
			stderr: "mwan3 explain: expecting a destination address\n" + explainUsage + "\n"},
		{name: "explain bad port", args: []string{"explain", "1.2.3.4", "tcp", "http"}, code: 1,
			stderr: "mwan3 explain: destination port \"http\" is not a port number (1-65535)\n" + explainUsage + "\n"},
		{name: "explain not running", args: []string{"explain", "1.2.3.4"}, code: 1,
			stderr: "mwan3: the service is not running (no mwan3 object on ubus)\n"},
		{name: "explain refused", args: []string{"explain", "1.2.3.4", "bogus"},
			daemon: running(map[string]fakeReply{"explain": refused("explain", ubus.StatusInvalidArgument, `proto "bogus": unknown protocol`)}),
			code:   1, stderr: "mwan3: explain: proto \"bogus\": unknown protocol\n",
			calls: []string{`explain {"dst":"1.2.3.4","proto":"bogus"}`}},
		{name: "explain json", args: []string{"explain", "--json", "2001:db8::1", "--src=2001:db8::5", "udp", "53", "--sport", "5353"},
			daemon: running(map[string]fakeReply{"explain": ok(ubus.Table{{Name: "family", Value: "ipv6"}})}),
			code:   0, stdout: "{\n\t\"family\": \"ipv6\"\n}\n",
			calls: []string{`explain {"dst":"2001:db8::1","src":"2001:db8::5","proto":"udp","sport":5353,"dport":53}`}},

		{name: "status json not running", args: []string{"status", "--json"}, code: 1,
			stderr: "mwan3: the service is not running (no mwan3 object on ubus)\n"},
		{name: "interfaces json", args: []string{"interfaces", "--json"},
			daemon: running(map[string]fakeReply{"status": ok(ubus.Table{{Name: "interfaces", Value: ubus.Table{}}}), "diag": ok(ubus.Table{})}),
			code:   0, stdout: "{\n\t\"status\": {\n\t\t\"interfaces\": {\n\t\t\t\n\t\t}\n\t},\n\t\"diag\": {\n\t\t\n\t}\n}\n",
			calls: []string{`status {"section":"interfaces"}`, "diag null"}},
		{name: "connected json", args: []string{"connected", "--json"},
			daemon: running(map[string]fakeReply{"status": ok(ubus.Table{{Name: "connected", Value: ubus.Table{{Name: "ipv4", Value: []any{"10.0.0.0/8"}}}}})}),
			code:   0, stdout: "{\n\t\"connected\": {\n\t\t\"ipv4\": [\n\t\t\t\"10.0.0.0/8\"\n\t\t]\n\t}\n}\n",
			calls: []string{`status {"section":"connected"}`}},
		{name: "rules failing", args: []string{"rules"},
			daemon: running(map[string]fakeReply{"userrules": refused("userrules", ubus.StatusUnknownError, "netlink: permission denied")}),
			code:   1, stderr: "mwan3: userrules: netlink: permission denied\n"},
		{name: "interfaces without diag", args: []string{"interfaces"},
			daemon: running(map[string]fakeReply{"status": ok(ubus.Table{{Name: "interfaces", Value: ubus.Table{
				{Name: "wan", Value: ubus.Table{{Name: "status", Value: "offline"}, {Name: "tracking", Value: "active"}}}}}})}),
			code: 0, stdout: "Interface status:\n interface wan is offline and tracking is active\n\n",
			stderr: "mwan3: diag: Method not found\n"},
		{name: "internal without ruleset", args: []string{"internal"},
			daemon: running(map[string]fakeReply{"ruleset": refused("ruleset", ubus.StatusUnknownError, "nft: boom")}),
			code:   0, stdout: "Software-Version\n", stderr: "mwan3: ruleset: nft: boom\n"},
		{name: "internal json without ruleset", args: []string{"internal", "--json"},
			daemon: running(map[string]fakeReply{"ruleset": refused("ruleset", ubus.StatusUnknownError, "nft: boom")}),
			code:   1, stderr: "mwan3: ruleset: nft: boom\n"},
		{name: "policies stopped", args: []string{"policies"}, code: 0,
			stdout: "Current ipv4 policies:\n\nCurrent ipv6 policies:\n\n",
			stderr: "mwan3: the service is not running (no mwan3 object on ubus)\n"},
		{name: "internal stopped", args: []string{"internal", "ipv6"}, code: 0,
			stdout: "Software-Version\n" + dashes + "\nOpenWrt - 23.05.3\n\nOutput of \"ip -6 a show\"\n",
			stderr: "mwan3: the service is not running (no mwan3 object on ubus)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &harness{daemon: tt.daemon}
			code := h.main(tt.args...)
			if code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if !strings.HasPrefix(h.stdout.String(), tt.stdout) || tt.stdout == "" && h.stdout.Len() > 0 {
				t.Errorf("stdout:\n%s\nwant (prefix):\n%s", h.stdout.String(), tt.stdout)
			}
			if h.stderr.String() != tt.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", h.stderr.String(), tt.stderr)
			}
			if tt.daemon != nil && tt.calls != nil && !slices.Equal(tt.daemon.calls, tt.calls) {
				t.Errorf("calls %q, want %q", tt.daemon.calls, tt.calls)
			}
			if !slices.Equal(h.runs, tt.runs) {
				t.Errorf("init script runs %q, want %q", h.runs, tt.runs)
			}
			if !slices.Equal(h.execd, tt.execd) {
				t.Errorf("exec %q, want %q", h.execd, tt.execd)
			}
			if tt.daemon != nil && len(tt.daemon.calls) > 0 && tt.daemon.closed != 1 {
				t.Errorf("connection closed %d times, want once", tt.daemon.closed)
			}
		})
	}
}

// TestReadOnlyCallsOnly checks that the read-only commands call only
// methods that change nothing.
func TestReadOnlyCallsOnly(t *testing.T) {
	readOnly := []string{"status", "diag", "userrules", "ruleset", "explain"}
	for name, c := range commands {
		if !c.readOnly {
			continue
		}
		d := running(map[string]fakeReply{})
		h := &harness{daemon: d}
		args := []string{name}
		if name == "explain" {
			args = append(args, "192.0.2.1")
		}
		h.main(args...)
		if len(d.calls) == 0 {
			t.Errorf("%s made no call", name)
		}
		for _, c := range d.calls {
			if m, _, _ := strings.Cut(c, " "); !slices.Contains(readOnly, m) {
				t.Errorf("%s calls %s", name, c)
			}
		}
	}
}

// TestServiceScriptMissing: an init script that cannot run is an error.
func TestServiceScriptMissing(t *testing.T) {
	h := &harness{runErr: exec.ErrNotFound}
	if code := h.main("stop"); code != 1 {
		t.Errorf("stop = %d, want 1", code)
	}
	if len(h.runs) != 1 || !strings.Contains(h.stderr.String(), "/etc/init.d/mwan3 disable") {
		t.Errorf("runs %q, stderr %q", h.runs, h.stderr.String())
	}
	h = &harness{runErr: &exec.ExitError{}}
	if code := h.main("start"); code != 0 || len(h.runs) != 2 {
		t.Errorf("start with a failing script = %d after %q, want 0 after both", code, h.runs)
	}
}

// TestStatusOutput runs `mwan3 status` against spec §7.6's reply.
func TestStatusOutput(t *testing.T) {
	d := running(map[string]fakeReply{
		"status":    ok(loadReply(t, "status-example.json")),
		"diag":      ok(loadReply(t, "diag-example.json")),
		"userrules": ok(loadReply(t, "userrules.json")),
	})
	h := &harness{daemon: d}
	if code := h.main("status"); code != 0 {
		t.Fatalf("status = %d: %s", code, h.stderr.String())
	}
	if !strings.HasPrefix(h.stdout.String(), specInterfaces+specPolicies) {
		t.Errorf("status does not start with spec §8.2 and §8.3:\n%s", h.stdout.String())
	}
	checkGolden(t, "status-example", h.stdout.String())
}
