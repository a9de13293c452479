package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/mwan3d/mwan3d/ubus"
)

// execFunc moves the process into a cgroup v2 directory and replaces it
// with argv; it returns only when that fails.
type execFunc func(cgroup string, argv, env []string) error

// use is spec §8.9's `mwan3 use <iface> <command…>`, without legacy's
// LD_PRELOAD shim: the command runs in the interface's cgroup, whose
// sockets the daemon's ruleset marks for the interface. Diagnostics go to
// stderr; the status is the command's, 0 for legacy's early errors, and
// 1 for mwan3d's own (service not running, no cgroup).
func (a *app) use(args []string) int {
	var iface string
	var argv []string
	if len(args) > 0 {
		iface, argv = args[0], args[1:]
	}
	if len(argv) == 0 {
		fmt.Fprintln(a.stderr, "no command specified for mwan3 use")
		return 0
	}
	rep, err := a.call("use", ubus.Table{{Name: "interface", Value: iface}})
	var ce *CallError
	switch {
	case err == nil:
	case errors.Is(err, errNotRunning):
		a.notRunning()
		return 1
	case errors.As(err, &ce) && ce.Status == ubus.StatusNotFound:
		fmt.Fprintf(a.stderr, "could not find device for %s\n", iface)
		return 0
	default:
		fmt.Fprintf(a.stderr, "mwan3 use: %v\n", err)
		return 1
	}
	dev, src := fieldString(rep, "device", ""), fieldString(rep, "source", "")
	family, mark := fieldString(rep, "family", ""), fieldString(rep, "mark", "")
	switch {
	case dev == "":
		fmt.Fprintf(a.stderr, "could not find device for %s\n", iface)
		return 0
	case src == "":
		fmt.Fprintf(a.stderr, "could not find src_ip for %s\n", iface)
		return 0
	case family == "":
		fmt.Fprintf(a.stderr, "could not find family for %s. Using ipv4.\n", iface)
		family = "ipv4"
	}
	cgroup := fieldString(rep, "cgroup", "")
	if msg := fieldString(rep, "cgroup_error", ""); msg != "" || cgroup == "" {
		if msg == "" {
			msg = "cgroup v2 is not available"
		}
		fmt.Fprintf(a.stderr, "mwan3 use: %s\n", msg)
		return 1
	}
	fmt.Fprintf(a.stderr, "Running '%s' with DEVICE=%s SRCIP=%s FWMARK=%s FAMILY=%s\n", strings.Join(argv, " "), dev, src, mark, family)
	a.conn.close()
	a.conn = nil
	env := append(os.Environ(), "FAMILY="+family, "DEVICE="+dev, "SRCIP="+src, "FWMARK="+mark)
	err = a.exec(cgroup, argv, env)
	fmt.Fprintf(a.stderr, "mwan3 use: %v\n", err)
	return 1
}

// shellArgv is how `mwan3 use` runs a first word that is not a program
// (a shell built-in, say): legacy ran "$*" in its shell.
func shellArgv(argv []string) []string {
	return []string{"sh", "-c", strings.Join(argv, " ")}
}

// runCommand runs a program with the command's output.
func runCommand(stdout, stderr io.Writer, path string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}
