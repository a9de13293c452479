package rtsync

import (
	"github.com/mwan3d/mwan3d/internal/golden"

	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// topo names link indexes for test routes.
type topo map[string]int

func (tp topo) links() []Link {
	var ls []Link
	for name, idx := range tp {
		ls = append(ls, Link{Index: idx, Name: name, Up: true, Carrier: true})
	}
	slices.SortFunc(ls, func(a, b Link) int { return cmp.Compare(a.Index, b.Index) })
	return ls
}

// route parses an `ip route` line (the subset rtsync renders) of family f in
// table. It is the inverse of Route.format for tests.
func (tp topo) route(t testing.TB, f Family, table uint32, line string) Route {
	t.Helper()
	r, err := tp.parseRoute(f, table, line)
	if err != nil {
		t.Fatalf("route %q: %v", line, err)
	}
	return r
}

func (tp topo) parseRoute(f Family, table uint32, line string) (Route, error) {
	r := Route{Family: f, Table: table, Type: rtnUnicast, Protocol: 3}
	w := strings.Fields(line)
	if len(w) == 0 {
		return r, fmt.Errorf("empty")
	}
	if i := slices.Index(routeTypes[:], w[0]); i > 0 {
		r.Type = uint8(i)
		w = w[1:]
	}
	prefix := func(s string) (netip.Prefix, error) {
		if s == "default" {
			return netip.PrefixFrom(f.unspecified(), 0), nil
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			return netip.PrefixFrom(a, a.BitLen()), err
		}
		return netip.ParsePrefix(s)
	}
	var err error
	if r.Dst, err = prefix(w[0]); err != nil {
		return r, err
	}
	dev := func(s string) (int, error) {
		idx, ok := tp[s]
		if !ok {
			return 0, fmt.Errorf("unknown device %q", s)
		}
		return idx, nil
	}
	var mp []byte
	for i := 1; i < len(w); i++ {
		arg := ""
		if i+1 < len(w) {
			arg = w[i+1]
		}
		switch w[i] {
		case "from":
			r.Src, err = prefix(arg)
		case "via":
			if arg == "inet6" || arg == "inet" {
				i++
				arg = w[i+1]
			}
			r.Gateway, err = netip.ParseAddr(arg)
		case "dev":
			r.OIF, err = dev(arg)
		case "proto":
			r.Protocol, err = lookupName(routeProtocols, arg)
		case "scope":
			r.Scope, err = lookupName(routeScopes, arg)
		case "src":
			r.PrefSrc, err = netip.ParseAddr(arg)
		case "metric":
			var v uint64
			v, err = strconv.ParseUint(arg, 10, 32)
			r.Priority = uint32(v)
		case "table":
			var v uint64
			v, err = strconv.ParseUint(arg, 10, 32)
			r.Table = uint32(v)
		case "pref":
			r.HasPref = true
			r.Pref, err = lookupName(map[uint8]string{0: "medium", 1: "high", 3: "low"}, arg)
		case "mtu":
			var v uint64
			v, err = strconv.ParseUint(arg, 10, 32)
			r.Metrics = string(appendAttrU32(nil, 2, uint32(v)))
		case "onlink":
			r.Flags |= rtnhFOnlink
			continue
		case "linkdown":
			r.Flags |= 16
			continue
		case "nexthop":
			// nexthop via A dev D weight W
			if i+6 >= len(w) || w[i+1] != "via" || w[i+3] != "dev" || w[i+5] != "weight" {
				return r, fmt.Errorf("nexthop needs: via A dev D weight W")
			}
			gw, err := netip.ParseAddr(w[i+2])
			if err != nil {
				return r, err
			}
			idx, err := dev(w[i+4])
			if err != nil {
				return r, err
			}
			weight, err := strconv.Atoi(w[i+6])
			if err != nil || weight < 1 || weight > 256 {
				return r, fmt.Errorf("bad weight %q", w[i+6])
			}
			gwAttr := appendAttr(nil, rtaGateway, gw.AsSlice())
			nh := ne.AppendUint16(nil, uint16(rtnhLen+len(gwAttr)))
			nh = append(nh, 0, byte(weight-1))
			nh = ne.AppendUint32(nh, uint32(idx))
			mp = append(mp, append(nh, gwAttr...)...)
			i += 6
			continue
		default:
			return r, fmt.Errorf("unknown word %q", w[i])
		}
		if err != nil {
			return r, fmt.Errorf("%s: %w", w[i], err)
		}
		i++
	}
	if mp != nil {
		r.MultiPath = string(mp)
	}
	return r, nil
}

func lookupName(names map[uint8]string, s string) (uint8, error) {
	for v, n := range names {
		if n == s {
			return v, nil
		}
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return uint8(v), err
}

// routes parses a block of "table: line" or plain lines (table main).
func (tp topo) routes(t testing.TB, f Family, block string) []Route {
	t.Helper()
	var rs []Route
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		table := uint32(tableMain)
		if before, after, ok := strings.Cut(line, ": "); ok && !strings.ContainsAny(before, " ") {
			if v, err := strconv.ParseUint(before, 10, 32); err == nil {
				table, line = uint32(v), strings.TrimSpace(after)
			}
		}
		rs = append(rs, tp.route(t, f, table, line))
	}
	return rs
}

// fakeKernel is an in-memory Kernel with the kernel's semantics for the
// operations rtsync uses. Each operation is atomic.
type fakeKernel struct {
	mu     sync.Mutex
	links  []Link
	rules  []Rule
	routes []Route
	ops    int
	// fail, when set, may fail an operation (name, argument).
	fail func(op string, v any) error
}

func (k *fakeKernel) op(name string, v any) error {
	k.ops++
	if k.fail != nil {
		return k.fail(name, v)
	}
	return nil
}

func (k *fakeKernel) Links() ([]Link, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.links), nil
}

func (k *fakeKernel) Rules(f Family) ([]Rule, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Rule
	for _, r := range k.rules {
		if r.Family == f {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	return out, nil
}

func (k *fakeKernel) Routes(f Family) ([]Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Route
	for _, r := range k.routes {
		if r.Family == f {
			out = append(out, r)
		}
	}
	return out, nil
}

func (k *fakeKernel) AddRule(r Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("AddRule", r); err != nil {
		return err
	}
	if !slices.Contains(k.rules, r) {
		k.rules = append(k.rules, r)
	}
	return nil
}

func (k *fakeKernel) DelRule(r Rule) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("DelRule", r); err != nil {
		return err
	}
	if i := slices.Index(k.rules, r); i >= 0 {
		k.rules = slices.Delete(k.rules, i, i+1)
	}
	return nil
}

func (k *fakeKernel) ReplaceRoute(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("ReplaceRoute", r); err != nil {
		return err
	}
	for i, old := range k.routes {
		if old.Family == r.Family && old.Table == r.Table && keyOf(old) == keyOf(r) {
			k.routes[i] = r
			return nil
		}
	}
	k.routes = append(k.routes, r)
	return nil
}

func (k *fakeKernel) AddRoute(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("AddRoute", r); err != nil {
		return err
	}
	if !slices.Contains(k.routes, r) {
		k.routes = append(k.routes, r)
	}
	return nil
}

func (k *fakeKernel) DelRoute(r Route) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("DelRoute", r); err != nil {
		return err
	}
	for i, old := range k.routes {
		if normalize(old) == r {
			k.routes = slices.Delete(k.routes, i, i+1)
			return nil
		}
	}
	return nil
}

func (k *fakeKernel) setRoutes(rs []Route) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.routes = slices.Clone(rs)
}

func (k *fakeKernel) opCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ops
}

// dump renders the kernel state like `ip rule` plus `ip route show table
// all`, sorted, for comparisons.
func (k *fakeKernel) dump() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	names := make(map[int]string)
	for _, l := range k.links {
		names[l.Index] = l.Name
	}
	rules := slices.Clone(k.rules)
	slices.SortStableFunc(rules, func(a, b Rule) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Priority, b.Priority))
	})
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "%v %s\n", r.Family, r)
	}
	routes := slices.Clone(k.routes)
	slices.SortFunc(routes, compareRoutes)
	for _, r := range routes {
		fmt.Fprintf(&b, "%v table %s: %s\n", r.Family, tableName(r.Table), r.format(names))
	}
	return b.String()
}

// golden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string { return golden.Diff(want, got) }
