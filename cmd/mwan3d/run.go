package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/daemon"
)

func init() {
	register("run", "run the daemon (SIGHUP reloads, SIGTERM/SIGINT stop)", runDaemon)
}

// runDaemon implements `mwan3d run [-c CONFIG] [-s UBUS_SOCKET]
// [--state-dir DIR] [--hooks-dir DIR] [--hotplug-call PATH]
// [--hook-timeout D] [--cgroup DIR] [--gogc PERCENT] [--memory-limit SIZE]
// [-v]`: it runs until SIGTERM or SIGINT, reloading on SIGHUP. Exit 0
// after a clean stop, 1 when the daemon cannot start, 2 on usage errors.
func runDaemon(args []string, _, stderr io.Writer) int {
	fs := newFlags("run", "usage: mwan3d run [-c CONFIG] [-s UBUS_SOCKET] [--state-dir DIR] [--hooks-dir DIR] [--hotplug-call PATH] [--cgroup DIR] [-v]", stderr)
	opts := daemon.Options{}
	fs.StringVar(&opts.ConfigPath, "c", config.DefaultPath, "configuration `file`")
	fs.StringVar(&opts.UbusSocket, "s", "", "ubusd `socket` (default: the standard paths)")
	fs.StringVar(&opts.StateDir, "state-dir", daemon.DefaultStateDir, "`directory` of the runtime state (mwan3/, mwan3track/)")
	fs.StringVar(&opts.HooksDir, "hooks-dir", daemon.DefaultHooksDir, "`directory` of the user hook mwan3.user")
	fs.StringVar(&opts.HotplugCall, "hotplug-call", daemon.DefaultHotplugCall, "hotplug-call `program` for the tracker events (- for none)")
	fs.DurationVar(&opts.HookTimeout, "hook-timeout", daemon.DefaultHookTimeout, "kill a hook still running after this `duration`")
	fs.StringVar(&opts.CgroupDir, "cgroup", daemon.CgroupAuto, "cgroup v2 `directory` for mwan3 use (auto: mwan3/ under the cgroup2 mount; empty: none)")
	gogc := fs.Int("gogc", defaultGOGC, "garbage collection target `percent` (as GOGC; the environment's GOGC applies when the flag is not given)")
	limit := fs.String("memory-limit", "", "soft memory `limit` of the Go runtime, e.g. 12MiB (as GOMEMLIMIT); empty: none")
	verbose := fs.Bool("v", false, "log debug messages")
	if !parseFlags(fs, args) {
		return 2
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	gc, mem, err := memorySettings(*gogc, given["gogc"], *limit, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "mwan3d run: %v\n", err)
		fs.Usage()
		return 2
	}
	if gc != keepSetting {
		debug.SetGCPercent(gc)
	}
	if mem != keepSetting {
		debug.SetMemoryLimit(mem)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	// procd sends stderr to syslog, which adds the time itself.
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	opts.Reload = reload
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default: // a reload is pending already
				}
			case <-ctx.Done():
				return
			}
		}
	})
	if err := daemon.Run(ctx, opts); err != nil {
		fmt.Fprintf(stderr, "mwan3d run: %v\n", err)
		return 1
	}
	return 0
}

// defaultGOGC is the collector's target of `mwan3d run`: half the Go
// default. The daemon's live heap is small (under 1 MB with 8 tracked
// WANs), so the heap goal drops from 4 MB to 2 MB for a few more
// collections of a tiny heap (measured: about 2 MB less resident memory,
// no measurable CPU; daemon.BenchmarkBedRSS).
const defaultGOGC = 50

// keepSetting tells memorySettings' caller to leave a setting as the
// runtime has it.
const keepSetting = -2

// memorySettings decides the runtime's GC percent and memory limit: an
// explicit --gogc wins, then the environment's GOGC (which the runtime
// read itself), then defaultGOGC; a --memory-limit (bytes with an optional
// B, KiB, MiB or GiB suffix) is set, else GOMEMLIMIT or none stays.
func memorySettings(gogc int, gogcGiven bool, limit string, getenv func(string) string) (gc int, mem int64, err error) {
	gc, mem = keepSetting, keepSetting
	switch {
	case gogcGiven && gogc < 0:
		return gc, mem, fmt.Errorf("--gogc %d: want a percent >= 0", gogc)
	case gogcGiven:
		gc = gogc
	case getenv("GOGC") == "":
		gc = defaultGOGC
	}
	if limit != "" {
		if mem, err = parseSize(limit); err != nil {
			return gc, mem, fmt.Errorf("--memory-limit: %w", err)
		}
	}
	return gc, mem, nil
}

// parseSize reads a size in bytes as GOMEMLIMIT writes it: a number with
// an optional B, KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive size such as 16MiB, got " + strconv.Quote(s))
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("size too large: " + strconv.Quote(s))
	}
	return n * mult, nil
}
