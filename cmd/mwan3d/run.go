package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
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
// [--hook-timeout D] [-v]`: it runs until SIGTERM or SIGINT, reloading on
// SIGHUP. Exit 0 after a clean stop, 1 when the daemon cannot start, 2 on
// usage errors.
func runDaemon(args []string, _, stderr io.Writer) int {
	fs := newFlags("run", "usage: mwan3d run [-c CONFIG] [-s UBUS_SOCKET] [--state-dir DIR] [--hooks-dir DIR] [--hotplug-call PATH] [-v]", stderr)
	opts := daemon.Options{}
	fs.StringVar(&opts.ConfigPath, "c", config.DefaultPath, "configuration `file`")
	fs.StringVar(&opts.UbusSocket, "s", "", "ubusd `socket` (default: the standard paths)")
	fs.StringVar(&opts.StateDir, "state-dir", daemon.DefaultStateDir, "`directory` of the runtime state (mwan3/, mwan3track/)")
	fs.StringVar(&opts.HooksDir, "hooks-dir", daemon.DefaultHooksDir, "`directory` of the user hook mwan3.user")
	fs.StringVar(&opts.HotplugCall, "hotplug-call", daemon.DefaultHotplugCall, "hotplug-call `program` for the tracker events (- for none)")
	fs.DurationVar(&opts.HookTimeout, "hook-timeout", daemon.DefaultHookTimeout, "kill a hook still running after this `duration`")
	verbose := fs.Bool("v", false, "log debug messages")
	if !parseFlags(fs, args) {
		return 2
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
