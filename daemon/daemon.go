package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/rtsync"
	"github.com/mwan3d/mwan3d/track"
	"github.com/mwan3d/mwan3d/ubus"
)

// Defaults of Options.
const (
	DefaultStateDir    = "/var/run"
	DefaultHooksDir    = "/etc"
	DefaultHotplugCall = "/sbin/hotplug-call"
	// DefaultStartupWait bounds how long the daemon waits at start for
	// netifd's dump and the first route reconcile before it applies its
	// ruleset anyway.
	DefaultStartupWait = 5 * time.Second
)

// Options configure the daemon. Every path is configurable so that tests
// and demos run without touching /etc and /var/run.
type Options struct {
	// ConfigPath is the mwan3 configuration (config.DefaultPath when empty).
	ConfigPath string
	// UbusSocket is ubusd's socket (ubus.DefaultSockets when empty).
	UbusSocket string
	// StateDir holds the runtime directories: StateDir/mwan3, present while
	// the daemon has its state up (legacy's "running"), and
	// StateDir/mwan3track, the tracker files (spec §5.8).
	// DefaultStateDir when empty.
	StateDir string
	// HooksDir holds the user hook mwan3.user (DefaultHooksDir when empty).
	HooksDir string
	// HotplugCall is run as `<HotplugCall> iface` for the tracker events
	// (DefaultHotplugCall when empty; "-" disables it).
	HotplugCall string
	// HookTimeout bounds one hook run (DefaultHookTimeout when 0).
	HookTimeout time.Duration
	// StartupWait bounds the wait for netifd and the routes at start
	// (DefaultStartupWait when 0).
	StartupWait time.Duration
	// Logger receives everything the daemon logs (discarded when nil).
	Logger *slog.Logger
	// Reload delivers reload requests (SIGHUP).
	Reload <-chan struct{}
	// Kernel replaces the kernel-touching parts (tests); nil opens the
	// real ones (Linux only).
	Kernel *Kernel
	// Legacy are the programs of the one-time sweep of legacy mwan3's
	// leftovers at start (iptables, ip6tables, ipset).
	Legacy LegacyTools
	// CgroupDir holds the cgroup v2 directories of `mwan3 use`, one per
	// enabled interface: CgroupAuto finds the cgroup2 mount, "" leaves
	// `mwan3 use` unavailable.
	CgroupDir string
}

// NFT applies rendered rulesets: nft.Applier, or nfttest.Fake in tests.
type NFT interface {
	Apply(*nft.Plan) error
	Counters(*nft.Plan) ([]nft.CounterValue, error)
	Remove() error
}

// Routes keeps the ip rules and the interface tables in sync:
// rtsync.Watcher, or a fake in tests.
type Routes interface {
	SetInput(rtsync.Input)
	Results() <-chan rtsync.Result
	LinkChanges() <-chan rtsync.LinkChange
	Run(ctx context.Context) error
	Close() error
	Cleanup() error
}

// Trackers runs the interface trackers: track.Manager, or a fake in tests.
type Trackers interface {
	Start(name string, p track.Params, b track.Binding, up bool) error
	Stop(name string) error
	Reconfigure(name string, p track.Params) error
	IfUp(name string, b track.Binding) error
	IfDown(name string) error
	IfUpdate(name string, b track.Binding) error
	Carrier(device string, up bool)
	Status(name string) (track.Snapshot, bool)
	Events() <-chan track.Event
	Close() error
}

// Kernel gathers the parts of the daemon that touch the kernel, so that
// the loop runs in tests against fakes.
type Kernel struct {
	NFT      NFT
	Routes   Routes
	Trackers Trackers
	// FlushConntrack deletes the conntrack entries carrying mark under
	// mask and returns how many (FlushConntrackMark).
	FlushConntrack func(mask, mark uint32) (uint, error)
	// Uptime is the system uptime the tracker files use.
	Uptime func() time.Duration
	// DeviceAddrs lists the addresses of the devices (name → prefixes),
	// for probe source addresses netifd does not give (spec §5.3.3);
	// nil skips that fallback.
	DeviceAddrs func() (map[string][]netip.Prefix, error)
	// NoIPv6 is set on kernels without IPv6.
	NoIPv6 bool
	// SetLookup reads the sets of the nft table for explain; nil leaves
	// rules with an ipset option undecided (a note).
	SetLookup SetLookup
	// Legacy reads and removes legacy mwan3's leftovers, once at start
	// before the first apply; nil skips the sweep.
	Legacy LegacyState
	// Inspect reads rules, routes and the nft table for the CLI; nil
	// makes the diag and ruleset methods answer NOT_SUPPORTED.
	Inspect Inspector
	// Close releases what the Kernel holds, after Routes.Cleanup.
	Close func() error
}

// daemon is one run of mwan3d. Its loop goroutine owns the fields marked
// loop-owned; other goroutines only read the published view.
type daemon struct {
	opts  Options
	log   *slog.Logger
	hlog  *slog.Logger // legacy's mwan3-hotplug messages
	k     *Kernel
	hooks *Hooks
	conn  *ubus.Conn
	obj   *ubus.Object
	pub   *publisher
	nc    *netifdClient
	cg    *cgroups // `mwan3 use`

	statusDir, trackDir string

	netifdCh chan netifdInput
	reqCh    chan *request
	done     chan struct{} // closed when the loop has returned
	swept    chan struct{} // closed when the legacy sweep is over
	view     atomic.Pointer[view]
	status   atomic.Pointer[statusCache] // encoded status answers

	// loop-owned
	cfg          *config.Config
	ifaces       map[string]*ifaceState
	netifd       map[string]netifdEntry
	conn4        connectedNets
	tables       map[string]bool // interfaces with a table in the last route state
	tablesAll    bool            // the last route result had no state: do not wait for tables
	lastRT       *rtsync.Input
	plan         *nft.Plan
	input        *nft.Input
	nftDirty     bool
	netifdSynced bool
	routesSynced bool
	legacySwept  bool
	running      bool
	lastWarn     map[string]bool
	lastRTErr    string
	ifaceFiles   map[string]string // iface_state file contents written

	pending []outEvent
	replies []func()
}

// netifdEntry is an interface's netifd status and when it was read.
type netifdEntry struct {
	NetifdInterface
	at time.Time
}

// outEvent is a transition to announce once the state is applied.
type outEvent struct {
	ev    HookEvent
	hook  bool // run mwan3.user / hotplug-call
	flush bool // flush the interface's conntrack entries
}

// request is a ubus call that needs the loop.
type request struct {
	kind  string // ifup, ifdown, reload
	iface string
	reply chan reqResult
}

type reqResult struct {
	data any
	err  error
}

// Run runs the daemon until ctx ends, then stops it: the shutdown events,
// and removal of the table, the ip rules and routes and the state
// directories. It returns an error when the daemon cannot start (bad
// configuration, no ubus); a clean stop returns nil.
func Run(ctx context.Context, opts Options) error {
	if opts.ConfigPath == "" {
		opts.ConfigPath = config.DefaultPath
	}
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir
	}
	if opts.HooksDir == "" {
		opts.HooksDir = DefaultHooksDir
	}
	switch opts.HotplugCall {
	case "":
		opts.HotplugCall = DefaultHotplugCall
	case "-":
		opts.HotplugCall = ""
	}
	if opts.StartupWait <= 0 {
		opts.StartupWait = DefaultStartupWait
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &daemon{
		opts:       opts,
		log:        log.With("component", "mwan3d"),
		hlog:       log.With("component", "mwan3-hotplug"),
		statusDir:  filepath.Join(opts.StateDir, "mwan3"),
		trackDir:   filepath.Join(opts.StateDir, "mwan3track"),
		netifdCh:   make(chan netifdInput, 16),
		reqCh:      make(chan *request),
		done:       make(chan struct{}),
		swept:      make(chan struct{}),
		ifaces:     map[string]*ifaceState{},
		netifd:     map[string]netifdEntry{},
		tables:     map[string]bool{},
		lastWarn:   map[string]bool{},
		ifaceFiles: map[string]string{},
	}
	cfg, diags, err := d.readConfig()
	if err != nil {
		return err
	}
	d.logDiags(diags)
	if diags.HasErrors() {
		return fmt.Errorf("configuration %s refused: %w", opts.ConfigPath, diags.Err())
	}
	d.cfg = cfg
	d.cg = openCgroups(opts.CgroupDir, d.log)
	if opts.Kernel != nil {
		d.k = opts.Kernel
	} else if d.k, err = openKernel(d.trackDir, opts.Legacy, log); err != nil {
		return err
	}
	d.hooks = &Hooks{
		UserScript:  filepath.Join(opts.HooksDir, "mwan3.user"),
		HotplugCall: opts.HotplugCall,
		Timeout:     opts.HookTimeout,
		Log:         log.With("component", "hooks"),
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	d.conn, err = ubus.Dial(dctx, opts.UbusSocket, ubus.WithLogger(log.With("component", "ubus")))
	cancel()
	if err != nil {
		d.closeKernel()
		return fmt.Errorf("connect to ubus: %w", err)
	}
	d.pub = newPublisher(d.conn, d.log)
	d.nc = newNetifdClient(d.conn, log.With("component", "netifd"), d.netifdCh)

	var wg sync.WaitGroup
	rctx, stopRoutes := context.WithCancel(context.Background())
	wg.Go(func() {
		if err := d.k.Routes.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("route sync stopped", "err", err)
		}
	})
	swept := d.swept
	wg.Go(func() {
		defer close(swept)
		if d.k.Legacy != nil {
			sweepLegacy(rctx, d.k.Legacy, cfg.Globals.MMXMask, log.With("component", "mwan3-init"))
		}
	})
	nctx, stopNetifd := context.WithCancel(ctx)
	var nwg sync.WaitGroup
	nwg.Go(func() { d.nc.run(nctx) })

	d.publish()
	d.log.Info("starting", "config", opts.ConfigPath, "summary", cfg.Summary())
	d.loop(ctx)

	stopNetifd()
	nwg.Wait()
	d.shutdown()
	stopRoutes()
	wg.Wait()
	return nil
}

// readConfig reads and validates the configuration file.
func (d *daemon) readConfig() (*config.Config, config.Diags, error) {
	data, err := os.ReadFile(d.opts.ConfigPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, diags := config.Load(d.opts.ConfigPath, data)
	return cfg, diags, nil
}

func (d *daemon) logDiags(diags config.Diags) {
	for _, dg := range diags.Sorted() {
		if dg.Severity == config.Error {
			d.log.Error(dg.Error())
		} else {
			d.log.Warn(dg.Error())
		}
	}
}

func (d *daemon) closeKernel() {
	if d.k.Close != nil {
		if err := d.k.Close(); err != nil {
			d.log.Warn("closing kernel handles", "err", err)
		}
	}
}

// shutdown stops the service (spec §9.1 stop, §9.4): the shutdown
// "disconnected" events, then the removal of everything of ours.
func (d *daemon) shutdown() {
	d.log.Info("stopping")
	for _, r := range d.replies {
		r()
	}
	d.replies = nil
	if d.cfg != nil {
		for _, i := range d.cfg.Interfaces {
			if !i.Tracked() {
				continue
			}
			if s, ok := d.k.Trackers.Status(i.Name); ok && s.Status == track.StatusOnline {
				ev := HookEvent{Action: "disconnected", Interface: i.Name, Shutdown: true}
				d.hooks.Deliver(ev)
				d.pub.send(ifaceEvent(ev, "offline", false))
			}
		}
	}
	if d.obj != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := d.conn.RemoveObject(ctx, d.obj); err != nil {
			d.log.Debug("cannot remove the mwan3 object", "err", err)
		}
		cancel()
	}
	var errs []error
	if err := d.k.Trackers.Close(); err != nil {
		errs = append(errs, fmt.Errorf("stop trackers: %w", err))
	}
	if err := d.k.NFT.Remove(); err != nil {
		errs = append(errs, fmt.Errorf("remove nft table: %w", err))
	}
	if err := d.k.Routes.Close(); err != nil {
		errs = append(errs, fmt.Errorf("stop route sync: %w", err))
	}
	if err := d.k.Routes.Cleanup(); err != nil {
		errs = append(errs, fmt.Errorf("remove ip rules and routes: %w", err))
	}
	d.cg.close()
	d.closeKernel()
	for _, dir := range []string{d.statusDir, d.trackDir} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove state: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Error("stop left something behind", "err", err)
	}
	timeout := d.hooks.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
	if err := d.hooks.Close(ctx); err != nil {
		d.log.Warn("shutdown hooks still running", "err", err)
	}
	cancel()
	d.pub.close(2 * time.Second)
	d.conn.Close()
	d.log.Info("stopped")
}
