package track

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Family is the address family an interface is tracked in (`family`).
type Family uint8

// Families. The zero value is IPv4, legacy's default.
const (
	IPv4 Family = iota
	IPv6
)

// String returns "ipv4" or "ipv6".
func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// Method is a track method (`track_method`).
type Method string

// The track methods mwan3 knows (spec §5.3.1).
const (
	MethodPing      Method = "ping"
	MethodArping    Method = "arping"
	MethodHTTPing   Method = "httping"
	MethodNpingTCP  Method = "nping-tcp"
	MethodNpingUDP  Method = "nping-udp"
	MethodNpingICMP Method = "nping-icmp"
	MethodNpingARP  Method = "nping-arp"
	MethodNslookup  Method = "nslookup"
)

// Status is the tracker status of an interface (STATUS file, ubus
// `status`). The zero value is unknown (no tracker, no file).
type Status string

// Tracker statuses.
const (
	StatusUnknown       Status = ""
	StatusOnline        Status = "online"
	StatusOffline       Status = "offline"
	StatusConnecting    Status = "connecting"
	StatusDisconnecting Status = "disconnecting"
	StatusDisabled      Status = "disabled"
)

// Defaults of the interface options (spec §2.2).
const (
	DefaultReliability     = 1
	DefaultCount           = 1
	DefaultTimeout         = 4 * time.Second
	DefaultInterval        = 10 * time.Second
	DefaultDown            = 5
	DefaultUp              = 5
	DefaultSize            = 56
	DefaultMaxTTL          = 60
	DefaultFailureLatency  = 1000 * time.Millisecond
	DefaultRecoveryLatency = 500 * time.Millisecond
	DefaultFailureLoss     = 40
	DefaultRecoveryLoss    = 10
	DefaultQualityWindow   = 60 * time.Second
	DefaultDNSName         = "."
)

// Limits applied by Params.Normalize.
const (
	// MaxSize is the largest ping payload (an IPv4 datagram of 65535 bytes).
	MaxSize = 65507
	// maxQualitySlots bounds the quality ring of one target.
	maxQualitySlots = 256
	// maxTargets bounds the number of targets of one interface; legacy's
	// `cut -f 5-99` passed at most 95.
	maxTargets = 95
)

// Params are the tracking options of one interface, with the defaults of
// spec §2.2 already applied by the caller (see DefaultParams). Durations
// are whole seconds in the configuration; latencies are milliseconds.
type Params struct {
	Method              string        // track_method as configured (fallback resolved by Normalize)
	Family              Family        // family
	Targets             []string      // track_ip, in configuration order (IP literals or host names)
	Reliability         int           // reliability
	Count               int           // count
	Timeout             time.Duration // timeout
	Interval            time.Duration // interval
	FailureInterval     time.Duration // failure_interval (default: Interval)
	RecoveryInterval    time.Duration // recovery_interval (default: Interval)
	KeepFailureInterval bool          // keep_failure_interval
	Down                int           // down
	Up                  int           // up
	Size                int           // size
	MaxTTL              int           // max_ttl
	CheckQuality        bool          // check_quality
	FailureLatency      time.Duration // failure_latency
	RecoveryLatency     time.Duration // recovery_latency
	FailureLoss         int           // failure_loss (percent)
	RecoveryLoss        int           // recovery_loss (percent)
	InitialState        Status        // initial_state: StatusOnline or StatusOffline
	HTTPSSL             bool          // httping_ssl

	// DNSName is the name whose NS records the nslookup method asks for;
	// empty means DefaultDNSName, the root zone. Not a legacy option.
	DNSName string
	// QualityWindow is the span of the rolling per-target quality
	// statistics; zero means DefaultQualityWindow. Not a legacy option.
	QualityWindow time.Duration
}

// DefaultParams returns the legacy defaults for the given targets.
func DefaultParams(targets ...string) Params {
	return Params{
		Method:           string(MethodPing),
		Targets:          targets,
		Reliability:      DefaultReliability,
		Count:            DefaultCount,
		Timeout:          DefaultTimeout,
		Interval:         DefaultInterval,
		FailureInterval:  DefaultInterval,
		RecoveryInterval: DefaultInterval,
		Down:             DefaultDown,
		Up:               DefaultUp,
		Size:             DefaultSize,
		MaxTTL:           DefaultMaxTTL,
		FailureLatency:   DefaultFailureLatency,
		RecoveryLatency:  DefaultRecoveryLatency,
		FailureLoss:      DefaultFailureLoss,
		RecoveryLoss:     DefaultRecoveryLoss,
		InitialState:     StatusOnline,
		DNSName:          DefaultDNSName,
		QualityWindow:    DefaultQualityWindow,
	}
}

// Normalize validates p for the interface iface and returns a copy that is
// safe to run, with the warnings to log (legacy's texts where legacy has
// one). It never fails: values that cannot work are replaced, with a
// warning, as follows.
//
//   - An unknown method falls back to ping ("Unsupported tracking method:
//     <m>", then "Using ping to track interface <iface> availability");
//     arping and nping-arp with family ipv6 fall back to ping too (§2.2).
//   - check_quality with a method other than ping or httping is ignored
//     (spec §5.3.1 REC) instead of failing every round.
//   - count, down, up and reliability below 1, timeouts and intervals
//     below one second are raised to 1 / one second (legacy would spin
//     or pass every round); a zero failure_interval or recovery_interval
//     means interval (legacy's default).
//   - reliability above the number of targets is kept (the interface can
//     never be confirmed online, as legacy) but warned about.
//   - size is clamped to 0..MaxSize and max_ttl to 1..255; an
//     initial_state other than online/offline means online.
func (p Params) Normalize(iface string) (Params, []string) {
	var warn []string
	warnf := func(format string, args ...any) { warn = append(warn, fmt.Sprintf(format, args...)) }

	p.Targets = append([]string(nil), p.Targets...)
	if len(p.Targets) > maxTargets {
		warnf("interface %s has %d track_ip targets; only the first %d are used", iface, len(p.Targets), maxTargets)
		p.Targets = p.Targets[:maxTargets]
	}
	m := Method(p.Method)
	if m == "" {
		m = MethodPing
	}
	switch m {
	case MethodPing, MethodHTTPing, MethodNpingTCP, MethodNpingUDP, MethodNpingICMP, MethodNslookup:
	case MethodArping, MethodNpingARP:
		if p.Family == IPv6 {
			warnf("%s does not support IPv6. Please use another track_method for interface %s", m, iface)
			warnf("Using ping to track interface %s availability", iface)
			m = MethodPing
		}
	default:
		warnf("Unsupported tracking method: %s", p.Method)
		warnf("Using ping to track interface %s availability", iface)
		m = MethodPing
	}
	p.Method = string(m)
	if p.CheckQuality && m != MethodPing && m != MethodHTTPing {
		warnf("check_quality is only supported by the ping and httping track methods; ignored for %s on interface %s", m, iface)
		p.CheckQuality = false
	}

	atLeast := func(name string, v *int, min int) {
		if *v < min {
			warnf("%s %d of interface %s is invalid; using %d", name, *v, iface, min)
			*v = min
		}
	}
	atLeast("count", &p.Count, 1)
	atLeast("down", &p.Down, 1)
	atLeast("up", &p.Up, 1)
	atLeast("reliability", &p.Reliability, 1)
	if p.Reliability > len(p.Targets) {
		warnf("reliability %d of interface %s exceeds its %d track_ip targets: the interface can never be confirmed online",
			p.Reliability, iface, len(p.Targets))
	}
	second := func(name string, v *time.Duration) {
		if *v < time.Second {
			warnf("%s %v of interface %s is invalid; using 1s", name, *v, iface)
			*v = time.Second
		}
	}
	second("timeout", &p.Timeout)
	second("interval", &p.Interval)
	if p.FailureInterval == 0 {
		p.FailureInterval = p.Interval
	}
	if p.RecoveryInterval == 0 {
		p.RecoveryInterval = p.Interval
	}
	second("failure_interval", &p.FailureInterval)
	second("recovery_interval", &p.RecoveryInterval)
	if p.Size < 0 || p.Size > MaxSize {
		v := min(max(p.Size, 0), MaxSize)
		warnf("size %d of interface %s is out of range; using %d", p.Size, iface, v)
		p.Size = v
	}
	if p.MaxTTL < 1 || p.MaxTTL > 255 {
		v := min(max(p.MaxTTL, 1), 255)
		warnf("max_ttl %d of interface %s is out of range; using %d", p.MaxTTL, iface, v)
		p.MaxTTL = v
	}
	if p.InitialState != StatusOnline && p.InitialState != StatusOffline {
		if p.InitialState != StatusUnknown {
			warnf("initial_state %q of interface %s is invalid; using online", p.InitialState, iface)
		}
		p.InitialState = StatusOnline
	}
	if p.DNSName == "" {
		p.DNSName = DefaultDNSName
	}
	if p.QualityWindow <= 0 {
		p.QualityWindow = DefaultQualityWindow
	}
	for _, t := range p.Targets {
		if err := checkTarget(t, p.Family); err != nil {
			warnf("track_ip %q of interface %s: %v (every probe of it will fail)", t, iface, err)
		}
	}
	return p, warn
}

// checkTarget reports targets that can never be probed: IP literals of the
// other family and strings that are neither addresses nor host names.
func checkTarget(t string, f Family) error {
	if a, err := netip.ParseAddr(t); err == nil {
		if (f == IPv6) != (a.Is6() && !a.Is4In6()) {
			return fmt.Errorf("address is not %s", f)
		}
		return nil
	}
	if t == "" || len(t) > 253 || strings.ContainsAny(t, " \t/:%[]@") {
		return fmt.Errorf("neither an IP address nor a host name")
	}
	return nil
}

// method returns the normalized method.
func (p *Params) method() Method { return Method(p.Method) }

// quality reports whether latency and loss decide a target's state.
func (p *Params) quality() bool { return p.CheckQuality }

// Binding pins an interface's probes to the interface, as legacy's shim did
// with DEVICE, SRCIP and FWMARK (spec §5.3.2). The daemon fills it from
// netifd (device, §5.3.3 source address) and the configuration (the
// default mark, e.g. 0x3f00).
type Binding struct {
	Device string     // l3 device; SO_BINDTODEVICE (and the ifindex of ARP probes)
	Source netip.Addr // source address to bind; invalid or unspecified leaves it to the kernel
	Mark   uint32     // SO_MARK when non-zero
}
