// Command demo shows mwan3d at work for a newcomer, as root: `make demo`
// builds the daemon and this program and runs it.
//
// It builds a router with two dual-stack WANs, a LAN client, an ISP per WAN
// and an internet host in network namespaces (internal/bed on
// internal/testbed), runs `mwan3d run` there on the package's default
// configuration (embedded here, with every interface enabled: the package
// enables wan only), and prints a status table about once a second: each
// interface's state and since when, latency, jitter and loss, and the
// share of the LAN client's new connections each WAN carried over the last
// seconds, with a log of the daemon's mwan3.interface ubus events and the
// demo's own actions. A few seconds in it cuts wan (by default its carrier,
// as if the cable were pulled; -cut upstream lets the tracker find out),
// restores it later, and ends once failback has been visible for a while
// (the times come from the configuration's tracking options) or on
// Ctrl-C/SIGTERM, tearing everything down and checking that nothing is
// left. It exits non-zero when it did not see failover and failback.
//
// On a terminal the table is redrawn in place; otherwise (a pipe, CI logs)
// the snapshots are appended as plain text.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	cfg, err := buildConfig(defaultConfig, o.Interval)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if o.PrintConfig {
		fmt.Fprint(stdout, cfg.Text)
		return 0
	}
	return play(o, cfg, stdout, stderr)
}
