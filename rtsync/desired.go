package rtsync

import (
	"cmp"
	"net/netip"
	"slices"
	"sort"
)

// Kernel constants rtsync needs (Linux values; kept here so the pure code
// builds everywhere).
const (
	tableMain  = 254
	tableLocal = 255

	rtnUnicast = 1

	rtnhFOnlink = 4
)

// multicast4 is always in the IPv4 connected set (spec §4R.4, §10.20).
var multicast4 = netip.MustParsePrefix("224.0.0.0/3")

// linkLocal6 is the IPv6 link-local prefix, never copied from other devices.
var linkLocal6 = netip.MustParsePrefix("fe80::/64")

// Desired computes the policy routing state for in, given the kernel's links
// and routes (spec §3.4–§3.6, §4R). It is pure and deterministic.
//
// Per family (IPv6 unless in.NoIPv6):
//   - the global rules 2000+blackhole and 2000+unreachable;
//   - for every enabled interface that is up with a device, in config order:
//     rules 1000+id (iif), 2000+id (fwmark lookup) and 3000+id (fwmark
//     unreachable), and table id filled from the main table and the
//     rt_table_lookup tables: routes through its own device (default routes
//     included), never routes through another mwan3 interface's device, and
//     every other route except default routes and fe80::/64;
//   - the connected and custom network lists.
func Desired(in Input, snap Snapshot) (*State, error) {
	m, err := validate(in)
	if err != nil {
		return nil, err
	}
	st := &State{names: make(map[int]string, len(snap.Links))}
	index := make(map[string]int, len(snap.Links))
	for _, l := range snap.Links {
		st.names[l.Index] = l.Name
		index[l.Name] = l.Index
	}
	for _, f := range families(in) {
		st.Rules = append(st.Rules,
			Rule{Family: f, Priority: prioLookup + m.blackhole(), Mark: m.mark(m.blackhole()), Mask: m.mask, Action: ActionBlackhole},
			Rule{Family: f, Priority: prioLookup + m.unreachable(), Mark: m.mark(m.unreachable()), Mask: m.mask, Action: ActionUnreachable},
		)
		owners := make(map[int]int) // link index → id of the interface owning the device
		var up []Interface
		for _, ifc := range in.Interfaces {
			if ifc.Family != f || !ifc.Enabled || !ifc.Up || ifc.Device == "" {
				continue
			}
			up = append(up, ifc)
			if idx, ok := index[ifc.Device]; ok {
				if _, taken := owners[idx]; !taken {
					owners[idx] = ifc.ID
				}
			}
			id := uint32(ifc.ID)
			mark := m.mark(id)
			st.Rules = append(st.Rules,
				Rule{Family: f, Priority: prioIIF + id, IIF: ifc.Device, Action: ActionLookup, Table: id},
				Rule{Family: f, Priority: prioLookup + id, Mark: mark, Mask: m.mask, Action: ActionLookup, Table: id},
				Rule{Family: f, Priority: prioGuard + id, Mark: mark, Mask: m.mask, Action: ActionUnreachable},
			)
		}
		sources := sourceRoutes(in, f, snap.Routes)
		for _, ifc := range up {
			t := Table{Family: f, ID: uint32(ifc.ID), Interface: ifc.Name, Routes: make([]Route, 0, len(sources))}
			for _, r := range sources {
				owner := routeOwner(r, owners)
				if owner != ifc.ID && (owner != 0 || r.IsDefault() || r.Dst == linkLocal6) {
					continue
				}
				r.Table = t.ID
				// IPv6 merges or replaces routes of equal key (gateway
				// routes become multipath): keep the first so that the
				// table can hold exactly what is desired. Sorting made
				// routes of equal key adjacent.
				if n := len(t.Routes); f == IPv6 && n > 0 && compareKeys(t.Routes[n-1], r) == 0 {
					continue
				}
				t.Routes = append(t.Routes, r)
			}
			st.Tables = append(st.Tables, t)
		}
		connected, custom := bypassNetworks(in, f, snap.Routes)
		if f == IPv4 {
			st.Connected4, st.Custom4 = connected, custom
		} else {
			st.Connected6, st.Custom6 = connected, custom
		}
	}
	// sort.Slice rather than slices.SortFunc in this package: every struct
	// type sorted generically costs 10-17 KB of MIPS code in the binary.
	rules := st.Rules
	sort.SliceStable(rules, func(i, j int) bool {
		return cmp.Or(cmp.Compare(rules[i].Family, rules[j].Family), cmp.Compare(rules[i].Priority, rules[j].Priority)) < 0
	})
	tables := st.Tables
	sort.Slice(tables, func(i, j int) bool {
		return cmp.Or(cmp.Compare(tables[i].Family, tables[j].Family), cmp.Compare(tables[i].ID, tables[j].ID)) < 0
	})
	return st, nil
}

// families lists the families in manages, IPv4 first.
func families(in Input) []Family {
	if in.NoIPv6 {
		return []Family{IPv4}
	}
	return []Family{IPv4, IPv6}
}

// ownTables returns the table ids of the interfaces of family f.
func ownTables(in Input, f Family) map[uint32]bool {
	own := make(map[uint32]bool)
	for _, ifc := range in.Interfaces {
		if ifc.Family == f {
			own[uint32(ifc.ID)] = true
		}
	}
	return own
}

// sourceTables are the tables whose routes are copied: main and the
// rt_table_lookup tables, except tables of our own ids (which would feed
// back into themselves).
func sourceTables(in Input, f Family) map[uint32]bool {
	own := ownTables(in, f)
	src := map[uint32]bool{tableMain: true}
	for _, t := range in.TableLookup {
		if !own[t] {
			src[t] = true
		}
	}
	return src
}

// sourceRoutes returns the normalised, de-duplicated, sorted routes of
// family f that are candidates for copying.
func sourceRoutes(in Input, f Family, routes []Route) []Route {
	src := sourceTables(in, f)
	var out []Route
	for _, r := range routes {
		if r.Family != f || !src[r.Table] {
			continue
		}
		r = normalize(r)
		r.Table = 0
		if !in.SourceRouting && r.IsDefault() {
			r.Src = netip.Prefix{}
		}
		out = append(out, r)
	}
	sortRoutes(out)
	return slices.Compact(out)
}

// normalize drops what the kernel reports but never accepts back or what
// describes the route's momentary state (spec §4R.1): linkdown, offload,
// dead and similar flags, on the route and on each nexthop.
func normalize(r Route) Route {
	r.Flags &= rtnhFOnlink
	if r.MultiPath != "" {
		r.MultiPath = normalizeMultiPath(r.Family, r.MultiPath)
	}
	return r
}

// routeOwner returns the id of the mwan3 interface whose device r uses, 0
// when it uses no mwan3 device and −1 when it spans several.
func routeOwner(r Route, owners map[int]int) int {
	owner := ownerOf(r.OIF, owners, 0)
	for nh := range nexthops(r.Family, r.MultiPath) {
		owner = ownerOf(nh.ifindex, owners, owner)
	}
	return owner
}

// ownerOf folds device dev into the owner found so far.
func ownerOf(dev int, owners map[int]int, owner int) int {
	id, ok := owners[dev]
	switch {
	case dev == 0 || !ok || owner == id:
		return owner
	case owner == 0:
		return id
	}
	return -1
}

// bypassNetworks computes the connected and custom networks of family f
// (spec §4.3, §4R.4).
//
// IPv4 connected: destinations of the main table's routes and of every typed
// (non-unicast) route in any table, plus 224.0.0.0/3. IPv6 connected:
// destinations of the main table's unicast routes. Custom: destinations of
// the unicast routes of the rt_table_lookup tables. Default routes never
// count.
func bypassNetworks(in Input, f Family, routes []Route) (connected, custom []netip.Prefix) {
	lookup := make(map[uint32]bool, len(in.TableLookup))
	for _, t := range in.TableLookup {
		lookup[t] = true
	}
	if f == IPv4 {
		connected = append(connected, multicast4)
	}
	for _, r := range routes {
		if r.Family != f || r.IsDefault() {
			continue
		}
		dst := r.Dst.Masked()
		switch {
		case f == IPv4 && (r.Table == tableMain || r.Type != rtnUnicast):
			connected = append(connected, dst)
		case f == IPv6 && r.Table == tableMain && r.Type == rtnUnicast:
			connected = append(connected, dst)
		}
		if lookup[r.Table] && r.Type == rtnUnicast {
			custom = append(custom, dst)
		}
	}
	return sortPrefixes(connected), sortPrefixes(custom)
}

// sortPrefixes sorts and de-duplicates ps.
func sortPrefixes(ps []netip.Prefix) []netip.Prefix {
	sort.Slice(ps, func(i, j int) bool { return comparePrefixes(ps[i], ps[j]) < 0 })
	return slices.Compact(ps)
}

func comparePrefixes(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// sortRoutes sorts rs by compareRoutes.
func sortRoutes(rs []Route) {
	sort.Slice(rs, func(i, j int) bool { return compareRoutes(rs[i], rs[j]) < 0 })
}

// compareRoutes orders routes like a routing table listing: by family,
// table, then the kernel's key (destination, source, tos, metric), then the
// remaining fields, so the order is total and routes of equal key are
// adjacent.
func compareRoutes(a, b Route) int {
	if c := compareKeys(a, b); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.OIF, b.OIF); c != 0 {
		return c
	}
	if c := a.Gateway.Compare(b.Gateway); c != 0 {
		return c
	}
	if a == b {
		return 0
	}
	return cmp.Or(
		cmp.Compare(a.NHID, b.NHID),
		cmp.Compare(a.MultiPath, b.MultiPath),
		cmp.Compare(a.Protocol, b.Protocol),
		cmp.Compare(a.Scope, b.Scope),
		a.PrefSrc.Compare(b.PrefSrc),
		cmp.Compare(a.Flags, b.Flags),
		compareBool(a.HasPref, b.HasPref),
		cmp.Compare(a.Pref, b.Pref),
		cmp.Compare(a.Realm, b.Realm),
		cmp.Compare(a.Metrics, b.Metrics),
		cmp.Compare(a.EncapType, b.EncapType),
		cmp.Compare(a.Encap, b.Encap),
	)
}

// compareKeys orders routes by family, table and kernel key.
func compareKeys(a, b Route) int {
	if c := cmp.Compare(a.Family, b.Family); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Table, b.Table); c != 0 {
		return c
	}
	if c := comparePrefixes(a.Dst, b.Dst); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Src.Bits(), b.Src.Bits()); c != 0 {
		return c
	}
	if c := a.Src.Addr().Compare(b.Src.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Tos, b.Tos); c != 0 {
		return c
	}
	return cmp.Compare(a.Priority, b.Priority)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
