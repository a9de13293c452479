//go:build linux

package nft

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// elementsPerMessage bounds the set elements of one netlink message: the
// element list is one attribute, whose length field has 16 bits.
const elementsPerMessage = 500

// Socket buffer sizing for one transaction. The kernel handles the whole
// batch inside one sendmsg and queues an acknowledgement (and, for rules,
// an echo) per message before the first read, so both buffers must hold
// the whole exchange. They are limits, not allocations.
const (
	bufferBase       = 8 << 20
	bufferPerMessage = 4 << 10
	bufferMax        = 1 << 30
)

// DefaultTimeout bounds the wait for the kernel's answers to one
// transaction.
const DefaultTimeout = 30 * time.Second

// Applier changes the kernel's ruleset to a plan, one atomic transaction
// per call, with a fresh netlink connection every time (google/nftables
// v0.3.0 poisons a connection after one failed Flush). It remembers what
// it applied last so that chains and managed sets the new plan does not
// change are not rewritten (deleting rules costs the kernel an RCU grace
// period per transaction); chains or sets that were removed or re-created
// behind its back are noticed and restored, but rules edited by hand in
// an unchanged chain are not. It is safe for concurrent use.
type Applier struct {
	netns   int
	log     *slog.Logger
	timeout time.Duration

	mu sync.Mutex // serialises transactions and guards applied
	// applied holds the fingerprints of the last plan applied
	// successfully, to leave unchanged chains and sets alone.
	applied map[string]string
}

// ApplierOption configures an Applier.
type ApplierOption func(*Applier)

// WithNetNS makes the Applier work in the network namespace referred to by
// fd (which must stay open while the Applier is used) instead of the
// caller's.
func WithNetNS(fd int) ApplierOption { return func(a *Applier) { a.netns = fd } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) ApplierOption { return func(a *Applier) { a.log = l } }

// WithTimeout bounds the wait for the kernel's answers (default
// DefaultTimeout).
func WithTimeout(d time.Duration) ApplierOption { return func(a *Applier) { a.timeout = d } }

// NewApplier returns an Applier.
func NewApplier(opts ...ApplierOption) *Applier {
	a := &Applier{log: slog.New(slog.DiscardHandler), timeout: DefaultTimeout}
	for _, o := range opts {
		o(a)
	}
	return a
}

func (a *Applier) conn(extra ...nftables.ConnOption) (*nftables.Conn, error) {
	var opts []nftables.ConnOption
	if a.netns > 0 {
		opts = append(opts, nftables.WithNetNSFd(a.netns))
	}
	return nftables.New(append(opts, extra...)...)
}

func inetTable(name string) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
}

// kernelState is what the table holds before a transaction.
type kernelState struct {
	exists   bool
	chains   map[string]*nftables.Chain
	sets     map[string]*nftables.Set
	counters map[string]bool
}

// readState lists the table's chains, named sets and counters.
func (a *Applier) readState(name string) (*kernelState, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	st := &kernelState{chains: map[string]*nftables.Chain{}, sets: map[string]*nftables.Set{}, counters: map[string]bool{}}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	st.exists = slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == name })
	if !st.exists {
		return st, nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == name {
			st.chains[ch.Name] = ch
		}
	}
	sets, err := c.GetSets(inetTable(name))
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	for _, s := range sets {
		if !s.Anonymous && !strings.HasPrefix(s.Name, "__") {
			st.sets[s.Name] = s
		}
	}
	objs, err := c.GetObjects(inetTable(name))
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			st.counters[co.Name] = true
		}
	}
	return st, nil
}

// ownedSet reports whether an existing set not in the plan is mwan3's own
// (and may be deleted). Other sets in the table are users' sets, which a
// rule may name again later; they and their elements stay.
func ownedSet(name string) bool {
	if name == mapRestore || name == mapSave || strings.HasPrefix(name, "sticky_") {
		return true
	}
	for _, stem := range bypassStems {
		if name == stem+"_ipv4" || name == stem+"_ipv6" {
			return true
		}
	}
	return false
}

// compatible reports whether an existing set can serve as the planned set
// without being re-created.
func compatible(have *nftables.Set, want *Set) bool {
	if have.IsMap != want.Verdicts {
		return false
	}
	if want.Verdicts {
		// v0.3.0 decodes a verdict map's data type into KeyType; the
		// flags are what matters for a map we refill anyway.
		return have.Interval == want.Interval
	}
	wantKey := keyType(want.Key)
	if have.KeyType.GetNFTMagic() != wantKey.GetNFTMagic() {
		return false
	}
	if want.Contents == Adopted {
		return true
	}
	return have.Interval == want.Interval && have.Dynamic == want.Dynamic &&
		have.HasTimeout == (want.Timeout != 0) && have.Timeout == want.Timeout &&
		have.Size == want.Size && (!want.Interval || have.AutoMerge == want.AutoMerge)
}

// sameHook reports whether an existing chain has the planned hook.
func sameHook(have *nftables.Chain, want *Chain) bool {
	if want.Hook == nil || have.Hooknum == nil {
		return want.Hook == nil && have.Hooknum == nil
	}
	return string(have.Type) == want.Hook.Type && *have.Hooknum == hookNum(want.Hook.Hook) &&
		have.Priority != nil && int32(*have.Priority) == want.Hook.Priority
}

func hookNum(h string) nftables.ChainHook {
	switch h {
	case "output":
		return *nftables.ChainHookOutput
	case "postrouting":
		return *nftables.ChainHookPostrouting
	}
	return *nftables.ChainHookPrerouting
}

// tx is one transaction being built: the library connection plus a
// description of every queued netlink message, so that a kernel error
// (which carries the failing message's sequence number) names the chain,
// set or rule.
type tx struct {
	conn  *nftables.Conn
	table *nftables.Table
	descs []string
	rules map[int][]expr.Any // rule expressions by message index, for diagnosis
	ids   setIDs
	named map[string]*nftables.Set
	seq   uint32            // sequence number of the probe sent just before the batch
	next  map[string]string // fingerprints of the plan, recorded when it applies
}

func (t *tx) note(n int, format string, args ...any) {
	d := fmt.Sprintf(format, args...)
	for range n {
		t.descs = append(t.descs, d)
	}
}

// Apply makes the kernel's table equal to the plan in one transaction. The
// table is created when missing and never deleted; chains whose content
// changes are flushed and refilled, chains, counters and mwan3's sets that
// the plan no longer has are deleted, managed sets get exactly the plan's
// elements, and the elements of kept and adopted sets (sticky, dynamic,
// users' ipsets) and all counters are left alone. On error nothing
// changed, except when the error wraps syscall.ENOBUFS: then the kernel's
// answers were lost and the outcome is unknown (applying the plan again is
// safe).
func (a *Applier) Apply(p *Plan) error {
	if p == nil || p.Table.Name == "" {
		return errors.New("apply nft plan: empty plan")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	start := time.Now()
	st, err := a.readState(p.Table.Name)
	if err != nil {
		return fmt.Errorf("apply nft plan: read table inet %s: %w", p.Table.Name, err)
	}
	t := &tx{table: inetTable(p.Table.Name), named: map[string]*nftables.Set{}, rules: map[int][]expr.Any{}}
	t.conn, err = a.conn(nftables.WithSockOptions(func(c *netlink.Conn) error { return a.prepareSocket(c, t) }))
	if err != nil {
		return fmt.Errorf("apply nft plan: %w", err)
	}
	if err := t.build(p, st, a.applied); err != nil {
		return fmt.Errorf("apply nft plan: %w", err)
	}
	if err := t.conn.Flush(); err != nil {
		if errors.Is(err, syscall.ENOBUFS) {
			a.applied = nil // outcome unknown: rewrite everything next time
		}
		return fmt.Errorf("apply nft plan: %w", t.explain(err))
	}
	a.applied = t.next
	a.log.Debug("nft plan applied", "table", p.Table.Name, "messages", len(t.descs), "took", time.Since(start))
	return nil
}

// prepareSocket sizes the socket buffers for the transaction, bounds the
// wait for answers, asks for extended acknowledgements and learns the
// connection's sequence numbers with one GETGEN request.
func (a *Applier) prepareSocket(c *netlink.Conn, t *tx) error {
	size := min(bufferBase+bufferPerMessage*len(t.descs), bufferMax)
	for _, opt := range []struct {
		force int
		set   func(int) error
	}{{unix.SO_SNDBUFFORCE, c.SetWriteBuffer}, {unix.SO_RCVBUFFORCE, c.SetReadBuffer}} {
		if err := setSockopt(c, opt.force, size); err != nil {
			if err := opt.set(size); err != nil {
				return fmt.Errorf("socket buffer: %w", err)
			}
		}
	}
	_ = c.SetOption(netlink.ExtendedAcknowledge, true) // better messages when available
	if a.timeout > 0 {
		if err := c.SetDeadline(time.Now().Add(a.timeout)); err != nil {
			return fmt.Errorf("socket deadline: %w", err)
		}
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: netlink.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	})
	if err != nil {
		return fmt.Errorf("probe sequence number: %w", err)
	}
	if len(msgs) > 0 {
		t.seq = msgs[0].Header.Sequence
	}
	return nil
}

func setSockopt(c *netlink.Conn, opt, v int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, v) }); err != nil {
		return err
	}
	return serr
}

// build queues the whole transaction. prev holds the fingerprints of the
// last plan applied successfully: chains and managed sets whose
// fingerprint is unchanged (and that exist) are left alone.
func (t *tx) build(p *Plan, st *kernelState, prev map[string]string) error {
	c := t.conn
	c.AddTable(t.table)
	t.note(1, "table inet %s", t.table.Name)
	next := p.fingerprints()
	same := func(key string) bool { v, ok := prev[key]; return ok && v == next[key] }

	// Which sets must be created (missing, or incompatible: re-created).
	create := map[string]bool{}
	for _, s := range p.Table.Sets {
		if have := st.sets[s.Name]; have == nil || !compatible(have, s) {
			create[s.Name] = true
		}
	}
	// Which chains get their rules (again): new, changed, or using a set
	// that is re-created.
	wantChains := map[string]*Chain{}
	fill := map[string]bool{}
	for _, ch := range p.Table.Chains {
		wantChains[ch.Name] = ch
		have := st.chains[ch.Name]
		fill[ch.Name] = have == nil || !sameHook(have, ch) || !same("chain "+ch.Name) ||
			slices.ContainsFunc(ch.refs(), func(n string) bool { return create[n] })
	}

	// 1. Empty the chains that change or go, so nothing references what
	// is deleted below.
	var drop []*nftables.Chain
	for _, name := range slices.Sorted(maps.Keys(st.chains)) {
		have := st.chains[name]
		want := wantChains[name]
		if want != nil && !fill[name] {
			continue
		}
		c.FlushChain(have)
		t.note(1, "flush chain %s", name)
		if want == nil || !sameHook(have, want) {
			drop = append(drop, have)
		}
	}
	// 2. Sets: empty the managed ones that change, delete mwan3's sets the
	// plan no longer has and the incompatible ones.
	for _, s := range p.Table.Sets {
		have := st.sets[s.Name]
		switch {
		case have != nil && create[s.Name]:
			c.DelSet(have)
			t.note(1, "delete set %s (type or flags changed)", s.Name)
		case have != nil:
			t.named[s.Name] = &nftables.Set{Table: t.table, Name: s.Name}
			if s.Contents == Managed && !same("set "+s.Name) {
				c.FlushSet(t.named[s.Name])
				t.note(1, "flush set %s", s.Name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.sets)) {
		if ownedSet(name) && !slices.ContainsFunc(p.Table.Sets, func(s *Set) bool { return s.Name == name }) {
			c.DelSet(st.sets[name])
			t.note(1, "delete set %s", name)
		}
	}
	// 3. Counters and chains that go.
	wantCounters := map[string]bool{}
	for _, ctr := range p.Table.Counters {
		wantCounters[ctr.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(st.counters)) {
		if !wantCounters[name] {
			c.DeleteObject(&nftables.CounterObj{Table: t.table, Name: name})
			t.note(1, "delete counter %s", name)
		}
	}
	for _, ch := range drop {
		c.DelChain(ch)
		t.note(1, "delete chain %s", ch.Name)
		delete(st.chains, ch.Name)
	}
	// 4. New chains, counters and sets, then the elements of managed sets.
	chains := make(map[string]*nftables.Chain, len(p.Table.Chains))
	for _, ch := range p.Table.Chains {
		nc := &nftables.Chain{Table: t.table, Name: ch.Name}
		if ch.Hook != nil {
			hook, prio, policy := hookNum(ch.Hook.Hook), nftables.ChainPriority(ch.Hook.Priority), nftables.ChainPolicyAccept
			nc.Hooknum, nc.Priority, nc.Type, nc.Policy = &hook, &prio, nftables.ChainType(ch.Hook.Type), &policy
		}
		chains[ch.Name] = nc
		if st.chains[ch.Name] == nil {
			c.AddChain(nc)
			t.note(1, "add chain %s", ch.Name)
		}
	}
	for _, ctr := range p.Table.Counters {
		if !st.counters[ctr.Name] {
			c.AddObj(&nftables.CounterObj{Table: t.table, Name: ctr.Name})
			t.note(1, "add counter %s", ctr.Name)
		}
	}
	for _, s := range p.Table.Sets {
		if create[s.Name] {
			ns := translateSet(t.table, s, t.ids.id())
			if err := c.AddSet(ns, nil); err != nil {
				return fmt.Errorf("set %s: %w", s.Name, err)
			}
			t.note(1, "add set %s", s.Name)
			t.named[s.Name] = ns
		}
		if s.Contents != Managed || !create[s.Name] && same("set "+s.Name) {
			continue
		}
		elems, err := setElements(s)
		if err != nil {
			return err
		}
		for i := 0; i < len(elems); i += elementsPerMessage {
			chunk := elems[i:min(i+elementsPerMessage, len(elems))]
			ref := *t.named[s.Name]
			ref.KeyType, ref.Interval, ref.IsMap = keyType(s.Key), s.Interval, s.Verdicts
			if err := c.SetAddElements(&ref, chunk); err != nil {
				return fmt.Errorf("set %s elements: %w", s.Name, err)
			}
			t.note(1, "add elements %d-%d to set %s", i+1, i+len(chunk), s.Name)
		}
	}
	// 5. The rules of the new and changed chains.
	for _, ch := range p.Table.Chains {
		if !fill[ch.Name] {
			continue
		}
		for i, r := range ch.Rules {
			desc := fmt.Sprintf("chain %s rule %d (%s)", ch.Name, i+1, r)
			rule, anon, err := translateRule(t.table, chains[ch.Name], r, &t.ids, t.named)
			if err != nil {
				return fmt.Errorf("%s: %w", desc, err)
			}
			for _, a := range anon {
				if err := c.AddSet(a.set, a.elems); err != nil {
					return fmt.Errorf("%s: anonymous set: %w", desc, err)
				}
				t.note(2, "%s: anonymous set", desc)
			}
			c.AddRule(rule)
			t.rules[len(t.descs)] = rule.Exprs
			t.note(1, "%s", desc)
		}
	}
	t.next = next
	return nil
}

// explain turns a Flush error into one that names the failing chain, set
// or rule. The kernel reports the sequence number of each message it
// rejected; message i of the batch has sequence t.seq+2+i (the probe had
// t.seq, the batch begin message t.seq+1).
func (t *tx) explain(err error) error {
	if errors.Is(err, syscall.ENOBUFS) {
		return fmt.Errorf("kernel answers lost, transaction outcome unknown: %w", err)
	}
	var failed []string
	seen := map[uint32]bool{}
	for _, oe := range opErrors(err) {
		if oe.Sequence == 0 || seen[oe.Sequence] {
			continue
		}
		seen[oe.Sequence] = true
		i := int(oe.Sequence - t.seq - 2)
		if i < 0 || i >= len(t.descs) {
			continue
		}
		msg := oe.Err.Error()
		if oe.Message != "" {
			msg += " (" + oe.Message + ")"
		}
		failed = append(failed, t.descs[i]+": "+msg)
	}
	if len(failed) == 0 {
		// A marshalling error poisons the connection before anything is
		// sent; find the culprit by marshalling the rules one by one.
		for i, exprs := range t.rules {
			for _, e := range exprs {
				if _, merr := expr.Marshal(byte(nftables.TableFamilyINet), e); merr != nil {
					failed = append(failed, t.descs[i]+": "+merr.Error())
				}
			}
		}
		slices.Sort(failed)
	}
	if len(failed) == 0 {
		return err
	}
	return fmt.Errorf("%s: %w", strings.Join(failed, "; "), err)
}

// opErrors collects the netlink errors inside err (which may join many).
func opErrors(err error) []*netlink.OpError {
	var out []*netlink.OpError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if oe, ok := e.(*netlink.OpError); ok {
			out = append(out, oe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// Remove deletes the table (service stop). A missing table is not an
// error.
func (a *Applier) Remove() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = nil
	return a.remove(TableName)
}

func (a *Applier) remove(name string) error {
	c, err := a.conn()
	if err != nil {
		return fmt.Errorf("remove nft table: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("remove nft table: list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == name }) {
		return nil
	}
	c.DelTable(inetTable(name))
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove nft table inet %s: %w", name, err)
	}
	return nil
}

// Counters reads the plan's counters from the kernel. Counters the kernel
// does not have (yet) read as zero.
func (a *Applier) Counters(p *Plan) ([]CounterValue, error) {
	c, err := a.conn()
	if err != nil {
		return nil, fmt.Errorf("read nft counters: %w", err)
	}
	if _, err := c.ListTableOfFamily(p.Table.Name, nftables.TableFamilyINet); err != nil {
		return nil, fmt.Errorf("read nft counters: table inet %s: %w", p.Table.Name, err)
	}
	objs, err := c.GetObjects(inetTable(p.Table.Name))
	if err != nil {
		return nil, fmt.Errorf("read nft counters of table inet %s: %w", p.Table.Name, err)
	}
	byName := make(map[string]*nftables.CounterObj, len(objs))
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			byName[co.Name] = co
		}
	}
	out := make([]CounterValue, len(p.Counters))
	for i, info := range p.Counters {
		out[i].CounterInfo = info
		if co := byName[info.Name]; co != nil {
			out[i].Packets, out[i].Bytes = co.Packets, co.Bytes
		}
	}
	return out, nil
}
