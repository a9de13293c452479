// Package cli is the mwan3 command (spec §8): the same subcommands, texts,
// layout and exit statuses as legacy's /usr/sbin/mwan3, printed from what
// the daemon answers over ubus (its mwan3 object) and, for `internal`, from
// rtnetlink dumps. Read-only commands never create state, and print the
// daemon's replies as JSON with --json. `use` runs a command in the
// interface's cgroup v2 group, which the daemon's ruleset marks for that
// interface, and `explain` shows how a connection would be routed.
//
// Where the output differs from legacy's, on purpose:
//   - `use` prints the interface's mark as FWMARK (the mark its traffic
//     gets), where legacy printed the default mark its shim set;
//   - `internal` lists table inet mwan3 in place of the iptables mangle
//     table, and prints `ip` output without qdiscs and IPv6 route
//     preferences (see iproute.go);
//   - `rules` shows several addresses of a rule in one line, comma
//     separated, where iptables had one line per address;
//   - with the service stopped, the read-only commands print their
//     headers only (legacy read the kernel and the configuration itself)
//     and say on stderr that the service is not running;
//   - help lists `explain` and mentions --json.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// Defaults of Options.
const (
	DefaultInitScript  = "/etc/init.d/mwan3"
	DefaultReleaseFile = "/etc/openwrt_release"
	DefaultTimeout     = 10 * time.Second
)

// Options configure the command.
type Options struct {
	// Socket is ubusd's socket; "" tries the standard paths.
	Socket string
	// InitScript is the service's init script (DefaultInitScript when
	// empty), run by start, stop and restart.
	InitScript string
	// ReleaseFile is read for `internal`'s software version
	// (DefaultReleaseFile when empty).
	ReleaseFile string
	// Timeout bounds each call to the daemon (DefaultTimeout when 0).
	Timeout time.Duration
}

// app is one run of the command.
type app struct {
	opts           Options
	stdout, stderr io.Writer
	json           bool

	// dial connects to the daemon (dialDaemon; tests replace it).
	dial func(ctx context.Context) (caller, error)
	// gather reads the kernel for internal (gatherNet).
	gather func(v6 bool) (*netState, error)
	// ipv6 tells whether the kernel has IPv6 (ipv6Supported).
	ipv6 func() bool
	// run runs the init script; exec replaces the process (use).
	run  func(stdout, stderr io.Writer, path string, args ...string) error
	exec execFunc

	conn caller
}

// command is one subcommand; readOnly ones take --json.
type command struct {
	run      func(a *app, args []string) int
	readOnly bool
}

var commands = map[string]command{
	"interfaces": {(*app).interfaces, true},
	"policies":   {(*app).policies, true},
	"connected":  {(*app).connected, true},
	"rules":      {(*app).rules, true},
	"status":     {(*app).status, true},
	"internal":   {(*app).internal, true},
	"explain":    {(*app).explain, true},
	"ifup":       {(*app).ifup, false},
	"ifdown":     {(*app).ifdown, false},
	"use":        {(*app).use, false},
	"start":      {(*app).start, false},
	"stop":       {(*app).stop, false},
	"restart":    {(*app).restart, false},
}

// Main runs `mwan3 <command> [args]` and returns the exit status: 0 for
// everything legacy answered 0 (including help for an unknown command),
// 1 for ifup while the service is not running, the command's own for
// use, and 1 for mwan3d's own errors (a failed call, --json without the
// service, bad explain arguments).
func Main(args []string, stdout, stderr io.Writer, opts Options) int {
	if opts.InitScript == "" {
		opts.InitScript = DefaultInitScript
	}
	if opts.ReleaseFile == "" {
		opts.ReleaseFile = DefaultReleaseFile
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	a := &app{opts: opts, stdout: stdout, stderr: stderr, gather: gatherNet, ipv6: ipv6Supported,
		run: runCommand, exec: execCommand}
	a.dial = func(ctx context.Context) (caller, error) { return dialDaemon(ctx, opts.Socket) }
	return a.main(args)
}

func (a *app) main(args []string) int {
	defer func() {
		if a.conn != nil {
			a.conn.close()
		}
	}()
	if len(args) == 0 {
		writeHelp(a.stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		writeHelp(a.stdout)
		return 0
	}
	rest := args[1:]
	if c.readOnly {
		if i := slices.Index(rest, "--json"); i >= 0 {
			a.json = true
			rest = slices.Delete(slices.Clone(rest), i, i+1)
		}
	}
	return c.run(a, rest)
}

// call calls a method of the daemon, connecting first if needed.
func (a *app) call(method string, args any) (ubus.Table, error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.Timeout)
	defer cancel()
	if a.conn == nil {
		c, err := a.dial(ctx)
		if err != nil {
			return nil, err
		}
		a.conn = c
	}
	return a.conn.call(ctx, method, args)
}

// reply is one call of a read-only command.
type reply struct {
	method string
	args   any
	// optional calls may fail (an older daemon, a kernel read that
	// failed): the error is reported and the command prints without it.
	optional bool
	data     ubus.Table
}

// outcome is what a read-only command does after its calls.
type outcome int

const (
	// fetched: print the replies.
	fetched outcome = iota
	// stopped: the service is not running; print the command's layout
	// with no entries (legacy printed its headers then too).
	stopped
	// done: the replies were printed as JSON, or an error; exit with
	// the status fetch returned.
	done
)

// fetch makes the calls of a read-only command. A service that is not
// running is reported on stderr (with --json the status is then 1);
// other failures are printed and give status 1.
func (a *app) fetch(calls ...*reply) (outcome, int) {
	for _, c := range calls {
		var err error
		if c.data, err = a.call(c.method, c.args); err != nil {
			if errors.Is(err, errNotRunning) {
				fmt.Fprintln(a.stderr, "mwan3: the service is not running (no mwan3 object on ubus)")
				if a.json {
					return done, 1
				}
				return stopped, 0
			}
			fmt.Fprintf(a.stderr, "mwan3: %v\n", err)
			if c.optional && !a.json {
				c.data = nil
				continue
			}
			return done, 1
		}
	}
	if a.json {
		a.writeJSON(calls...)
		return done, 0
	}
	return fetched, 0
}

// writeJSON prints the replies as the ubus tool does: one reply as it
// is, several as an object keyed by method.
func (a *app) writeJSON(calls ...*reply) {
	if len(calls) == 1 {
		fmt.Fprintln(a.stdout, ubus.FormatJSON(calls[0].data, 0))
		return
	}
	t := ubus.Table{}
	for _, c := range calls {
		t = append(t, ubus.Field{Name: c.method, Value: c.data})
	}
	fmt.Fprintln(a.stdout, ubus.FormatJSON(t, 0))
}

func sectionArg(name string) ubus.Table { return ubus.Table{{Name: "section", Value: name}} }

func (a *app) interfaces(_ []string) int {
	st, dg := &reply{method: "status", args: sectionArg("interfaces")}, &reply{method: "diag", optional: true}
	out, code := a.fetch(st, dg)
	if out != done {
		writeInterfaces(a.stdout, st.data, dg.data)
	}
	return code
}

func (a *app) policies(_ []string) int {
	st, dg := &reply{method: "status", args: sectionArg("policies")}, &reply{method: "diag", optional: true}
	out, code := a.fetch(st, dg)
	if out != done {
		writePolicies(a.stdout, st.data, dg.data, a.ipv6())
	}
	return code
}

func (a *app) connected(_ []string) int {
	st := &reply{method: "status", args: sectionArg("connected")}
	out, code := a.fetch(st)
	if out != done {
		writeConnected(a.stdout, st.data, a.ipv6())
	}
	return code
}

func (a *app) rules(_ []string) int {
	ur := &reply{method: "userrules"}
	out, code := a.fetch(ur)
	if out != done {
		writeRules(a.stdout, ur.data, a.ipv6())
	}
	return code
}

func (a *app) status(_ []string) int {
	st, dg, ur := &reply{method: "status"}, &reply{method: "diag", optional: true}, &reply{method: "userrules", optional: true}
	out, code := a.fetch(st, dg, ur)
	if out != done {
		v6 := a.ipv6()
		writeInterfaces(a.stdout, st.data, dg.data)
		writePolicies(a.stdout, st.data, dg.data, v6)
		writeConnected(a.stdout, st.data, v6)
		writeRules(a.stdout, ur.data, v6)
	}
	return code
}

func (a *app) internal(args []string) int {
	v6 := len(args) > 0 && args[0] == "ipv6"
	rs := &reply{method: "ruleset", optional: true}
	if out, code := a.fetch(rs); out == done {
		return code
	}
	release := "unknown"
	if data, err := os.ReadFile(a.opts.ReleaseFile); err == nil {
		release = releaseVersion(string(data))
	}
	st, err := a.gather(v6)
	writeInternal(a.stdout, v6, release, st, err, fieldString(rs.data, "text", ""))
	return 0
}

func (a *app) explain(args []string) int {
	q, err := parseExplain(args)
	if err != nil {
		fmt.Fprintf(a.stderr, "mwan3 explain: %v\n%s\n", err, explainUsage)
		return 1
	}
	ex := &reply{method: "explain", args: q.args()}
	switch out, code := a.fetch(ex); out {
	case done:
		return code
	case stopped:
		return 1 // nothing to explain without the daemon
	}
	writeExplain(a.stdout, q, ex.data)
	return 0
}

// notRunning prints legacy's message for a service that is not running.
func (a *app) notRunning() {
	fmt.Fprintf(a.stdout, "The service mwan3 is global disabled.\nPlease execute \"%s start\" first.\n", a.opts.InitScript)
}

// ifaceArg checks the single interface argument of ifup and ifdown.
func (a *app) ifaceArg(cmd, errPrefix string, args []string) (string, bool) {
	switch {
	case len(args) == 0:
		fmt.Fprintf(a.stdout, "%sExpecting interface. Usage: mwan3 %s <interface>\n", errPrefix, cmd)
	case len(args) > 1:
		fmt.Fprintf(a.stdout, "%sToo many arguments. Usage: mwan3 %s <interface>\n", errPrefix, cmd)
	default:
		return args[0], true
	}
	return "", false
}

// ifup is spec §8.8's ifup: exit 1 only when the service is not running.
func (a *app) ifup(args []string) int {
	name, ok := a.ifaceArg("ifup", "", args)
	if !ok {
		return 0
	}
	_, err := a.call("ifup", ubus.Table{{Name: "interface", Value: name}})
	var ce *CallError
	switch {
	case err == nil:
	case errors.Is(err, errNotRunning):
		a.notRunning()
		return 1
	case errors.As(err, &ce) && ce.Status == ubus.StatusNoData:
		fmt.Fprintf(a.stdout, "%s\nPlease execute 'ifup %s' first.\n", ce.Message, name)
	default:
		fmt.Fprintf(a.stderr, "mwan3: %v\n", err)
	}
	return 0
}

// ifdown is spec §8.8's ifdown; it always exits 0, as legacy's.
func (a *app) ifdown(args []string) int {
	name, ok := a.ifaceArg("ifdown", "Error: ", args)
	if !ok {
		return 0
	}
	_, err := a.call("ifdown", ubus.Table{{Name: "interface", Value: name}})
	switch {
	case err == nil:
	case errors.Is(err, errNotRunning):
		a.notRunning()
	default:
		fmt.Fprintf(a.stderr, "mwan3: %v\n", err)
	}
	return 0
}

// service runs the init script with each action in turn, as legacy did
// whatever the script answered (spec §8.10); its output is the command's.
// The status is 1 only when the script cannot be run.
func (a *app) service(actions ...string) int {
	for _, act := range actions {
		if err := a.run(a.stdout, a.stderr, a.opts.InitScript, act); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				continue
			}
			fmt.Fprintf(a.stderr, "mwan3: %s %s: %v\n", a.opts.InitScript, act, err)
			return 1
		}
	}
	return 0
}

func (a *app) start(_ []string) int   { return a.service("enable", "start") }
func (a *app) stop(_ []string) int    { return a.service("disable", "stop") }
func (a *app) restart(_ []string) int { return a.service("enable", "stop", "start") }
