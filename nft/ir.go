package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the intermediate representation: the table as plain Go
// values whose String methods print what `nft list table inet mwan3`
// prints for it (nft 1.0.6, counters at zero). The kernel translation of
// every value lives in one place, translate_linux.go.

// Family is an address family.
type Family uint8

// Families. FamilyAny is only meaningful for rules ("both families").
const (
	FamilyAny Family = iota
	IPv4
	IPv6
)

// String returns the legacy spelling: "any", "ipv4", "ipv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	default:
		return "any"
	}
}

// payloadProto is the nft protocol keyword of the network header.
func (f Family) payloadProto() string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}

// Table is the whole `inet` table: named counters, sets and maps, and
// chains, each printed in slice order (which is also creation order).
type Table struct {
	Name     string
	Counters []*Counter
	Sets     []*Set
	Chains   []*Chain
}

// Counter is a named counter object. Rules count into it with CounterRef;
// it survives chain flushes, so counts survive re-applies.
type Counter struct {
	Name string
}

// KeyType is the key type of a named set or map.
type KeyType uint8

// Key types.
const (
	KeyIPv4 KeyType = iota + 1 // ipv4_addr
	KeyIPv6                    // ipv6_addr
	KeyMark                    // mark (host byte order)
)

func (k KeyType) String() string {
	switch k {
	case KeyIPv4:
		return "ipv4_addr"
	case KeyIPv6:
		return "ipv6_addr"
	case KeyMark:
		return "mark"
	}
	return "invalid"
}

// perLine is how many elements nft prints per line in a named set of
// this key type.
func (k KeyType) perLine() int {
	switch k {
	case KeyIPv4:
		return 2
	case KeyMark:
		return 5
	}
	return 1
}

// addrKey returns the key type of addresses of family f.
func addrKey(f Family) KeyType {
	if f == IPv6 {
		return KeyIPv6
	}
	return KeyIPv4
}

// Contents says who owns the elements of a named set.
type Contents uint8

// Set contents.
const (
	// Managed sets hold exactly the plan's elements: every apply replaces
	// their contents in the same transaction.
	Managed Contents = iota
	// Kept sets are created empty when missing; their elements belong to
	// the packet path or to users and survive every apply. A kept set
	// whose type or flags changed is re-created (emptied).
	Kept
	// Adopted sets are like Kept, but an existing set with the same key
	// type is used as it is, whatever its flags (users' ipset sets that
	// dnsmasq or scripts may have created first).
	Adopted
)

// Set is a named set, or a verdict map when Verdicts is true.
type Set struct {
	Name     string
	Key      KeyType
	Verdicts bool // a map from the key to a verdict (type … : verdict)
	Interval bool
	// AutoMerge makes nft merge overlapping elements that users add by
	// hand; the plan's own elements are merged already.
	AutoMerge bool
	Dynamic   bool          // updated from the packet path
	Timeout   time.Duration // default element timeout; 0 = none
	Size      uint32        // maximum number of elements; 0 = unlimited
	Contents  Contents

	Addrs []AddrRange // elements of a managed address set, sorted, disjoint
	Map   []MapElem   // elements of a managed verdict map, sorted by key
}

// MapElem is one element of a verdict map keyed by a mark.
type MapElem struct {
	Key     uint32
	Verdict Verdict
}

// Chain is a chain; base chains have a Hook.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

// Hook makes a chain a base chain (policy accept).
type Hook struct {
	Type     string // "filter", "route" or "nat"
	Hook     string // "prerouting", "output" or "postrouting"
	Priority int32
}

// Rule is a sequence of expressions (matches, then statements, then at
// most one verdict) with an optional comment.
type Rule struct {
	Exprs   []Expr
	Comment string
}

// Expr is one element of a rule. The set of expressions is closed: every
// kind is translated to kernel expressions in translate_linux.go.
type Expr interface {
	fmt.Stringer
	isExpr()
}

// Nfproto matches the packet's network family.
type Nfproto struct{ Family Family }

// L4Proto matches the transport protocol number.
type L4Proto struct{ Proto uint8 }

// MarkCmp tests the packet mark (or the conntrack mark, when Ct is set)
// under a mask: (mark & Mask) == Value, or != Value when Neq is set.
type MarkCmp struct {
	Ct          bool
	Mask, Value uint32
	Neq         bool
}

// IfName matches the input (or output, when Out is set) interface name.
type IfName struct {
	Out  bool
	Name string
}

// AddrMatch matches the source (or destination, when Dst is set) address
// against ranges: one range is a plain comparison, several an anonymous
// interval set.
type AddrMatch struct {
	Family Family
	Dst    bool
	Ranges []AddrRange
}

// AddrMasked matches the source (or destination) address under a mask
// that is not a prefix: addr & Mask == Value, where Value has no bits
// outside Mask. Mask and Value are addresses of Family.
type AddrMasked struct {
	Family      Family
	Dst         bool
	Mask, Value netip.Addr
}

// AddrInSet looks the source (or destination) address up in a named set.
type AddrInSet struct {
	Family Family
	Dst    bool
	Set    string
}

// PortMatch matches the source (or destination) port of TCP (6) or UDP
// (17); it implies the protocol.
type PortMatch struct {
	Proto  uint8
	Dst    bool
	Ranges []PortRange
}

// ICMPv6Types matches ICMPv6 message types; it implies IPv6 and ICMPv6.
type ICMPv6Types struct{ Types []uint8 }

// NumgenVmap draws `numgen random mod Mod` and jumps through an anonymous
// interval verdict map.
type NumgenVmap struct {
	Mod     uint32
	Entries []NumgenEntry
}

// NumgenEntry maps the draws First…Last to a verdict.
type NumgenEntry struct {
	First, Last uint32
	Verdict     Verdict
}

// MarkVmap looks the packet mark (or the conntrack mark, when Ct is set)
// under Mask up in a named verdict map.
type MarkVmap struct {
	Ct   bool
	Mask uint32
	Map  string
}

// CounterRef counts the packet into a named counter.
type CounterRef struct{ Name string }

// Log logs the packet with a prefix at a syslog level.
type Log struct {
	Prefix string
	Level  LogLevel
}

// SetMark sets the bits under Mask of the packet mark (or the conntrack
// mark, when Ct is set) to Value and keeps all other bits:
// mark = (mark & ^Mask) | Value.
type SetMark struct {
	Ct          bool
	Mask, Value uint32
}

// SetUpdate adds the packet's source address to a timeout set, or
// refreshes the timeout of an existing element.
type SetUpdate struct {
	Family Family
	Set    string
}

// SaddrLocal matches when the source address is an address of the router
// (of the output interface when OnOif is set), or is not when Neq is set:
// a fib address type lookup. OnOif needs an output, forward or
// postrouting hook.
type SaddrLocal struct{ OnOif, Neq bool }

// Masquerade rewrites the source address of a new connection to the
// output interface's primary address (nat postrouting chains only).
type Masquerade struct{}

// Cgroup matches the cgroup v2 id of the sending socket's cgroup
// ancestor at Level (locally generated traffic only).
type Cgroup struct {
	Level uint32
	ID    uint64
}

// VerdictKind is the kind of a verdict.
type VerdictKind uint8

// Verdict kinds.
const (
	Jump VerdictKind = iota + 1
	Goto
	Return
	Accept
)

// Verdict ends rule evaluation: jump or goto a chain, return, or accept
// (ends the base chain).
type Verdict struct {
	Kind  VerdictKind
	Chain string
}

func (Nfproto) isExpr()     {}
func (L4Proto) isExpr()     {}
func (MarkCmp) isExpr()     {}
func (IfName) isExpr()      {}
func (AddrMatch) isExpr()   {}
func (AddrMasked) isExpr()  {}
func (AddrInSet) isExpr()   {}
func (PortMatch) isExpr()   {}
func (ICMPv6Types) isExpr() {}
func (NumgenVmap) isExpr()  {}
func (MarkVmap) isExpr()    {}
func (CounterRef) isExpr()  {}
func (Log) isExpr()         {}
func (SetMark) isExpr()     {}
func (SetUpdate) isExpr()   {}
func (Cgroup) isExpr()      {}
func (SaddrLocal) isExpr()  {}
func (Masquerade) isExpr()  {}
func (Verdict) isExpr()     {}

// LogLevel is a syslog level as nft names it.
type LogLevel uint8

// Log levels, in kernel order.
const (
	LogEmerg LogLevel = iota
	LogAlert
	LogCrit
	LogErr
	LogWarn
	LogNotice
	LogInfo
	LogDebug
)

var logLevelNames = [...]string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "level" + strconv.Itoa(int(l))
}

// ParseLogLevel maps a legacy loglevel (emerg alert crit error warning
// notice info debug; nft spellings accepted too) to a LogLevel.
func ParseLogLevel(s string) (LogLevel, error) {
	switch s {
	case "error":
		return LogErr, nil
	case "warning":
		return LogWarn, nil
	}
	if i := slices.Index(logLevelNames[:], s); i >= 0 {
		return LogLevel(i), nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// ---- printing ----

func hex32(v uint32) string { return fmt.Sprintf("0x%08x", v) }

func (e Nfproto) String() string { return "meta nfproto " + e.Family.String() }

func (e L4Proto) String() string { return "meta l4proto " + protoName(e.Proto) }

func (e MarkCmp) String() string {
	op := "=="
	if e.Neq {
		op = "!="
	}
	src := "meta mark"
	if e.Ct {
		src = "ct mark"
	}
	return src + " & " + hex32(e.Mask) + " " + op + " " + hex32(e.Value)
}

func (e IfName) String() string {
	if e.Out {
		return `oifname "` + e.Name + `"`
	}
	return `iifname "` + e.Name + `"`
}

func addrField(f Family, dst bool) string {
	if dst {
		return f.payloadProto() + " daddr"
	}
	return f.payloadProto() + " saddr"
}

func (e AddrMatch) String() string {
	return addrField(e.Family, e.Dst) + " " + anonList(e.Ranges)
}

// String prints the match as nft does: "ip daddr & 0.0.0.1 == 0.0.0.1".
func (e AddrMasked) String() string {
	return addrField(e.Family, e.Dst) + " & " + nftAddr(e.Mask) + " == " + nftAddr(e.Value)
}

func (e AddrInSet) String() string { return addrField(e.Family, e.Dst) + " @" + e.Set }

func (e PortMatch) String() string {
	dir := " sport "
	if e.Dst {
		dir = " dport "
	}
	return protoName(e.Proto) + dir + anonList(e.Ranges)
}

// anonList prints one element bare and several as an anonymous set.
func anonList[T fmt.Stringer](xs []T) string {
	if len(xs) == 1 {
		return xs[0].String()
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

var icmpv6Names = map[uint8]string{
	133: "nd-router-solicit",
	134: "nd-router-advert",
	135: "nd-neighbor-solicit",
	136: "nd-neighbor-advert",
	137: "nd-redirect",
}

func (e ICMPv6Types) String() string {
	parts := make([]string, len(e.Types))
	for i, t := range e.Types {
		if n, ok := icmpv6Names[t]; ok {
			parts[i] = n
		} else {
			parts[i] = strconv.Itoa(int(t))
		}
	}
	if len(parts) == 1 {
		return "icmpv6 type " + parts[0]
	}
	return "icmpv6 type { " + strings.Join(parts, ", ") + " }"
}

func (e NumgenVmap) String() string {
	parts := make([]string, len(e.Entries))
	for i, en := range e.Entries {
		k := strconv.FormatUint(uint64(en.First), 10)
		if en.Last != en.First {
			k += "-" + strconv.FormatUint(uint64(en.Last), 10)
		}
		parts[i] = k + " : " + en.Verdict.String()
	}
	return fmt.Sprintf("numgen random mod %d vmap { %s }", e.Mod, strings.Join(parts, ", "))
}

func (e MarkVmap) String() string {
	src := "meta mark"
	if e.Ct {
		src = "ct mark"
	}
	return src + " & " + hex32(e.Mask) + " vmap @" + e.Map
}

func (e CounterRef) String() string { return `counter name "` + e.Name + `"` }

func (e Log) String() string {
	s := `log prefix "` + e.Prefix + `"`
	if e.Level != LogWarn { // nft omits its default level
		s += " level " + e.Level.String()
	}
	return s
}

// String prints the statement as nft shows it: the kernel computes
// (mark & ^Mask) ^ Value, which nft displays as "& (^Mask|Value) | Value"
// and shortens when one side is trivial.
func (e SetMark) String() string {
	src := "meta mark"
	if e.Ct {
		src = "ct mark"
	}
	keep := ^e.Mask | e.Value
	var v string
	switch {
	case keep == 0xffffffff && e.Value != 0:
		v = src + " | " + hex32(e.Value)
	case e.Value == 0:
		v = src + " & " + hex32(keep)
	default:
		v = src + " & " + hex32(keep) + " | " + hex32(e.Value)
	}
	return src + " set " + v
}

func (e SetUpdate) String() string {
	return "update @" + e.Set + " { " + e.Family.payloadProto() + " saddr }"
}

func (e Cgroup) String() string {
	return fmt.Sprintf("socket cgroupv2 level %d %d", e.Level, e.ID)
}

func (e SaddrLocal) String() string {
	s := "fib saddr"
	if e.OnOif {
		s += " . oif"
	}
	if e.Neq {
		return s + " type != local"
	}
	return s + " type local"
}

func (Masquerade) String() string { return "masquerade" }

func (v Verdict) String() string {
	switch v.Kind {
	case Jump:
		return "jump " + v.Chain
	case Goto:
		return "goto " + v.Chain
	case Return:
		return "return"
	case Accept:
		return "accept"
	}
	return "invalid verdict"
}

// impliedFamily returns the network family an expression depends on, for
// the expressions after which nft considers `meta nfproto` redundant.
func impliedFamily(e Expr) Family {
	switch e := e.(type) {
	case AddrMatch:
		return e.Family
	case AddrMasked:
		return e.Family
	case AddrInSet:
		return e.Family
	case SetUpdate:
		return e.Family
	case ICMPv6Types:
		return IPv6
	case L4Proto:
		switch e.Proto {
		case 1: // icmp exists only in IPv4
			return IPv4
		case protoICMPv6:
			return IPv6
		}
	}
	return FamilyAny
}

// String prints the rule as one nft line. Like nft, it leaves out a
// `meta nfproto` match that a later expression implies.
func (r Rule) String() string {
	var b strings.Builder
	for i, e := range r.Exprs {
		if n, ok := e.(Nfproto); ok && slices.ContainsFunc(r.Exprs[i+1:], func(x Expr) bool { return impliedFamily(x) == n.Family }) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.String())
	}
	if r.Comment != "" {
		b.WriteString(` comment "` + r.Comment + `"`)
	}
	return b.String()
}

// priorityNames are nft's symbolic base chain priorities (inet family).
var priorityNames = []struct {
	name string
	prio int32
}{
	{"raw", -300}, {"mangle", -150}, {"dstnat", -100}, {"filter", 0}, {"security", 50}, {"srcnat", 100},
}

func priorityString(p int32) string {
	for _, n := range priorityNames {
		switch d := p - n.prio; {
		case d == 0:
			return n.name
		case d > 0 && d <= 10:
			return n.name + " + " + strconv.Itoa(int(d))
		case d < 0 && d >= -10:
			return n.name + " - " + strconv.Itoa(int(-d))
		}
	}
	return strconv.Itoa(int(p))
}

// String prints the chain block as nft lists it (one tab of indentation).
func (c *Chain) String() string {
	var b strings.Builder
	b.WriteString("\tchain " + c.Name + " {\n")
	if c.Hook != nil {
		fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy accept;\n", c.Hook.Type, c.Hook.Hook, priorityString(c.Hook.Priority))
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t" + r.String() + "\n")
	}
	b.WriteString("\t}")
	return b.String()
}

// String prints the counter block.
func (c *Counter) String() string {
	return "\tcounter " + c.Name + " {\n\t\tpackets 0 bytes 0\n\t}"
}

// String prints the set or map block as nft lists it.
func (s *Set) String() string {
	var b strings.Builder
	kind := "set"
	if s.Verdicts {
		kind = "map"
	}
	b.WriteString("\t" + kind + " " + s.Name + " {\n")
	if s.Verdicts {
		b.WriteString("\t\ttype " + s.Key.String() + " : verdict\n")
	} else {
		b.WriteString("\t\ttype " + s.Key.String() + "\n")
	}
	if s.Size != 0 {
		fmt.Fprintf(&b, "\t\tsize %d\n", s.Size)
	}
	var flags []string
	if s.Dynamic {
		flags = append(flags, "dynamic")
	}
	if s.Interval {
		flags = append(flags, "interval")
	}
	if s.Timeout != 0 {
		flags = append(flags, "timeout")
	}
	if len(flags) > 0 {
		b.WriteString("\t\tflags " + strings.Join(flags, ",") + "\n")
	}
	if s.Timeout != 0 {
		b.WriteString("\t\ttimeout " + nftDuration(s.Timeout) + "\n")
	}
	if s.AutoMerge {
		b.WriteString("\t\tauto-merge\n")
	}
	var elems []string
	for _, a := range s.Addrs {
		elems = append(elems, a.String())
	}
	for _, m := range s.Map {
		elems = append(elems, hex32(m.Key)+" : "+m.Verdict.String())
	}
	if len(elems) > 0 {
		b.WriteString("\t\telements = { ")
		per := s.Key.perLine()
		for i, e := range elems {
			if i > 0 {
				if i%per == 0 {
					b.WriteString(",\n\t\t\t     ")
				} else {
					b.WriteString(", ")
				}
			}
			b.WriteString(e)
		}
		b.WriteString(" }\n")
	}
	b.WriteString("\t}")
	return b.String()
}

// nftDuration formats a duration as nft does: 1d2h3m4s, with
// milliseconds when present.
func nftDuration(d time.Duration) string {
	ms := d.Milliseconds()
	var b strings.Builder
	for _, u := range []struct {
		suffix string
		ms     int64
	}{{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}} {
		if n := ms / u.ms; n > 0 {
			b.WriteString(strconv.FormatInt(n, 10) + u.suffix)
			ms -= n * u.ms
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// String prints the table as `nft list table inet <name>` does.
func (t *Table) String() string {
	var blocks []string
	for _, c := range t.Counters {
		blocks = append(blocks, c.String())
	}
	for _, s := range t.Sets {
		blocks = append(blocks, s.String())
	}
	for _, c := range t.Chains {
		blocks = append(blocks, c.String())
	}
	if len(blocks) == 0 {
		return "table inet " + t.Name + " {\n}\n"
	}
	return "table inet " + t.Name + " {\n" + strings.Join(blocks, "\n\n") + "\n}\n"
}
