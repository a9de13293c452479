package config

import (
	"fmt"
	"io/fs"
	"math/bits"
	"strconv"
	"strings"
)

// DefaultPath is where OpenWrt keeps the configuration.
const DefaultPath = "/etc/config/mwan3"

// MaxMaskBits is the most mask bits mwan3's rule priorities allow: with
// 10 bits, 2000 + the blackhole value would reach the 3000+id range.
const MaxMaskBits = 9

// MaxNameLen is legacy's limit for rule and policy names.
const MaxNameLen = 15

// ReadFile loads the configuration at name from fsys.
func ReadFile(fsys fs.FS, name string) (*Config, Diags, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, diags := Load(name, data)
	return cfg, diags, nil
}

// Load parses and validates a configuration. It returns every problem at
// once. When diags has errors, the configuration must be refused (cfg is
// still returned for inspection); with warnings only, cfg is what legacy
// mwan3 would have run.
func Load(name string, data []byte) (*Config, Diags) {
	f, diags := ParseUCI(name, data)
	cfg, more := Build(f)
	return cfg, append(diags, more...)
}

// Build turns a parsed UCI file into the mwan3 model.
func Build(f *UCIFile) (*Config, Diags) {
	l := &loader{file: f, cfg: &Config{File: f.Name}}
	l.build()
	return l.cfg, l.diags
}

type loader struct {
	file  *UCIFile
	cfg   *Config
	diags Diags
	// members that exist but were ignored, for the policies' messages
	ignoredMembers map[string]int
	ifaces         map[string]*Interface
	members        map[string]*Member
	policies       map[string]*Policy
	skippedPolicy  map[string]int
}

func (l *loader) add(sev Severity, line int, section, option, format string, args ...any) {
	l.diags = append(l.diags, Diag{File: l.file.Name, Line: line, Severity: sev,
		Section: section, Option: option, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) build() {
	l.ignoredMembers = map[string]int{}
	l.ifaces = map[string]*Interface{}
	l.members = map[string]*Member{}
	l.policies = map[string]*Policy{}
	l.skippedPolicy = map[string]int{}
	l.cfg.Globals = Globals{MMXMask: DefaultMask, LogLevel: "notice"}

	byType := map[string][]*UCISection{}
	for _, s := range l.file.Sections {
		byType[s.Type] = append(byType[s.Type], s)
	}
	for _, s := range byType["globals"] {
		l.globals(s)
	}
	for i, s := range byType["interface"] {
		l.iface(s, i+1)
	}
	for _, s := range byType["member"] {
		l.member(s)
	}
	for _, s := range byType["policy"] {
		l.policy(s)
	}
	for _, s := range byType["rule"] {
		l.rule(s)
	}
	for _, s := range l.file.Sections {
		switch s.Type {
		case "globals", "interface", "member", "policy", "rule":
		default:
			l.add(Warning, s.Line, s.Ref(), "", "unknown section type '%s' (section ignored)", s.Type)
		}
	}
}

// reader reads one section's options and remembers which were consulted,
// so the rest can be reported as unknown.
type reader struct {
	l      *loader
	s      *UCISection
	used   map[string]bool
	warned map[string]bool // scalar options given as lists, reported once
}

func (l *loader) reader(s *UCISection) *reader {
	return &reader{l: l, s: s, used: map[string]bool{}, warned: map[string]bool{}}
}

func (r *reader) warn(line int, option, format string, args ...any) {
	r.l.add(Warning, line, r.s.Ref(), option, format, args...)
}

// value returns a scalar option's value and line; ok is false when unset.
// A list where one value is expected: the last value counts.
func (r *reader) value(name string) (string, int, bool) {
	r.used[name] = true
	o := r.s.Option(name)
	if o == nil || len(o.Values) == 0 {
		return "", r.s.Line, false
	}
	v := o.Values[len(o.Values)-1]
	if o.IsList && len(o.Values) > 1 && !r.warned[name] {
		r.warned[name] = true
		r.warn(v.Line, name, "option '%s' is given as a list of %d values; one is expected (the last, '%s', is used)", name, len(o.Values), v.Text)
	}
	return v.Text, v.Line, true
}

// values returns every value of an option or list.
func (r *reader) values(name string) []UCIValue {
	r.used[name] = true
	if o := r.s.Option(name); o != nil {
		return o.Values
	}
	return nil
}

// words returns every value split at blanks, the way the shell's
// `for x in $list` sees a list.
func (r *reader) words(name string) []UCIValue {
	var out []UCIValue
	for _, v := range r.values(name) {
		for _, w := range strings.Fields(v.Text) {
			out = append(out, UCIValue{Text: w, Line: v.Line})
		}
	}
	return out
}

func (r *reader) str(name, def string) string {
	if v, _, ok := r.value(name); ok {
		return v
	}
	return def
}

// boolean reads an option as config_get_bool does; anything else is the
// default, with a warning.
func (r *reader) boolean(name string, def bool) bool {
	v, line, ok := r.value(name)
	if !ok {
		return def
	}
	switch v {
	case "1", "yes", "on", "true", "enabled":
		return true
	case "0", "no", "off", "false", "disabled":
		return false
	}
	r.warn(line, name, "option '%s': '%s' is not a boolean (default %s used)", name, v, boolString(def))
	return def
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// integer reads a decimal number in [min, max]; otherwise the default, with
// a warning.
func (r *reader) integer(name string, def, min, max int) int {
	v, line, ok := r.value(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || !isDigits(strings.TrimPrefix(v, "-")) {
		r.warn(line, name, "option '%s': '%s' is not a number (default %d used)", name, v, def)
		return def
	}
	if n < min || n > max {
		r.warn(line, name, "option '%s': %d is out of range %d-%d (default %d used)", name, n, min, max, def)
		return def
	}
	return n
}

// enum reads one of the allowed values; otherwise the default, with a
// warning.
func (r *reader) enum(name, def string, allowed ...string) string {
	v, line, ok := r.value(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	r.warn(line, name, "option '%s': '%s' is not one of %s (default '%s' used)", name, v, strings.Join(allowed, ", "), def)
	return def
}

// done reports the options nobody consulted, except the deprecated ones
// legacy accepts silently.
func (r *reader) done(deprecated ...string) {
	for _, o := range r.s.Options {
		if r.used[o.Name] || contains(deprecated, o.Name) {
			continue
		}
		r.warn(o.Line, o.Name, "unknown option '%s' (ignored)", o.Name)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (l *loader) globals(s *UCISection) {
	r := l.reader(s)
	if s.Anonymous || s.Name != "globals" {
		r.warn(s.Line, "", "mwan3 reads only the globals section named 'globals' (section ignored)")
		return
	}
	g := &l.cfg.Globals
	g.Line = s.Line
	if v, line, ok := r.value("mmx_mask"); ok {
		m, err := strconv.ParseUint(v, 0, 32)
		switch {
		case err != nil:
			r.warn(line, "mmx_mask", "option 'mmx_mask': '%s' is not a hexadecimal mask (default 0x%x used)", v, DefaultMask)
		case bits.OnesCount64(m) < 3:
			l.add(Error, line, s.Ref(), "mmx_mask", "option 'mmx_mask': 0x%x has %d bits set; at least 3 are needed for one interface and the special marks (the configuration is refused)", m, bits.OnesCount64(m))
		case bits.OnesCount64(m) > MaxMaskBits:
			l.add(Error, line, s.Ref(), "mmx_mask", "option 'mmx_mask': 0x%x has %d bits set; with more than %d the ip rule priorities of mwan3 (1000+id, 2000+id, 3000+id) collide (the configuration is refused)", m, bits.OnesCount64(m), MaxMaskBits)
		default:
			g.MMXMask = uint32(m)
		}
	}
	g.Logging = r.boolean("logging", false)
	g.LogLevel = r.enum("loglevel", "notice", "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug")
	for _, v := range r.words("rt_table_lookup") {
		n, err := strconv.ParseUint(v.Text, 10, 32)
		if err != nil || !isDigits(v.Text) {
			r.warn(v.Line, "rt_table_lookup", "option 'rt_table_lookup': '%s' is not a routing table number (value ignored)", v.Text)
			continue
		}
		g.RTTableLookup = append(g.RTTableLookup, uint32(n))
	}
	g.SourceRouting = r.boolean("source_routing", false)
	r.done("local_source", "rtmon_interval", "enabled")
}

// Track methods legacy knows.
var trackMethods = []string{"ping", "arping", "httping", "nping-tcp", "nping-udp", "nping-icmp", "nping-arp", "nslookup"}

func (l *loader) iface(s *UCISection, id int) {
	r := l.reader(s)
	i := &Interface{Name: s.Name, Line: s.Line, ID: id}
	l.cfg.Interfaces = append(l.cfg.Interfaces, i)
	l.ifaces[i.Name] = i

	i.Enabled = r.boolean("enabled", false)
	switch fam := r.str("family", "ipv4"); fam {
	case "ipv4", "ipv6":
		i.Family = Family(fam)
	default:
		_, line, _ := r.value("family")
		i.Family = IPv4
		if i.Enabled {
			r.warn(line, "family", "option 'family': '%s' is not ipv4 or ipv6 (interface disabled)", fam)
			i.Enabled = false
		} else {
			r.warn(line, "family", "option 'family': '%s' is not ipv4 or ipv6 (ipv4 assumed; the interface is disabled anyway)", fam)
		}
	}
	for _, v := range r.words("track_ip") {
		i.TrackIP = append(i.TrackIP, v.Text)
	}
	i.TrackMethod = r.str("track_method", "ping")
	if !contains(trackMethods, i.TrackMethod) {
		_, line, _ := r.value("track_method")
		r.warn(line, "track_method", "option 'track_method': '%s' is not supported (ping used instead)", i.TrackMethod)
		i.TrackMethod = "ping"
	}
	if i.TrackMethod == "arping" && i.Family == IPv6 {
		_, line, _ := r.value("track_method")
		r.warn(line, "track_method", "option 'track_method': arping does not work for an ipv6 interface (ping used instead)")
		i.TrackMethod = "ping"
	}
	i.HTTPingSSL = r.boolean("httping_ssl", false)
	i.Reliability = r.integer("reliability", 1, 1, 1000)
	i.Count = r.integer("count", 1, 1, 100)
	i.Timeout = r.integer("timeout", 4, 1, 600)
	i.Interval = r.integer("interval", 10, 1, 86400)
	i.FailureInterval = r.integer("failure_interval", i.Interval, 1, 86400)
	i.RecoveryInterval = r.integer("recovery_interval", i.Interval, 1, 86400)
	i.KeepFailureInterval = r.boolean("keep_failure_interval", false)
	i.Down = r.integer("down", 5, 1, 1000)
	i.Up = r.integer("up", 5, 1, 1000)
	i.Size = r.integer("size", 56, 0, 65507)
	i.MaxTTL = r.integer("max_ttl", 60, 1, 255)
	i.CheckQuality = r.boolean("check_quality", false)
	i.FailureLatency = r.integer("failure_latency", 1000, 0, 3600000)
	i.RecoveryLatency = r.integer("recovery_latency", 500, 0, 3600000)
	i.FailureLoss = r.integer("failure_loss", 40, 0, 100)
	i.RecoveryLoss = r.integer("recovery_loss", 10, 0, 100)
	i.InitialState = r.enum("initial_state", "online", "online", "offline")
	if i.CheckQuality && i.TrackMethod != "ping" && i.TrackMethod != "httping" {
		_, line, _ := r.value("check_quality")
		r.warn(line, "check_quality", "option 'check_quality': quality is measured only by ping and httping, not %s (check_quality ignored)", i.TrackMethod)
		i.CheckQuality = false
	}
	for _, v := range r.words("flush_conntrack") {
		var add []string
		switch v.Text {
		case "ifup", "ifdown", "connected", "disconnected":
			add = []string{v.Text}
		case "always": // legacy scalar form, migrated by uci-defaults
			add = []string{"ifup", "ifdown"}
		case "never":
		default:
			r.warn(v.Line, "flush_conntrack", "option 'flush_conntrack': '%s' is not ifup, ifdown, connected or disconnected (value ignored)", v.Text)
		}
		for _, a := range add {
			if !contains(i.FlushConntrack, a) {
				i.FlushConntrack = append(i.FlushConntrack, a)
			}
		}
	}
	r.done("online_metric")

	if !i.Enabled {
		return
	}
	if s.Anonymous {
		r.warn(s.Line, "", "an interface section needs the name of a netifd interface (interface disabled)")
		i.Enabled = false
		return
	}
	if m := l.cfg.Globals.IfaceMax(); id > m {
		r.warn(s.Line, "", "interface id %d is beyond the %d interfaces mmx_mask 0x%x allows (interface disabled)", id, m, l.cfg.Globals.MMXMask)
		i.Enabled = false
		return
	}
	switch {
	case len(i.TrackIP) > 0 && i.Reliability > len(i.TrackIP):
		_, line, _ := r.value("reliability")
		r.warn(line, "reliability", "option 'reliability': %d is more than the %d track_ip targets, so tracking can never report the interface online (kept, as legacy does)", i.Reliability, len(i.TrackIP))
	case len(i.TrackIP) == 0 && i.InitialState == "offline":
		_, line, _ := r.value("initial_state")
		r.warn(line, "initial_state", "option 'initial_state': offline without track_ip means the interface never comes online (kept, as legacy does)")
	}
}

func (l *loader) member(s *UCISection) {
	r := l.reader(s)
	m := &Member{Name: s.Name, Line: s.Line}
	m.Metric = r.integer("metric", 1, 0, 1<<31-1)
	m.Weight = r.integer("weight", 1, 1, 1<<31-1)
	iface, line, ok := r.value("interface")
	r.done()
	switch {
	case !ok:
		r.warn(s.Line, "interface", "no option 'interface' (member ignored)")
	case l.ifaces[iface] == nil:
		r.warn(line, "interface", "option 'interface': '%s' is not an mwan3 interface (member ignored)", iface)
	case m.Metric > 256:
		_, line, _ := r.value("metric")
		r.warn(line, "metric", "Member interface %s has >256 metric. Not appending to policy", iface)
	default:
		m.Interface = iface
		l.cfg.Members = append(l.cfg.Members, m)
		l.members[m.Name] = m
		return
	}
	l.ignoredMembers[m.Name] = s.Line
}

func (l *loader) policy(s *UCISection) {
	r := l.reader(s)
	p := &Policy{Name: s.Name, Line: s.Line}
	p.LastResort = r.enum("last_resort", PolicyUnreachable, PolicyUnreachable, PolicyBlackhole, PolicyDefault)
	for _, v := range r.values("use_member") {
		switch {
		case l.members[v.Text] != nil:
			if contains(p.Members, v.Text) {
				r.warn(v.Line, "use_member", "use_member '%s' is listed twice (second ignored)", v.Text)
				continue
			}
			p.Members = append(p.Members, v.Text)
		case l.ignoredMembers[v.Text] != 0:
			r.warn(v.Line, "use_member", "use_member '%s' refers to the member at line %d, which was ignored (skipped)", v.Text, l.ignoredMembers[v.Text])
		default:
			r.warn(v.Line, "use_member", "use_member '%s' is not a member (skipped)", v.Text)
		}
	}
	r.done()
	if len(p.Name) > MaxNameLen {
		r.warn(s.Line, "", "Policy %s exceeds max of %d chars. Not setting policy", p.Name, MaxNameLen)
		l.skippedPolicy[p.Name] = s.Line
		return
	}
	if len(p.Members) == 0 {
		r.warn(s.Line, "", "policy has no usable member (its last_resort '%s' always applies)", p.LastResort)
	}
	l.cfg.Policies = append(l.cfg.Policies, p)
	l.policies[p.Name] = p
}

func (l *loader) rule(s *UCISection) {
	r := l.reader(s)
	ru := &Rule{Name: s.Name, Line: s.Line, ProtoNum: -1}
	ok := true
	skip := func(line int, option, format string, args ...any) {
		r.warn(line, option, format+" (rule ignored)", args...)
		ok = false
	}

	ru.UsePolicy = r.str("use_policy", "")
	_, polLine, _ := r.value("use_policy")
	switch fam := r.str("family", "any"); fam {
	case "ipv4", "ipv6", "any":
		ru.Family = Family(fam)
	default:
		_, line, _ := r.value("family")
		r.warn(line, "family", "option 'family': '%s' is not ipv4, ipv6 or any (any used)", fam)
		ru.Family = Any
	}
	proto := r.str("proto", "all")
	_, protoLine, _ := r.value("proto")
	if name, num, err := ParseProto(proto); err != nil {
		skip(protoLine, "proto", "option 'proto': %v", err)
	} else {
		ru.Proto, ru.ProtoNum = name, num
	}
	ru.SrcIP = l.addresses(r, "src_ip", skip)
	ru.DestIP = l.addresses(r, "dest_ip", skip)
	for _, opt := range []string{"src_port", "dest_port"} {
		v, line, set := r.value(opt)
		if !set {
			continue
		}
		if proto != "tcp" && proto != "udp" && ru.ProtoNum != 6 && ru.ProtoNum != 17 {
			r.warn(line, opt, "%s set to '%s' but proto set to '%s' not tcp or udp. %s will be ignored", opt, v, proto, opt)
			continue
		}
		ports, err := ParsePorts(v)
		if err != nil {
			skip(line, opt, "option '%s': %v", opt, err)
			continue
		}
		if opt == "src_port" {
			ru.SrcPort = ports
		} else {
			ru.DestPort = ports
		}
	}
	ru.SrcIface = r.str("src_iface", "")
	if ru.SrcIface != "" && !validName(ru.SrcIface, false) {
		_, line, _ := r.value("src_iface")
		skip(line, "src_iface", "option 'src_iface': '%s' is not an interface name", ru.SrcIface)
	}
	ru.IPSet = r.str("ipset", "")
	if ru.IPSet != "" && !validSetName(ru.IPSet) {
		_, line, _ := r.value("ipset")
		skip(line, "ipset", "option 'ipset': '%s' is not a set name (up to 31 letters, digits, '_', '-' or '.')", ru.IPSet)
	}
	ru.Sticky = r.boolean("sticky", false)
	ru.Timeout = r.integer("timeout", 600, 1, 1000000)
	ru.Logging = r.boolean("logging", false)
	r.done()

	if len(ru.Name) > MaxNameLen {
		r.warn(s.Line, "", "Rule %s exceeds max of %d chars. Not setting rule", ru.Name, MaxNameLen)
		return
	}
	switch ru.UsePolicy {
	case "":
		r.warn(s.Line, "use_policy", "no option 'use_policy' (rule ignored)")
		return
	case PolicyDefault, PolicyUnreachable, PolicyBlackhole:
		if ru.Sticky {
			_, line, _ := r.value("sticky")
			r.warn(line, "sticky", "option 'sticky' has no effect with use_policy '%s' (ignored)", ru.UsePolicy)
			ru.Sticky = false
		}
	default:
		if line := l.skippedPolicy[ru.UsePolicy]; line != 0 {
			r.warn(polLine, "use_policy", "use_policy '%s' refers to the policy at line %d, which was not set (rule ignored: it would match nothing)", ru.UsePolicy, line)
			return
		}
		if l.policies[ru.UsePolicy] == nil {
			r.warn(polLine, "use_policy", "use_policy '%s' is not a policy (rule ignored: it would match nothing)", ru.UsePolicy)
			return
		}
	}
	if !ok {
		return
	}
	if len(ru.Variants()) == 0 {
		opt, why := whyNoVariant(ru)
		_, line, _ := r.value(opt)
		r.warn(line, opt, "rule never matches: %s", why)
		return
	}
	for _, opt := range []struct {
		name string
		as   []Address
	}{{"src_ip", ru.SrcIP}, {"dest_ip", ru.DestIP}} {
		if ru.Family == Any || len(opt.as) == len(AddressesOf(opt.as, ru.Family)) {
			continue
		}
		_, line, _ := r.value(opt.name)
		r.warn(line, opt.name, "option '%s': addresses that are not %s are ignored for a family %s rule", opt.name, ru.Family, ru.Family)
	}
	l.cfg.Rules = append(l.cfg.Rules, ru)
}

// whyNoVariant explains, in legacy's words, why a rule has no family
// variant, and names the address option at fault.
func whyNoVariant(ru *Rule) (option, why string) {
	fam := ru.Family
	if fam == Any {
		// src_ip decides the family; dest_ip is then the one at fault
		fam = IPv4
		if len(ru.SrcIP) > 0 {
			fam = ru.SrcIP[0].Family()
		}
	}
	for _, o := range []struct {
		name string
		as   []Address
	}{{"src_ip", ru.SrcIP}, {"dest_ip", ru.DestIP}} {
		if len(o.as) > 0 && len(AddressesOf(o.as, fam)) == 0 {
			return o.name, fmt.Sprintf("invalid %s address %s specified for rule %s (rule ignored)", fam, o.as[0], ru.Name)
		}
	}
	return "", "no address family in common (rule ignored)"
}

// addresses reads src_ip or dest_ip: one or more values (list or option),
// each a comma-separated list of addresses.
func (l *loader) addresses(r *reader, name string, skip func(int, string, string, ...any)) []Address {
	var out []Address
	for _, v := range r.values(name) {
		for _, item := range strings.Split(v.Text, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			a, err := ParseAddress(item)
			if err != nil {
				skip(v.Line, name, "option '%s': %v", name, err)
				return nil
			}
			out = append(out, a)
		}
	}
	return out
}

// validSetName accepts what both ipset and nft accept as a set name.
func validSetName(s string) bool {
	if len(s) == 0 || len(s) > 31 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' {
			continue
		}
		return false
	}
	return true
}

// Interface returns the interface of that name, or nil.
func (c *Config) Interface(name string) *Interface {
	for _, i := range c.Interfaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

// Member returns the usable member of that name, or nil.
func (c *Config) Member(name string) *Member {
	for _, m := range c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Policy returns the usable policy of that name, or nil.
func (c *Config) Policy(name string) *Policy {
	for _, p := range c.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Summary is the one-line count `mwan3d check` prints.
func (c *Config) Summary() string {
	enabled := 0
	for _, i := range c.Interfaces {
		if i.Enabled {
			enabled++
		}
	}
	return fmt.Sprintf("%d interfaces (%d enabled), %d members, %d policies, %d rules",
		len(c.Interfaces), enabled, len(c.Members), len(c.Policies), len(c.Rules))
}
