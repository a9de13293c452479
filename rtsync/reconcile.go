package rtsync

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
)

// Kernel is the narrow seam between rtsync and the kernel's routing state.
// [NetlinkKernel] implements it over rtnetlink; tests use an in-memory fake.
//
// Adding something that already exists and deleting something that is
// already gone are not errors.
type Kernel interface {
	// Links lists the network devices.
	Links() ([]Link, error)
	// Rules lists the ip rules of family f.
	Rules(f Family) ([]Rule, error)
	// Routes lists the routes of every table of family f.
	Routes(f Family) ([]Route, error)
	// AddRule adds r.
	AddRule(r Rule) error
	// DelRule deletes the rule matching r.
	DelRule(r Rule) error
	// ReplaceRoute creates r, replacing the route of its table with the
	// same destination, source, tos and metric (`ip route replace`).
	ReplaceRoute(r Route) error
	// AddRoute creates r next to any route with the same key.
	AddRoute(r Route) error
	// DelRoute deletes the route matching r.
	DelRoute(r Route) error
}

// tableKey names one kernel table of one family.
type tableKey struct {
	family Family
	id     uint32
}

// routeKey is what the kernel uses to find the route a replace replaces.
type routeKey struct {
	dst, src netip.Prefix
	tos      uint8
	priority uint32
}

func keyOf(r Route) routeKey {
	return routeKey{dst: r.Dst, src: r.Src, tos: r.Tos, priority: r.Priority}
}

// Syncer reconciles the kernel with the desired state. It is not safe for
// concurrent use; the [Watcher] (or the daemon loop) owns it.
type Syncer struct {
	k   Kernel
	log *slog.Logger
	// tables are the tables rtsync may have written into, per family.
	tables map[tableKey]bool
	// masks are the masks whose rule slots rtsync may have used.
	masks map[uint32]bool
	// ipv6 is set once rtsync managed IPv6.
	ipv6 bool
}

// NewSyncer returns a Syncer working on k. A nil log discards messages.
func NewSyncer(k Kernel, log *slog.Logger) *Syncer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{k: k, log: log, tables: make(map[tableKey]bool), masks: make(map[uint32]bool)}
}

// scanFamilies are the families whose kernel state rtsync looks at: those
// of the input plus IPv6 when it was managed before.
func (s *Syncer) scanFamilies(in Input) []Family {
	if in.NoIPv6 && !s.ipv6 {
		return []Family{IPv4}
	}
	return []Family{IPv4, IPv6}
}

// Snapshot reads the links and every route of the families rtsync manages.
func (s *Syncer) Snapshot(in Input) (Snapshot, error) {
	var snap Snapshot
	links, err := s.k.Links()
	if err != nil {
		return snap, fmt.Errorf("list links: %w", err)
	}
	snap.Links = links
	for _, f := range s.scanFamilies(in) {
		routes, err := s.k.Routes(f)
		if err != nil {
			return snap, fmt.Errorf("list %v routes: %w", f, err)
		}
		if snap.Routes == nil {
			snap.Routes = routes
		} else {
			snap.Routes = append(snap.Routes, routes...)
		}
	}
	return snap, nil
}

// Reconcile makes the kernel match [Desired](in, kernel state): it lists the
// kernel's rules and routes and applies the difference, adding before
// deleting: first the new and changed routes (a changed route is replaced in
// place), then the new rules, then the stale rules, last the stale routes.
// So a table is filled before a rule points at it and a rule is gone before
// its table is emptied. Only rules in mwan3's priority slots with mwan3's
// shapes and routes in tables of mwan3 ids are ever touched. With an
// unchanged kernel and input a second call issues no kernel operation.
//
// Errors of single operations are collected and the remaining work is done;
// the returned Result is valid even then (its State is nil only when the
// input is invalid or the kernel could not be read).
func (s *Syncer) Reconcile(in Input) (Result, error) {
	m, err := validate(in)
	if err != nil {
		return Result{Err: err}, err
	}
	snap, err := s.Snapshot(in)
	if err != nil {
		return Result{Err: err}, err
	}
	want, err := Desired(in, snap)
	if err != nil {
		return Result{Err: err}, err
	}
	s.masks[m.mask] = true
	if !in.NoIPv6 {
		s.ipv6 = true
	}
	p := plan{names: want.names}
	var errs []error
	for _, f := range s.scanFamilies(in) {
		var wantRules []Rule
		for _, r := range want.Rules {
			if r.Family == f {
				wantRules = append(wantRules, r)
			}
		}
		if err := s.planRules(&p, f, wantRules); err != nil {
			errs = append(errs, err)
		}
	}
	owned := s.ownedTables(in)
	wanted := make(map[tableKey][]Route)
	for _, t := range want.Tables {
		k := tableKey{t.Family, t.ID}
		owned[k] = true
		wanted[k] = t.Routes
	}
	current := make(map[tableKey][]Route)
	for _, r := range snap.Routes {
		if k := (tableKey{r.Family, r.Table}); owned[k] {
			current[k] = append(current[k], normalize(r))
		}
	}
	for _, k := range sortedKeys(owned) {
		planTable(&p, wanted[k], current[k])
	}
	n, failed, err := s.apply(p)
	errs = append(errs, err)
	for k := range owned {
		if len(wanted[k]) > 0 || failed[k] {
			s.tables[k] = true
		} else {
			delete(s.tables, k)
		}
	}
	res := Result{State: want, Links: snap.Links, Changes: n, Err: errors.Join(errs...)}
	if res.Err == nil {
		// Everything of other masks and of IPv6 (when off) is gone now.
		clear(s.masks)
		s.masks[m.mask] = true
		s.ipv6 = !in.NoIPv6
	}
	return res, res.Err
}

// plan lists the kernel operations of one reconcile, in the order they are
// applied.
type plan struct {
	names     map[int]string // link names for messages
	addRoutes []routeAdd
	addRules  []Rule
	delRules  []Rule
	delRoutes []Route
}

// routeAdd adds r, or replaces the route with its key.
type routeAdd struct {
	r       Route
	replace bool
}

// ownedTables returns the tables rtsync may hold routes in: those of the
// configured ids of each family and those it wrote before.
func (s *Syncer) ownedTables(in Input) map[tableKey]bool {
	owned := maps.Clone(s.tables)
	for _, f := range s.scanFamilies(in) {
		for id := range ownTables(in, f) {
			owned[tableKey{f, id}] = true
		}
	}
	return owned
}

func sortedKeys(m map[tableKey]bool) []tableKey {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		return cmp.Or(cmp.Compare(keys[i].family, keys[j].family), cmp.Compare(keys[i].id, keys[j].id)) < 0
	})
	return keys
}

// owns reports whether a kernel rule is one of ours: in a priority slot of a
// mask we use or used, with a shape we create.
func (s *Syncer) owns(r Rule) bool {
	if r.Unmanaged {
		return false
	}
	shape := r.IIF != "" && r.Mask == 0 && r.Action == ActionLookup ||
		r.IIF == "" && r.Mask != 0 && r.Action != ActionOther
	if !shape {
		return false
	}
	for mask := range s.masks {
		if m, err := newMarks(mask); err == nil && m.ownsRulePriority(r.Priority) {
			return true
		}
	}
	return false
}

// planRules plans the changes that make our rules of family f equal want.
func (s *Syncer) planRules(p *plan, f Family, want []Rule) error {
	have, err := s.k.Rules(f)
	if err != nil {
		return fmt.Errorf("list %v rules: %w", f, err)
	}
	present := make(map[Rule]bool)
	for _, r := range have {
		if !s.owns(r) {
			continue
		}
		if present[r] || !slices.Contains(want, r) {
			p.delRules = append(p.delRules, r) // unwanted, or a duplicate
			continue
		}
		present[r] = true
	}
	for _, r := range want {
		if !present[r] {
			p.addRules = append(p.addRules, r)
		}
	}
	return nil
}

// planTable plans the changes that turn the routes have of one table into
// want (sorted by compareRoutes, as Desired returns them). A changed route
// whose key (destination, source, tos, metric) is unique on both sides is
// replaced in place; other new routes are added and stale ones deleted.
func planTable(p *plan, want, have []Route) {
	sortRoutes(have)
	var add, stale []Route
	for i, j := 0, 0; i < len(want) || j < len(have); {
		c := 0
		switch {
		case j == len(have):
			c = -1
		case i == len(want):
			c = 1
		default:
			c = compareRoutes(want[i], have[j])
		}
		switch {
		case c < 0:
			add = append(add, want[i])
			i++
		case c > 0:
			stale = append(stale, have[j]) // unwanted, or a duplicate
			j++
		default:
			i++
			j++
		}
	}
	// Which additions can replace a stale route in place.
	var staleByKey map[routeKey][]int
	var wantKeys map[routeKey]int
	if len(stale) > 0 && len(add) > 0 {
		staleByKey = make(map[routeKey][]int, len(stale))
		for i, r := range stale {
			staleByKey[keyOf(r)] = append(staleByKey[keyOf(r)], i)
		}
		wantKeys = make(map[routeKey]int, len(stale))
		for _, r := range want {
			if k := keyOf(r); staleByKey[k] != nil {
				wantKeys[k]++
			}
		}
	}
	// Routes to directly connected destinations first, so that gateways of
	// later routes resolve inside the table.
	sort.SliceStable(add, func(i, j int) bool {
		a, b := add[i], add[j]
		return cmp.Or(compareBool(a.Gateway.IsValid() || a.MultiPath != "", b.Gateway.IsValid() || b.MultiPath != ""), -cmp.Compare(a.Scope, b.Scope)) < 0
	})
	replaced := make([]bool, len(stale))
	for _, r := range add {
		k := keyOf(r)
		old := staleByKey[k]
		replace := len(old) == 1 && wantKeys[k] == 1
		if replace {
			replaced[old[0]] = true
		}
		p.addRoutes = append(p.addRoutes, routeAdd{r: r, replace: replace})
	}
	for i, r := range stale {
		if !replaced[i] {
			p.delRoutes = append(p.delRoutes, r)
		}
	}
}

// apply issues the operations of p in order and collects their errors; it
// returns the number of operations and the tables where one failed.
func (s *Syncer) apply(p plan) (int, map[tableKey]bool, error) {
	failed := make(map[tableKey]bool)
	var errs []error
	routeErr := func(op string, r Route, err error) {
		failed[tableKey{r.Family, r.Table}] = true
		errs = append(errs, fmt.Errorf("%v table %d: %s route %q: %w", r.Family, r.Table, op, r.format(p.names), err))
	}
	for _, a := range p.addRoutes {
		var err error
		if a.replace {
			err = s.k.ReplaceRoute(a.r)
		} else {
			err = s.k.AddRoute(a.r)
		}
		if err != nil {
			routeErr("add", a.r, err)
		}
	}
	for _, r := range p.addRules {
		if err := s.k.AddRule(r); err != nil {
			errs = append(errs, fmt.Errorf("add %v rule %q: %w", r.Family, r, err))
			continue
		}
		s.log.Debug("rule added", "family", r.Family, "rule", r.String())
	}
	for _, r := range p.delRules {
		if err := s.k.DelRule(r); err != nil {
			errs = append(errs, fmt.Errorf("delete %v rule %q: %w", r.Family, r, err))
			continue
		}
		s.log.Debug("rule deleted", "family", r.Family, "rule", r.String())
	}
	for _, r := range p.delRoutes {
		if err := s.k.DelRoute(r); err != nil {
			routeErr("delete", r, err)
		}
	}
	n := len(p.addRoutes) + len(p.addRules) + len(p.delRules) + len(p.delRoutes)
	return n, failed, errors.Join(errs...)
}

// Cleanup removes every rule and table entry of ours: the rules in mwan3's
// priority slots with mwan3's shapes and every route of the tables of the
// interfaces in in (and of any table Reconcile wrote). Nothing else is
// touched.
func (s *Syncer) Cleanup(in Input) error {
	if m, err := newMarks(in.Mask); err == nil {
		s.masks[m.mask] = true
	}
	var p plan
	var errs []error
	owned := s.ownedTables(in)
	for _, f := range s.scanFamilies(in) {
		errs = append(errs, s.planRules(&p, f, nil))
		routes, err := s.k.Routes(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %v routes: %w", f, err))
			continue
		}
		for _, r := range routes {
			if owned[tableKey{f, r.Table}] {
				p.delRoutes = append(p.delRoutes, normalize(r))
			}
		}
	}
	_, _, err := s.apply(p)
	if err := errors.Join(append(errs, err)...); err != nil {
		return err
	}
	clear(s.tables)
	return nil
}
