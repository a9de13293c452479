// Package ubuscli implements `mwan3d ubus`, a stand-in for OpenWrt's ubus
// command-line tool built on package ubus: same arguments, same output
// format (libubox JSON formatting, `ubus -v list` signatures, `{ "event":
// {...} }` lines), same error messages and exit statuses, so that people on
// a router without the ubus tool, scripts and tests can use it alike.
//
// Supported: list, call, listen, send, subscribe and wait_for, with the
// options -s, -t, -S and -v. The monitor command is not implemented.
package ubuscli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// Main runs the command with SIGINT and SIGTERM ending listen, subscribe
// and wait_for, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, "mwan3d ubus", args, stdout, stderr)
}

// cli holds the options of one run.
type cli struct {
	prog    string
	sock    string
	timeout int  // seconds; 30 by default
	tset    bool // -t given: also bounds listen and subscribe
	simple  bool // -S
	verbose bool // -v
	stdout  io.Writer
	stderr  io.Writer
	ready   chan struct{} // closed when listen or subscribe is set up (tests)
}

// Run runs the command; ctx ending stops listen, subscribe and wait_for
// like a signal stops the ubus tool. prog names the program in the usage
// text.
func Run(ctx context.Context, prog string, args []string, stdout, stderr io.Writer) int {
	c := &cli{prog: prog, timeout: 30, stdout: stdout, stderr: stderr}
	return c.run(ctx, args)
}

func (c *cli) run(ctx context.Context, args []string) int {
	i := 0
	for ; i < len(args) && len(args[i]) > 1 && args[i][0] == '-'; i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		for j := 1; j < len(a); j++ {
			switch a[j] {
			case 'S':
				c.simple = true
			case 'v':
				c.verbose = true
			case 's', 't':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return c.usage()
					}
					i++
					val = args[i]
				}
				if a[j] == 's' {
					c.sock = val
				} else {
					c.timeout, c.tset = atoi(val), true
				}
				j = len(a)
			default:
				return c.usage()
			}
		}
	}
	args = args[i:]
	if len(args) < 1 {
		return c.usage()
	}
	cmd, args := args[0], args[1:]
	run := map[string]func(context.Context, *ubus.Conn, []string) int{
		"list": c.list, "call": c.call, "listen": c.listen, "send": c.send,
		"subscribe": c.subscribe, "wait_for": c.waitFor,
	}[cmd]

	dctx, cancel := c.deadline(ctx)
	conn, err := ubus.Dial(dctx, c.sock, ubus.WithoutReconnect(), ubus.WithoutResubscribe())
	cancel()
	if err != nil {
		if !c.simple {
			fmt.Fprintln(c.stderr, "Failed to connect to ubus")
		}
		return exit(-1)
	}
	defer conn.Close()

	ret := -2
	if run != nil {
		ret = run(ctx, conn, args)
	}
	if ret > 0 && !c.simple {
		fmt.Fprintf(c.stderr, "Command failed: %s\n", ubus.Status(ret))
	} else if ret == -2 {
		c.usage()
	}
	return exit(ret)
}

// exit turns a return value into a process exit status, as the shell sees
// the C tool's return from main.
func exit(ret int) int { return ret & 0xff }

// atoi parses like C's atoi: leading digits, 0 when there are none.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t")
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

func (c *cli) usage() int {
	fmt.Fprintf(c.stderr, "Usage: %s [<options>] <command> [arguments...]\n"+
		"Options:\n"+
		" -s <socket>:\t\tSet the unix domain socket to connect to\n"+
		" -t <timeout>:\t\tSet the timeout (in seconds) for a command to complete\n"+
		" -S:\t\t\tUse simplified output (for scripts)\n"+
		" -v:\t\t\tMore verbose output\n"+
		"\n"+
		"Commands:\n"+
		" - list [<path>]\t\t\tList objects\n"+
		" - call <path> <method> [<message>]\tCall an object method\n"+
		" - subscribe <path> [<path>...]\tSubscribe to object(s) notifications\n"+
		" - listen [<path>...]\t\t\tListen for events\n"+
		" - send <type> [<message>]\t\tSend an event\n"+
		" - wait_for <object> [<object>...]\tWait for multiple objects to appear on ubus\n"+
		"\n", c.prog)
	return 1
}

// deadline bounds one request by the -t timeout (none when it is 0).
func (c *cli) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(c.timeout)*time.Second)
}

// status returns the ubus status of a failed request as the C tool's int.
func status(err error) int { return int(ubus.StatusOf(err)) }

// failed reports a failed call like the ubus tool's ubus_cli_error: a
// message naming the command (unless -S or stderr is a terminal) and the
// negated status, which the shell sees as 256 − status.
func (c *cli) failed(cmd string, args []string, st int) int {
	if c.simple || isTerminal(c.stderr) {
		return st
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Command failed: ubus %s ", cmd)
	for _, a := range args {
		sb.WriteString(a + " ")
	}
	fmt.Fprintf(&sb, "(%s)\n", ubus.Status(st))
	io.WriteString(c.stderr, sb.String())
	return -st
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (c *cli) list(ctx context.Context, conn *ubus.Conn, args []string) int {
	if len(args) > 0 && args[0] == "-v" {
		c.verbose = true
		args = args[1:]
	}
	if len(args) > 1 {
		return -2
	}
	path := ""
	if len(args) == 1 {
		path = args[0]
	}
	dctx, cancel := c.deadline(ctx)
	defer cancel()
	objs, err := conn.Lookup(dctx, path)
	if err != nil {
		return status(err)
	}
	for _, o := range objs {
		if c.simple || !c.verbose {
			fmt.Fprintf(c.stdout, "%s\n", o.Path)
			continue
		}
		fmt.Fprintf(c.stdout, "'%s' @%08x\n", o.Path, o.ID)
		for _, m := range o.Signature {
			fmt.Fprintf(c.stdout, "\t%s:%s\n", ubus.FormatJSON(m.Name, -1), ubus.FormatJSON(typeNames(m.Value), -1))
		}
	}
	return 0
}

// typeNames replaces the int32 type numbers of a signature with the names
// `ubus -v list` prints; int64, int16, double and unspec are "(unknown)".
func typeNames(v any) any {
	switch v := v.(type) {
	case int32:
		switch ubus.Type(v) {
		case ubus.TypeInt8:
			return "Boolean"
		case ubus.TypeInt32:
			return "Integer"
		case ubus.TypeString:
			return "String"
		case ubus.TypeArray:
			return "Array"
		case ubus.TypeTable:
			return "Table"
		}
		return "(unknown)"
	case ubus.Table:
		out := make(ubus.Table, len(v))
		for i, f := range v {
			out[i] = ubus.Field{Name: f.Name, Value: typeNames(f.Value)}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = typeNames(e)
		}
		return out
	}
	return v
}

func (c *cli) call(ctx context.Context, conn *ubus.Conn, args []string) int {
	if len(args) < 2 || len(args) > 3 {
		return -2
	}
	var data ubus.Table
	if len(args) == 3 {
		var err error
		if data, err = ubus.ParseJSON([]byte(args[2])); err != nil {
			return c.failed("call", args, int(ubus.StatusParseError))
		}
	}
	lctx, cancel := c.deadline(ctx)
	id, err := conn.LookupID(lctx, args[0])
	cancel()
	if err != nil {
		return status(err)
	}
	ictx, cancel := c.deadline(ctx)
	defer cancel()
	tables, err := conn.Invoke(ictx, id, args[1], data)
	indent := 0
	if c.simple {
		indent = -1
	}
	for _, t := range tables {
		fmt.Fprintln(c.stdout, ubus.FormatJSON(t, indent))
	}
	if err != nil {
		return c.failed("call", args, status(err))
	}
	return 0
}

// printEvent prints an event or a notification like `ubus listen`.
func (c *cli) printEvent(name string, data ubus.Table) {
	fmt.Fprintf(c.stdout, "{ \"%s\": %s }\n", name, ubus.FormatJSON(data, -1))
	if f, ok := c.stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
}

// lifetime bounds listen and subscribe by -t when it was given.
func (c *cli) lifetime(ctx context.Context) (context.Context, context.CancelFunc) {
	if !c.tset || c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(c.timeout)*time.Second)
}

func (c *cli) listen(ctx context.Context, conn *ubus.Conn, args []string) int {
	if len(args) == 0 {
		args = []string{"*"}
	}
	lctx, cancel := c.lifetime(ctx)
	defer cancel()
	events := make(chan func(), 64)
	h := func(name string, data ubus.Table) { queue(lctx, events, func() { c.printEvent(name, data) }) }
	var l *ubus.Listener
	var err error
	for _, p := range args {
		rctx, cancel := c.deadline(ctx)
		if l == nil {
			l, err = conn.Listen(rctx, p, h)
		} else {
			err = l.Add(rctx, p)
		}
		cancel()
		if err != nil {
			if !c.simple {
				fmt.Fprintf(c.stderr, "Error while registering for event '%s': %s\n", p, ubus.StatusOf(err))
			}
			return -1
		}
	}
	return c.serve(lctx, events)
}

// queue hands a print to serve, unless the command is ending.
func queue(ctx context.Context, out chan<- func(), f func()) {
	select {
	case out <- f:
	case <-ctx.Done():
	}
}

// serve prints what the handlers queue until ctx (the command's lifetime)
// ends.
func (c *cli) serve(ctx context.Context, out chan func()) int {
	if c.ready != nil {
		close(c.ready)
	}
	for {
		select {
		case f := <-out:
			f()
		case <-ctx.Done():
			for { // print what already arrived
				select {
				case f := <-out:
					f()
				default:
					return 0
				}
			}
		}
	}
}

func (c *cli) subscribe(ctx context.Context, conn *ubus.Conn, args []string) int {
	if len(args) < 1 {
		return -2
	}
	lctx, cancel := c.lifetime(ctx)
	defer cancel()
	notes := make(chan func(), 64)
	h := func(typ string, data ubus.Table) error {
		queue(lctx, notes, func() { c.printEvent(typ, data) })
		return nil
	}
	var s *ubus.Subscriber
	for _, p := range args {
		rctx, cancel := c.deadline(ctx)
		var err error
		if s == nil {
			s, err = conn.Subscribe(rctx, p, h)
		} else {
			err = s.Add(rctx, p)
		}
		cancel()
		if err != nil {
			return status(err)
		}
	}
	return c.serve(lctx, notes)
}

func (c *cli) send(ctx context.Context, conn *ubus.Conn, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		return -2
	}
	data := ubus.Table{}
	if len(args) == 2 {
		var err error
		if data, err = ubus.ParseJSON([]byte(args[1])); err != nil {
			return int(ubus.StatusParseError)
		}
	}
	dctx, cancel := c.deadline(ctx)
	defer cancel()
	if err := conn.Send(dctx, args[0], data); err != nil {
		return status(err)
	}
	return 0
}

func (c *cli) waitFor(ctx context.Context, conn *ubus.Conn, args []string) int {
	if len(args) < 1 {
		return -2
	}
	wctx, cancel := c.deadline(ctx)
	defer cancel()
	pending := map[string]bool{}
	for _, p := range args {
		pending[p] = true
	}
	added := make(chan string, 64)
	// Watch before listing, so that an object added in between is seen.
	if _, err := conn.Listen(wctx, "ubus.object.add", func(_ string, data ubus.Table) {
		if p, ok := data.GetString("path"); ok {
			added <- p
		}
	}); err != nil {
		return status(err)
	}
	objs, err := conn.Lookup(wctx, "")
	if err != nil {
		return status(err)
	}
	for _, o := range objs {
		delete(pending, o.Path)
	}
	for len(pending) > 0 {
		select {
		case p := <-added:
			delete(pending, p)
		case <-wctx.Done():
			if errors.Is(wctx.Err(), context.DeadlineExceeded) {
				return int(ubus.StatusTimeout)
			}
			return 0
		}
	}
	return 0
}
