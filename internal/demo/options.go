package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"time"
)

// Sources of the latency, jitter and loss columns.
const (
	qualityAuto   = "auto"   // the daemon's figures when its status has them, else the demo's
	qualityDaemon = "daemon" // the daemon's per-target rolling statistics
	qualityDemo   = "demo"   // the demo's own pings to each WAN's gateway
)

// options are the demo's command-line flags.
type options struct {
	Binary      string
	Duration    time.Duration
	CutAfter    time.Duration
	Outage      time.Duration
	Cut         string
	Interval    int
	Window      time.Duration
	Quality     string
	Plain       bool
	PrintConfig bool
}

// Bounds of the flags.
const (
	maxWindow   = time.Minute
	maxInterval = 3600
	maxDuration = 24 * time.Hour
)

// parseOptions reads the flags; usage and errors go to stderr.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: demo [flags]   (as root; make demo builds and runs it)

Builds a router with two WANs in network namespaces, runs mwan3d on the
shipped default configuration (every interface enabled), shows a live status
table, cuts wan and restores it, then tears everything down.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Binary, "binary", "build/mwan3d", "the mwan3d binary to run")
	fs.DurationVar(&o.Duration, "duration", 0, "how long to run once every interface is online (0: until a while after the expected failback)")
	fs.DurationVar(&o.CutAfter, "cut-after", 8*time.Second, "cut wan this long after every interface is online")
	fs.DurationVar(&o.Outage, "outage", 0, "restore wan this long after the cut (0: once it has been offline for 10s)")
	fs.StringVar(&o.Cut, "cut", cutCarrier, "how to cut wan: carrier (pull the cable: immediate failover) or upstream (the ISP drops everything: the tracker detects it)")
	fs.IntVar(&o.Interval, "interval", 0, "track every interface every this many seconds (0: the configuration's)")
	fs.DurationVar(&o.Window, "window", 3*time.Second, "the traffic shares count the new connections of this last span")
	fs.StringVar(&o.Quality, "quality", qualityAuto, "latency/jitter/loss from: auto, daemon (its track_ip statistics) or demo (its own pings to each gateway)")
	fs.BoolVar(&o.Plain, "plain", false, "append plain snapshots even on a terminal")
	fs.BoolVar(&o.PrintConfig, "print-config", false, "print the configuration the demo runs the daemon on and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o, o.check()
}

// check validates the flag values.
func (o options) check() error {
	switch {
	case o.Binary == "":
		return fmt.Errorf("-binary: empty")
	case o.Duration < 0 || o.Duration > maxDuration:
		return fmt.Errorf("-duration %v: want 0..%v", o.Duration, maxDuration)
	case o.CutAfter < 0 || o.CutAfter > maxDuration:
		return fmt.Errorf("-cut-after %v: want 0..%v", o.CutAfter, maxDuration)
	case o.Outage < 0 || o.Outage > maxDuration:
		return fmt.Errorf("-outage %v: want 0..%v", o.Outage, maxDuration)
	case o.Cut != cutCarrier && o.Cut != cutUpstream:
		return fmt.Errorf("-cut %q: want %s or %s", o.Cut, cutCarrier, cutUpstream)
	case o.Interval < 0 || o.Interval > maxInterval:
		return fmt.Errorf("-interval %d: want 0..%d", o.Interval, maxInterval)
	case o.Window < time.Second || o.Window > maxWindow:
		return fmt.Errorf("-window %v: want 1s..%v", o.Window, maxWindow)
	case !slices.Contains([]string{qualityAuto, qualityDaemon, qualityDemo}, o.Quality):
		return fmt.Errorf("-quality %q: want %s, %s or %s", o.Quality, qualityAuto, qualityDaemon, qualityDemo)
	}
	return nil
}
