package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TableName is the name of mwan3's table (family inet).
const TableName = "mwan3"

// Names of the fixed chains and maps.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainHook        = "mwan3_hook" // "hook" is an nft keyword
	chainIfacesIn    = "ifaces_in"
	chainBypass      = "bypass"
	chainRules       = "rules"
	mapRestore       = "mark_restore"
	mapSave          = "mark_save"
)

// priorityMangle1 is "mangle + 1": after fw4's mangle chains (legacy
// appended to the mangle built-in chains), before DNAT at −100.
const priorityMangle1 = -149

// prioritySrcnat1 is "srcnat + 1": after fw4's srcnat chain, so that its
// masquerade and users' SNAT rules win (the first NAT set up for a
// connection is the one used).
const prioritySrcnat1 = 101

// stickySetSize bounds the sources of one sticky set (one rule, family
// and WAN). Legacy's ipset allowed 65536, but the kernel's hash sets
// allocate their bucket array for the size up front: 1 MiB per set at
// 65535 (what nft uses by default), 128 KiB at 8192.
const stickySetSize = 8192

// maxWeight bounds member weights (LuCI allows 1..1000), so that the sum
// of a policy's weights fits the numgen modulus.
const maxWeight = 1 << 20

// DefaultStickyTimeout is the sticky timeout when a rule sets none.
const DefaultStickyTimeout = 600 * time.Second

// Legacy's last_resort words and the special use_policy values.
const (
	actionDefault     = "default"
	actionUnreachable = "unreachable"
	actionBlackhole   = "blackhole"
)

// bypassStems are the bypass sets in legacy evaluation order.
var bypassStems = []string{"mwan3_custom", "mwan3_connected", "mwan3_dynamic"}

// ndTypes are the ICMPv6 neighbour discovery types that are never marked
// (router solicitation/advertisement, neighbour solicitation/advertisement,
// redirect).
var ndTypes = []uint8{133, 134, 135, 136, 137}

// Plan is a rendered ruleset: the table plus what the daemon needs to
// interpret it (warnings to log, the meaning of each counter, and the
// active members of every policy).
type Plan struct {
	Table    Table
	Warnings []string
	Counters []CounterInfo
	Policies []PolicyState
}

// String prints the table as `nft list table inet mwan3` would.
func (p *Plan) String() string { return p.Table.String() }

// CounterKind says what a named counter counts.
type CounterKind uint8

// Counter kinds.
const (
	// CounterRule counts new connections matched by a user rule (one
	// counter per rule and family).
	CounterRule CounterKind = iota + 1
	// CounterMember counts new connections a policy sent to a member.
	CounterMember
	// CounterLastResort counts new connections that found no online
	// member and got the policy's last resort.
	CounterLastResort
)

// CounterInfo describes one named counter of the plan.
type CounterInfo struct {
	Name      string // the counter object
	Kind      CounterKind
	Family    Family
	Rule      string // CounterRule
	Policy    string // CounterMember, CounterLastResort
	Interface string // CounterMember
}

// CounterValue is a counter of the plan with its kernel values.
type CounterValue struct {
	CounterInfo
	Packets, Bytes uint64
}

// PolicyState is the outcome of one policy for one family.
type PolicyState struct {
	Policy string
	Family Family
	// Active are the online members with the best metric, in use_member
	// order (members naming the same interface merged); empty when the
	// last resort applies.
	Active []ActiveMember
	// Total is the sum of the active weights.
	Total int
	// LastResort is the action taken when Active is empty: "unreachable",
	// "blackhole" or "default".
	LastResort string
}

// ActiveMember is one member that receives traffic, with its share
// Weight/Total.
type ActiveMember struct {
	Member    string
	Interface string
	ID        int
	Metric    int
	Weight    int
}

// Chain and object names. Rule, policy and interface names are UCI
// identifiers ([A-Za-z0-9_]); the suffixes make every name unique.

func policyChain(policy string, fam Family) string { return "policy_" + policy + "_" + fam.String() }

func memberChain(policy string, fam Family, id int) string {
	return policyChain(policy, fam) + "_m" + strconv.Itoa(id)
}

func stickyChain(rule string, fam Family) string { return "rule_" + rule + "_" + fam.String() }

func stickySet(rule string, fam Family, id int) string {
	return "sticky_" + rule + "_" + fam.String() + "_" + strconv.Itoa(id)
}

func ruleCounter(rule string, fam Family) string { return "rule_" + rule + "_" + fam.String() }

func ifaceInChain(iface string) string { return "iface_in_" + iface }

func restoreChain(mark uint32) string { return fmt.Sprintf("restore_%#x", mark) }

func saveChain(mark uint32) string { return fmt.Sprintf("save_%#x", mark) }

// renderer carries the state of one Render call.
type renderer struct {
	in       *Input
	mask     Mask
	fams     []Family
	ifaces   map[string]*Interface
	policies map[string]*Policy
	ipsets   map[string]Family
	states   map[string]*policyOutcome // by policyChain name
	plan     *Plan
	warned   map[string]bool
}

// Render computes the whole table from the input. It is pure and
// deterministic. Structural errors in the input (mask, interface ids and
// names) fail the render; problems confined to one rule skip that rule and
// are reported in Plan.Warnings, like legacy's log warnings.
func Render(in *Input) (*Plan, error) {
	r := &renderer{
		in:       in,
		mask:     in.Mask,
		fams:     []Family{IPv4, IPv6},
		ifaces:   make(map[string]*Interface, len(in.Interfaces)),
		policies: make(map[string]*Policy, len(in.Policies)),
		ipsets:   make(map[string]Family, len(in.Ipsets)),
		states:   make(map[string]*policyOutcome),
		plan:     &Plan{Table: Table{Name: TableName}},
		warned:   make(map[string]bool),
	}
	if in.NoIPv6 {
		r.fams = r.fams[:1]
	}
	if err := r.index(); err != nil {
		return nil, fmt.Errorf("render nft plan: %w", err)
	}
	r.computePolicies()
	r.marks()
	r.bypass()
	r.userRules()
	r.policyChains()
	r.hooks()
	return r.plan, nil
}

func (r *renderer) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !r.warned[msg] {
		r.warned[msg] = true
		r.plan.Warnings = append(r.plan.Warnings, msg)
	}
}

// isIdent reports whether s is a UCI identifier.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// isDevice reports whether s is a usable Linux interface name.
func isDevice(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

// isSetName reports whether s can name a user set (nft identifier).
func isSetName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i, c := range s {
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// index checks the structural invariants and builds the lookup maps.
func (r *renderer) index() error {
	var errs []error
	if err := r.mask.Validate(); err != nil {
		errs = append(errs, err)
	}
	ids := make(map[int]string)
	for i := range r.in.Interfaces {
		ifc := &r.in.Interfaces[i]
		switch {
		case !isIdent(ifc.Name):
			errs = append(errs, fmt.Errorf("interface %q: invalid name", ifc.Name))
			continue
		case r.ifaces[ifc.Name] != nil:
			errs = append(errs, fmt.Errorf("interface %s: defined twice", ifc.Name))
			continue
		case ifc.Family != IPv4 && ifc.Family != IPv6:
			errs = append(errs, fmt.Errorf("interface %s: family must be ipv4 or ipv6", ifc.Name))
		case ids[ifc.ID] != "":
			errs = append(errs, fmt.Errorf("interface %s: id %d already used by %s", ifc.Name, ifc.ID, ids[ifc.ID]))
		}
		if _, err := r.mask.IfaceMark(ifc.ID); err != nil && r.mask.Validate() == nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", ifc.Name, err))
		}
		if ifc.Device != "" && !isDevice(ifc.Device) {
			r.warnf("interface %s: ignoring invalid device name %q", ifc.Name, ifc.Device)
		}
		ids[ifc.ID] = ifc.Name
		r.ifaces[ifc.Name] = ifc
	}
	for i := range r.in.Policies {
		p := &r.in.Policies[i]
		switch {
		case !isIdent(p.Name):
			errs = append(errs, fmt.Errorf("policy %q: invalid name", p.Name))
		case r.policies[p.Name] != nil:
			errs = append(errs, fmt.Errorf("policy %s: defined twice", p.Name))
		default:
			r.policies[p.Name] = p
		}
	}
	for _, s := range r.in.Ipsets {
		if s.Family == IPv4 || s.Family == IPv6 {
			r.ipsets[s.Name] = s.Family
		}
	}
	return errors.Join(errs...)
}

// device returns the usable device of an interface, or "".
func device(ifc *Interface) string {
	if ifc.Enabled && isDevice(ifc.Device) {
		return ifc.Device
	}
	return ""
}

// ifaceMark returns the mark of a checked interface.
func (r *renderer) ifaceMark(ifc *Interface) uint32 { return r.mask.Mark(uint32(ifc.ID)) }

// actionMark returns the mark of a special action word.
func (r *renderer) actionMark(action string) uint32 {
	switch action {
	case actionDefault:
		return r.mask.DefaultMark()
	case actionBlackhole:
		return r.mask.BlackholeMark()
	}
	return r.mask.UnreachableMark()
}

func (r *renderer) setMark(v uint32) SetMark { return SetMark{Mask: uint32(r.mask), Value: v} }

func (r *renderer) unmarked() MarkCmp { return MarkCmp{Mask: uint32(r.mask)} }

func (r *renderer) addChain(c *Chain) { r.plan.Table.Chains = append(r.plan.Table.Chains, c) }

func (r *renderer) addSet(s *Set) { r.plan.Table.Sets = append(r.plan.Table.Sets, s) }

func (r *renderer) addCounter(info CounterInfo) {
	r.plan.Table.Counters = append(r.plan.Table.Counters, &Counter{Name: info.Name})
	r.plan.Counters = append(r.plan.Counters, info)
}

// marks renders the masked conntrack mark restore and save: verdict maps
// keyed by the mark value, one tiny chain per value (no register-to-
// register bitwise operations, which OpenWrt kernels lack). Values are the
// configured interface ids and the three special values.
func (r *renderer) marks() {
	var marks []uint32
	for _, ifc := range r.in.Interfaces {
		marks = append(marks, r.ifaceMark(&ifc))
	}
	marks = append(marks, r.mask.BlackholeMark(), r.mask.UnreachableMark(), r.mask.DefaultMark())
	slices.Sort(marks)
	marks = slices.Compact(marks)

	restore := &Set{Name: mapRestore, Key: KeyMark, Verdicts: true}
	save := &Set{Name: mapSave, Key: KeyMark, Verdicts: true}
	save.Map = append(save.Map, MapElem{Key: 0, Verdict: Verdict{Kind: Jump, Chain: saveChain(0)}})
	for _, m := range marks {
		restore.Map = append(restore.Map, MapElem{Key: m, Verdict: Verdict{Kind: Jump, Chain: restoreChain(m)}})
		save.Map = append(save.Map, MapElem{Key: m, Verdict: Verdict{Kind: Jump, Chain: saveChain(m)}})
	}
	r.addSet(restore)
	r.addSet(save)
	for _, m := range marks {
		r.addChain(&Chain{Name: restoreChain(m), Rules: []Rule{{Exprs: []Expr{r.setMark(m)}}}})
	}
	for _, m := range append([]uint32{0}, marks...) {
		set := r.setMark(m)
		set.Ct = true
		r.addChain(&Chain{Name: saveChain(m), Rules: []Rule{{Exprs: []Expr{set}}}})
	}
}

// bypass renders the connected/custom/dynamic sets, the bypass chain
// (destination in a set → default mark) and the per-interface inbound
// chains.
func (r *renderer) bypass() {
	for _, fam := range r.fams {
		for _, stem := range bypassStems {
			s := &Set{Name: stem + "_" + fam.String(), Key: addrKey(fam), Interval: true, AutoMerge: true}
			switch stem {
			case "mwan3_connected":
				s.Addrs = mergePrefixes(splitFamilies(r.in.Connected, fam))
			case "mwan3_custom":
				s.Addrs = mergePrefixes(splitFamilies(r.in.Custom, fam))
			default:
				s.Contents = Kept
			}
			r.addSet(s)
		}
	}

	def := r.setMark(r.mask.DefaultMark())
	bypass := &Chain{Name: chainBypass}
	in := &Chain{Name: chainIfacesIn}
	r.addChain(in)
	for i := range r.in.Interfaces {
		ifc := &r.in.Interfaces[i]
		dev := device(ifc)
		if dev == "" || !slices.Contains(r.fams, ifc.Family) {
			continue
		}
		c := &Chain{Name: ifaceInChain(ifc.Name)}
		for _, stem := range bypassStems {
			c.Rules = append(c.Rules, Rule{
				Exprs:   []Expr{r.unmarked(), AddrInSet{Family: ifc.Family, Set: stem + "_" + ifc.Family.String()}, def},
				Comment: actionDefault,
			})
		}
		c.Rules = append(c.Rules, Rule{Exprs: []Expr{r.unmarked(), r.setMark(r.ifaceMark(ifc))}, Comment: ifc.Name})
		r.addChain(c)
		in.Rules = append(in.Rules, Rule{Exprs: []Expr{
			Nfproto{ifc.Family}, IfName{Name: dev}, Verdict{Kind: Jump, Chain: c.Name},
		}})
	}
	for _, fam := range r.fams {
		for _, stem := range bypassStems {
			bypass.Rules = append(bypass.Rules, Rule{Exprs: []Expr{
				AddrInSet{Family: fam, Dst: true, Set: stem + "_" + fam.String()}, def,
			}})
		}
	}
	r.addChain(bypass)
}

// policyState computes the active members of a policy for one family
// (spec §4.5): the online members with the lowest metric, weights of
// members naming the same interface added up. out lists the offline
// members that have a device, most recently processed first (legacy "out"
// rules), when no member is online.
func (r *renderer) policyState(p *Policy, fam Family) *policyOutcome {
	st := PolicyState{Policy: p.Name, Family: fam, LastResort: p.LastResort}
	var out, members []*Interface
	switch st.LastResort {
	case actionDefault, actionBlackhole:
	default:
		st.LastResort = actionUnreachable
	}
	best := 257
	for _, m := range p.Members {
		ifc := r.ifaces[m.Interface]
		if ifc == nil || ifc.Family != fam || m.Metric > 256 {
			continue
		}
		if m.Weight < 1 || m.Weight > maxWeight {
			r.warnf("policy %s: member %s has weight %d outside 1..%d; ignoring it", p.Name, m.Name, m.Weight, maxWeight)
			continue
		}
		if !slices.Contains(members, ifc) {
			members = append(members, ifc)
		}
		switch {
		case ifc.Enabled && ifc.Online && m.Metric < best:
			best = m.Metric
			st.Active = st.Active[:0]
			fallthrough
		case ifc.Enabled && ifc.Online && m.Metric == best:
			if i := slices.IndexFunc(st.Active, func(a ActiveMember) bool { return a.ID == ifc.ID }); i >= 0 {
				st.Active[i].Weight += m.Weight
				continue
			}
			st.Active = append(st.Active, ActiveMember{Member: m.Name, Interface: ifc.Name, ID: ifc.ID, Metric: m.Metric, Weight: m.Weight})
		case !ifc.Online && device(ifc) != "":
			if !slices.Contains(out, ifc) {
				out = append(out, ifc)
			}
		}
	}
	if len(st.Active) > 0 {
		st.Total = 0
		for _, a := range st.Active {
			st.Total += a.Weight
		}
		return &policyOutcome{st, nil, members}
	}
	st.Active = nil
	slices.Reverse(out)
	return &policyOutcome{st, out, members}
}

// policyOutcome is a policy's state for one family with what its chain
// needs besides: the offline members that get "out" rules and every
// member interface of the family (each has a counter).
type policyOutcome struct {
	PolicyState
	out     []*Interface
	members []*Interface
}

// computePolicies computes the state of every policy and family.
func (r *renderer) computePolicies() {
	for i := range r.in.Policies {
		p := &r.in.Policies[i]
		if r.policies[p.Name] != p {
			continue
		}
		for _, fam := range r.fams {
			o := r.policyState(p, fam)
			r.states[policyChain(p.Name, fam)] = o
			r.plan.Policies = append(r.plan.Policies, o.PolicyState)
		}
	}
}

// policyChains renders one chain per policy and family, and one member
// chain per active member that counts and marks.
func (r *renderer) policyChains() {
	for i := range r.in.Policies {
		p := &r.in.Policies[i]
		if r.policies[p.Name] != p {
			continue
		}
		for _, fam := range r.fams {
			name := policyChain(p.Name, fam)
			o := r.states[name]
			st, out := o.PolicyState, o.out
			for _, ifc := range o.members {
				r.addCounter(CounterInfo{Name: memberChain(p.Name, fam, ifc.ID), Kind: CounterMember, Family: fam, Policy: p.Name, Interface: ifc.Name})
			}
			r.addCounter(CounterInfo{Name: name, Kind: CounterLastResort, Family: fam, Policy: p.Name})

			c := &Chain{Name: name}
			r.addChain(c)
			if len(st.Active) == 0 {
				def := r.setMark(r.mask.DefaultMark())
				for _, ifc := range out {
					c.Rules = append(c.Rules, Rule{
						Exprs:   []Expr{IfName{Out: true, Name: ifc.Device}, def},
						Comment: "out " + ifc.Name + " " + ifc.Device,
					})
				}
				c.Rules = append(c.Rules, Rule{
					Exprs:   []Expr{CounterRef{name}, r.setMark(r.actionMark(st.LastResort))},
					Comment: st.LastResort,
				})
				continue
			}
			var ng NumgenVmap
			for _, a := range st.Active {
				mc := &Chain{Name: memberChain(p.Name, fam, a.ID), Rules: []Rule{{
					Exprs:   []Expr{CounterRef{memberChain(p.Name, fam, a.ID)}, r.setMark(r.mask.Mark(uint32(a.ID)))},
					Comment: fmt.Sprintf("%s %d %d", a.Interface, a.Weight, st.Total),
				}}}
				r.addChain(mc)
				ng.Entries = append(ng.Entries, NumgenEntry{First: ng.Mod, Last: ng.Mod + uint32(a.Weight) - 1, Verdict: Verdict{Kind: Goto, Chain: mc.Name}})
				ng.Mod += uint32(a.Weight)
			}
			if len(st.Active) == 1 {
				c.Rules = []Rule{{Exprs: []Expr{ng.Entries[0].Verdict}}}
			} else {
				c.Rules = []Rule{{Exprs: []Expr{ng}}}
			}
		}
	}
}

// userRules renders the rules chain (user rules in config order, one
// variant per family, first match wins) and the sticky chains and sets.
func (r *renderer) userRules() {
	rules := &Chain{Name: chainRules}
	r.addChain(rules)
	seen := make(map[string]bool)
	var ipsets []string
	for i := range r.in.Rules {
		rule := &r.in.Rules[i]
		if !isIdent(rule.Name) || seen[rule.Name] {
			r.warnf("rule %q: invalid or duplicate name; skipping it", rule.Name)
			continue
		}
		seen[rule.Name] = true
		for _, fam := range r.fams {
			variants, ok := r.ruleVariant(rule, fam)
			if !ok {
				continue
			}
			if rule.Ipset != "" && !slices.Contains(ipsets, rule.Ipset) && !r.isBypassSet(rule.Ipset) {
				ipsets = append(ipsets, rule.Ipset)
				r.addSet(&Set{Name: rule.Ipset, Key: addrKey(fam), Interval: true, AutoMerge: true, Contents: Adopted})
			}
			for _, exprs := range variants {
				rules.Rules = append(rules.Rules, Rule{Exprs: exprs})
			}
			r.addCounter(CounterInfo{Name: ruleCounter(rule.Name, fam), Kind: CounterRule, Family: fam, Rule: rule.Name})
		}
	}
}

func (r *renderer) isBypassSet(name string) bool {
	for _, stem := range bypassStems {
		if name == stem+"_ipv4" || name == stem+"_ipv6" {
			return true
		}
	}
	return false
}

// ipsetFamily returns the family of a set named by a rule's ipset option.
func (r *renderer) ipsetFamily(name string) Family {
	for _, stem := range bypassStems {
		switch name {
		case stem + "_ipv4":
			return IPv4
		case stem + "_ipv6":
			return IPv6
		}
	}
	if f, ok := r.ipsets[name]; ok {
		return f
	}
	return IPv4
}

// maxAddrCombinations bounds the nft rules one family variant of a user
// rule expands to: one per combination of a source and a destination
// alternative (prefixes together are one alternative, each masked address
// another), as iptables expands address lists.
const maxAddrCombinations = 64

// anyAddr is the only alternative of an address option that matches any
// address of the family: no expression.
var anyAddr = []Expr{nil}

// addrAlternatives returns the alternatives of one address option of a
// rule for family fam: each is one match, or nil when the option matches
// any address of the family. It reports false (with a warning) when the
// family variant must not be emitted. The result must not be modified.
func (r *renderer) addrAlternatives(rule *UserRule, fam Family, opt string, ps []netip.Prefix, ms []MaskedAddr, dst bool) ([]Expr, bool) {
	if len(ps) == 0 && len(ms) == 0 {
		return anyAddr, true
	}
	mine := splitFamilies(ps, fam)
	var masked []Expr
	for _, m := range ms {
		if !m.valid() {
			r.warnf("rule %s: %s %s is not an address and a mask of one family; skipping the rule", rule.Name, opt, m)
			return nil, false
		}
		if familyOf(m.Addr) != fam {
			continue
		}
		if p, ok := m.prefix(); ok {
			mine = append(mine, p)
			continue
		}
		e := AddrMasked{Family: fam, Dst: dst, Mask: m.Mask, Value: m.value()}
		if !slices.Contains(masked, Expr(e)) {
			masked = append(masked, e)
		}
	}
	if len(mine) == 0 && len(masked) == 0 {
		var first fmt.Stringer
		if len(ps) > 0 {
			first = ps[0]
		} else {
			first = ms[0]
		}
		if rule.Family == FamilyAny {
			r.warnf("invalid %s address %s specified for rule %s", fam, first, rule.Name)
		} else {
			r.warnf("rule %s: %s has no %s address; skipping the rule", rule.Name, opt, fam)
		}
		return nil, false
	}
	if len(mine) == 0 {
		return masked, true
	}
	ranges := mergePrefixes(mine)
	if len(ranges) == 1 && ranges[0].prefixBits() == 0 {
		return anyAddr, true // 0.0.0.0/0 or ::/0 only selects the family
	}
	return append([]Expr{AddrMatch{Family: fam, Dst: dst, Ranges: ranges}}, masked...), true
}

// ruleVariant builds the family variant of a user rule (spec §4.4): one
// expression list per combination of address alternatives, all counting
// into the rule's counter and ending in the same action. It reports false
// when the variant is not emitted.
func (r *renderer) ruleVariant(rule *UserRule, fam Family) ([][]Expr, bool) {
	if rule.Family != FamilyAny && rule.Family != fam {
		return nil, false
	}
	if rule.UsePolicy == "" {
		return nil, false
	}
	special := rule.UsePolicy == actionDefault || rule.UsePolicy == actionUnreachable || rule.UsePolicy == actionBlackhole
	if !special && r.policies[rule.UsePolicy] == nil {
		r.warnf("rule %s: policy %s does not exist; skipping the rule", rule.Name, rule.UsePolicy)
		return nil, false
	}
	if rule.SrcIface != "" && !isDevice(rule.SrcDevice) {
		r.warnf("rule %s: could not find device corresponding to src_iface %s; skipping the rule until it is up", rule.Name, rule.SrcIface)
		return nil, false
	}
	proto, hasProto, err := ParseProto(rule.Proto)
	if err != nil {
		r.warnf("rule %s: %v; skipping the rule", rule.Name, err)
		return nil, false
	}

	head := []Expr{Nfproto{fam}} // shown only where nothing else implies it
	if rule.SrcDevice != "" && rule.SrcIface != "" {
		head = append(head, IfName{Name: rule.SrcDevice})
	}
	srcs, ok := r.addrAlternatives(rule, fam, "src_ip", rule.SrcIP, rule.SrcMasked, false)
	if !ok {
		return nil, false
	}
	dsts, ok := r.addrAlternatives(rule, fam, "dest_ip", rule.DestIP, rule.DestMasked, true)
	if !ok {
		return nil, false
	}
	if n := len(srcs) * len(dsts); n > maxAddrCombinations {
		r.warnf("rule %s: %d combinations of src_ip and dest_ip alternatives exceed %d; skipping the rule", rule.Name, n, maxAddrCombinations)
		return nil, false
	}
	var exprs []Expr // the matches after the addresses, and the action
	if rule.Ipset != "" {
		if !isSetName(rule.Ipset) || rule.Ipset == mapRestore || rule.Ipset == mapSave || strings.HasPrefix(rule.Ipset, "sticky_") {
			r.warnf("rule %s: ipset name %q cannot be used; skipping the rule", rule.Name, rule.Ipset)
			return nil, false
		}
		setFam := r.ipsetFamily(rule.Ipset)
		if setFam != fam {
			if rule.Family == fam {
				r.warnf("rule %s: ipset %s holds %s addresses, the rule is %s; skipping the rule", rule.Name, rule.Ipset, setFam, fam)
			}
			return nil, false
		}
		exprs = append(exprs, AddrInSet{Family: fam, Dst: true, Set: rule.Ipset})
	}
	ports := len(rule.SrcPort) > 0 || len(rule.DestPort) > 0
	if ports && !(hasProto && (proto == protoTCP || proto == protoUDP)) {
		r.warnf("rule %s: src_port/dest_port set but proto %q is not tcp or udp; ports will be ignored", rule.Name, rule.Proto)
		ports = false
	}
	switch {
	case ports:
		if len(rule.SrcPort) > 0 {
			exprs = append(exprs, PortMatch{Proto: proto, Ranges: mergePorts(rule.SrcPort)})
		}
		if len(rule.DestPort) > 0 {
			exprs = append(exprs, PortMatch{Proto: proto, Dst: true, Ranges: mergePorts(rule.DestPort)})
		}
	case hasProto:
		exprs = append(exprs, L4Proto{proto})
	}
	exprs = append(exprs, CounterRef{ruleCounter(rule.Name, fam)})
	if r.in.Logging && rule.Logging {
		exprs = append(exprs, Log{Prefix: "MWAN3(" + rule.Name + ")", Level: r.logLevel()})
	}
	switch {
	case special:
		exprs = append(exprs, r.setMark(r.actionMark(rule.UsePolicy)), Verdict{Kind: Return})
	case rule.Sticky:
		exprs = append(exprs, Verdict{Kind: Goto, Chain: r.stickyChain(rule, fam)})
	default:
		exprs = append(exprs, Verdict{Kind: Goto, Chain: policyChain(rule.UsePolicy, fam)})
	}
	variants := make([][]Expr, 0, len(srcs)*len(dsts))
	for _, src := range srcs {
		for _, dst := range dsts {
			v := append(make([]Expr, 0, len(head)+2+len(exprs)), head...)
			if src != nil {
				v = append(v, src)
			}
			if dst != nil {
				v = append(v, dst)
			}
			variants = append(variants, append(v, exprs...))
		}
	}
	return variants, true
}

func (r *renderer) logLevel() LogLevel {
	if r.in.LogLevel == "" {
		return LogNotice
	}
	l, err := ParseLogLevel(r.in.LogLevel)
	if err != nil {
		r.warnf("globals: %v; using notice", err)
		return LogNotice
	}
	return l
}

// stickyChain renders the sticky chain of a rule for one family (spec
// §4.6, §4.9) and returns its name. Candidates are the policy's active
// members, tried in reverse config order; a source with a live entry in a
// candidate's set keeps that candidate. Sets of members that are no longer
// active are not rendered, so the apply deletes them and their sources
// move on.
func (r *renderer) stickyChain(rule *UserRule, fam Family) string {
	name := stickyChain(rule.Name, fam)
	cands := slices.Clone(r.states[policyChain(rule.UsePolicy, fam)].Active)
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID > cands[j].ID })
	timeout := rule.Timeout
	if timeout <= 0 {
		timeout = DefaultStickyTimeout
	}
	c := &Chain{Name: name}
	for _, a := range cands {
		set := stickySet(rule.Name, fam, a.ID)
		r.addSet(&Set{Name: set, Key: addrKey(fam), Dynamic: true, Timeout: timeout, Size: stickySetSize, Contents: Kept})
		c.Rules = append(c.Rules, Rule{Exprs: []Expr{r.unmarked(), AddrInSet{Family: fam, Set: set}, r.setMark(r.mask.Mark(uint32(a.ID)))}})
	}
	c.Rules = append(c.Rules, Rule{Exprs: []Expr{r.unmarked(), Verdict{Kind: Jump, Chain: policyChain(rule.UsePolicy, fam)}}})
	slices.Reverse(cands)
	for _, a := range cands {
		c.Rules = append(c.Rules, Rule{Exprs: []Expr{
			MarkCmp{Mask: uint32(r.mask), Value: r.mask.Mark(uint32(a.ID))},
			SetUpdate{Family: fam, Set: stickySet(rule.Name, fam, a.ID)},
		}})
	}
	r.addChain(c)
	return name
}

// hooks renders the base chains and the hook chain (spec §4.2).
func (r *renderer) hooks() {
	m := uint32(r.mask)
	hook := &Chain{Name: chainHook}
	if slices.Contains(r.fams, IPv6) {
		hook.Rules = append(hook.Rules, Rule{Exprs: []Expr{ICMPv6Types{ndTypes}, Verdict{Kind: Return}}})
	}
	hook.Rules = append(hook.Rules,
		Rule{Exprs: []Expr{r.unmarked(), MarkVmap{Ct: true, Mask: m, Map: mapRestore}}},
		Rule{Exprs: []Expr{r.unmarked(), Verdict{Kind: Jump, Chain: chainIfacesIn}}},
		Rule{Exprs: []Expr{r.unmarked(), Verdict{Kind: Jump, Chain: chainBypass}}},
		Rule{Exprs: []Expr{r.unmarked(), Verdict{Kind: Jump, Chain: chainRules}}},
		Rule{Exprs: []Expr{MarkVmap{Mask: m, Map: mapSave}}},
		Rule{Exprs: []Expr{MarkCmp{Mask: m, Value: r.mask.DefaultMark(), Neq: true}, Verdict{Kind: Jump, Chain: chainBypass}}},
	)
	pre := &Chain{Name: chainPrerouting, Hook: &Hook{Type: "filter", Hook: "prerouting", Priority: priorityMangle1}}
	pre.Rules = []Rule{{Exprs: []Expr{Verdict{Kind: Jump, Chain: chainHook}}}}
	out := &Chain{Name: chainOutput, Hook: &Hook{Type: "route", Hook: "output", Priority: priorityMangle1}}
	// A use rule accepts at once: the hook would save the mark into the
	// conntrack mark (and send connected destinations to main, which the
	// interface's table reaches too). The socket expression is not
	// allowed in postrouting, so that conntrack mark, still zero at the
	// first packet, is what tells use connections there; they are
	// masqueraded unless their source is an address of the out interface.
	post := &Chain{Name: chainPostrouting, Hook: &Hook{Type: "nat", Hook: "postrouting", Priority: prioritySrcnat1}}
	masqueraded := map[string]bool{}
	for _, u := range r.in.Uses {
		ifc := r.ifaces[u.Interface]
		if ifc == nil || !ifc.Enabled {
			r.warnf("use: interface %s is not an enabled mwan3 interface; ignoring cgroup %d", u.Interface, u.Cgroup)
			continue
		}
		mark := r.ifaceMark(ifc)
		// Like legacy's shim, only sockets of the interface's family.
		fam := Nfproto{ifc.Family}
		out.Rules = append(out.Rules, Rule{
			Exprs:   []Expr{fam, Cgroup{Level: u.Level, ID: u.Cgroup}, r.unmarked(), r.setMark(mark), Verdict{Kind: Accept}},
			Comment: "use " + ifc.Name,
		})
		if !masqueraded[ifc.Name] {
			masqueraded[ifc.Name] = true
			post.Rules = append(post.Rules, Rule{
				Exprs: []Expr{fam, MarkCmp{Mask: m, Value: mark}, MarkCmp{Ct: true, Mask: m}, SaddrLocal{},
					SaddrLocal{OnOif: true, Neq: true}, Masquerade{}},
				Comment: "use " + ifc.Name,
			})
		}
	}
	base := []*Chain{pre, out}
	if len(post.Rules) > 0 {
		base = append(base, post)
	}
	out.Rules = append(out.Rules, pre.Rules[0])
	// Base chains and the hook chain go first: they read best at the top.
	r.plan.Table.Chains = append(append(base, hook), r.plan.Table.Chains...)
}
