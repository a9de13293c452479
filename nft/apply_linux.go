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

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

// elementsPerMessage bounds the set elements of one netlink message: the
// element list is one attribute, whose length field has 16 bits.
const elementsPerMessage = 500

// Socket buffer sizing for one transaction. The kernel handles the whole
// batch inside one sendmsg and queues an acknowledgement per message
// before the first read, so both buffers must hold the whole exchange.
// They are limits, not allocations.
const (
	bufferBase       = 8 << 20
	bufferPerMessage = 4 << 10
	bufferMax        = 1 << 30
)

// DefaultTimeout bounds the wait for the kernel's answers to one
// transaction.
const DefaultTimeout = 30 * time.Second

// dumpAttempts bounds the retries of a listing the kernel interrupted
// because the ruleset changed meanwhile.
const dumpAttempts = 5

// Applier changes the kernel's ruleset to a plan, one atomic transaction
// per call, over a netlink socket of its own each time (netlink_linux.go
// encodes the messages). It remembers what it applied last so that chains
// and managed sets the new plan does not change are not rewritten
// (deleting rules costs the kernel an RCU grace period per transaction);
// chains or sets that were removed or re-created behind its back are
// noticed and restored, but rules edited by hand in an unchanged chain are
// not. It is safe for concurrent use.
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
// DefaultTimeout; 0 waits as long as it takes).
func WithTimeout(d time.Duration) ApplierOption { return func(a *Applier) { a.timeout = d } }

// NewApplier returns an Applier.
func NewApplier(opts ...ApplierOption) *Applier {
	a := &Applier{log: slog.New(slog.DiscardHandler), timeout: DefaultTimeout}
	for _, o := range opts {
		o(a)
	}
	return a
}

// open opens an nfnetlink socket in the Applier's namespace.
func (a *Applier) open() (*nlsock.Conn, error) {
	ns := netns.None()
	if a.netns > 0 {
		ns = netns.NsHandle(a.netns)
	}
	return nlsock.Open(ns, unix.NETLINK_NETFILTER, 0)
}

// dump lists objects: the request get (NFT_MSG_GET*) with payload req,
// each answer (NFT_MSG_NEW*, get−1) passed to fn. A listing the kernel
// interrupted is started again, after restart (when not nil) has
// forgotten what fn collected.
func (a *Applier) dump(c *nlsock.Conn, get int, req []byte, restart func(), fn func(b []byte) error) error {
	for attempt := 1; ; attempt++ {
		if restart != nil && attempt > 1 {
			restart()
		}
		var perr error
		err := c.Execute(nftMsg(get), nlsock.FlagDump, req, a.timeout, func(m nlsock.Message) bool {
			if m.Type == nftMsg(get-1) && perr == nil {
				perr = fn(m.Data)
			}
			return perr == nil
		})
		if errors.Is(err, nlsock.ErrDumpInterrupted) && perr == nil && attempt < dumpAttempts {
			continue
		}
		return errors.Join(err, perr)
	}
}

// kernelState is what the table holds before a transaction.
type kernelState struct {
	exists   bool
	chains   map[string]kChain
	sets     map[string]kSet
	counters map[string]kObj
}

// tableExists reports whether the inet table name exists.
func (a *Applier) tableExists(c *nlsock.Conn, name string) (bool, error) {
	exists := false
	err := a.dump(c, unix.NFT_MSG_GETTABLE, dumpMsg(0, ""), func() { exists = false }, func(b []byte) error {
		n, err := parseTableName(b)
		exists = exists || n == name
		return err
	})
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	return exists, nil
}

// readCounters lists the table's counters.
func (a *Applier) readCounters(c *nlsock.Conn, name string) (map[string]kObj, error) {
	out := map[string]kObj{}
	err := a.dump(c, unix.NFT_MSG_GETOBJ, dumpMsg(unix.NFTA_OBJ_TABLE, name), func() { clear(out) }, func(b []byte) error {
		o, err := parseObj(b)
		if o.table == name && o.typ == unix.NFT_OBJECT_COUNTER {
			out[o.name] = o
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return out, nil
}

// readState lists the table's chains, named sets and counters.
func (a *Applier) readState(c *nlsock.Conn, name string) (*kernelState, error) {
	st := &kernelState{chains: map[string]kChain{}, sets: map[string]kSet{}, counters: map[string]kObj{}}
	var err error
	if st.exists, err = a.tableExists(c, name); err != nil || !st.exists {
		return st, err
	}
	err = a.dump(c, unix.NFT_MSG_GETCHAIN, dumpMsg(0, ""), func() { clear(st.chains) }, func(b []byte) error {
		ch, err := parseChain(b)
		if ch.table == name {
			st.chains[ch.name] = ch
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	err = a.dump(c, unix.NFT_MSG_GETSET, dumpMsg(unix.NFTA_SET_TABLE, name), func() { clear(st.sets) }, func(b []byte) error {
		s, err := parseSet(b)
		if s.table == name && s.flags&unix.NFT_SET_ANONYMOUS == 0 && !strings.HasPrefix(s.name, "__") {
			st.sets[s.name] = s
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	st.counters, err = a.readCounters(c, name)
	return st, err
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
func compatible(have kSet, want *Set) bool {
	if have.flags&unix.NFT_SET_MAP != 0 != want.Verdicts {
		return false
	}
	interval := have.flags&unix.NFT_SET_INTERVAL != 0
	if want.Verdicts {
		// The flags are what matters for a map we refill anyway.
		return interval == want.Interval
	}
	if have.keyType != keyType(want.Key).magic {
		return false
	}
	if want.Contents == Adopted {
		return true
	}
	return interval == want.Interval && have.flags&unix.NFT_SET_EVAL != 0 == want.Dynamic &&
		have.flags&unix.NFT_SET_TIMEOUT != 0 == (want.Timeout != 0) && have.timeout == want.Timeout &&
		have.size == want.Size && (!want.Interval || have.autoMerge == want.AutoMerge)
}

// sameHook reports whether an existing chain has the planned hook.
func sameHook(have kChain, want *Chain) bool {
	if want.Hook == nil || have.hook == nil {
		return want.Hook == nil && have.hook == nil
	}
	return have.typ == want.Hook.Type && *have.hook == hookNum(want.Hook.Hook) && have.priority == want.Hook.Priority
}

// tx is one transaction being built: the batch of netlink messages and a
// description of each, so that a kernel error (which names the failing
// message) names the chain, set or rule.
type tx struct {
	table string
	batch nlsock.Batch
	descs []string // by message
	ids   setIDs
	named map[string]*nlSet
	next  map[string]string // fingerprints of the plan, recorded when it applies
}

// nfgenBatch is the payload of the batch begin and end messages.
var nfgenBatch = []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}

func newTx(table string) *tx {
	t := &tx{table: table, named: map[string]*nlSet{}}
	t.batch.Add(unix.NFNL_MSG_BATCH_BEGIN, 0, nfgenBatch)
	t.descs = append(t.descs, "transaction")
	return t
}

// add queues an nf_tables message (msg is NFT_MSG_*), acknowledged.
func (t *tx) add(msg int, flags uint16, payload []byte, format string, args ...any) {
	t.batch.Add(nftMsg(msg), flags|nlsock.FlagAck, payload)
	t.descs = append(t.descs, fmt.Sprintf(format, args...))
}

// commit ends the batch and sends it.
func (t *tx) commit(a *Applier, c *nlsock.Conn) error {
	t.batch.Add(unix.NFNL_MSG_BATCH_END, 0, nfgenBatch)
	t.descs = append(t.descs, "transaction end")
	if err := c.SetBuffers(min(bufferBase+bufferPerMessage*t.batch.Len(), bufferMax)); err != nil {
		return err
	}
	failed, err := c.SendBatch(&t.batch, a.timeout)
	if errors.Is(err, syscall.ENOBUFS) {
		return fmt.Errorf("kernel answers lost, transaction outcome unknown: %w", err)
	}
	if err != nil || len(failed) == 0 {
		return err
	}
	e := &txError{errs: make([]error, len(failed))}
	msgs := make([]string, len(failed))
	for i, f := range failed {
		msgs[i], e.errs[i] = t.descs[f.Index]+": "+f.Err.Error(), f.Err
	}
	e.msg = strings.Join(msgs, "; ")
	return e
}

// txError is the kernel's refusal of a transaction: what each failing
// message was, with the kernel's errors (errors.Is finds them).
type txError struct {
	msg  string
	errs []error
}

func (e *txError) Error() string   { return e.msg }
func (e *txError) Unwrap() []error { return e.errs }

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
	c, err := a.open()
	if err != nil {
		return fmt.Errorf("apply nft plan: %w", err)
	}
	defer c.Close()
	st, err := a.readState(c, p.Table.Name)
	if err != nil {
		return fmt.Errorf("apply nft plan: read table inet %s: %w", p.Table.Name, err)
	}
	t := newTx(p.Table.Name)
	if err := t.build(p, st, a.applied); err != nil {
		return fmt.Errorf("apply nft plan: %w", err)
	}
	if err := t.commit(a, c); err != nil {
		if errors.Is(err, syscall.ENOBUFS) {
			a.applied = nil // outcome unknown: rewrite everything next time
		}
		return fmt.Errorf("apply nft plan: %w", err)
	}
	a.applied = t.next
	a.log.Debug("nft plan applied", "table", p.Table.Name, "messages", len(t.descs)-2, "took", time.Since(start))
	return nil
}

// build queues the whole transaction. prev holds the fingerprints of the
// last plan applied successfully: chains and managed sets whose
// fingerprint is unchanged (and that exist) are left alone.
func (t *tx) build(p *Plan, st *kernelState, prev map[string]string) error {
	const create = nlsock.FlagCreate
	t.add(unix.NFT_MSG_NEWTABLE, create, tableMsg(t.table), "table inet %s", t.table)
	next := p.fingerprints()
	same := func(key string) bool { v, ok := prev[key]; return ok && v == next[key] }

	// Which sets must be created (missing, or incompatible: re-created).
	recreate := map[string]bool{}
	for _, s := range p.Table.Sets {
		if have, ok := st.sets[s.Name]; !ok || !compatible(have, s) {
			recreate[s.Name] = true
		}
	}
	// Which chains get their rules (again): new, changed, or using a set
	// that is re-created.
	wantChains := map[string]*Chain{}
	fill := map[string]bool{}
	for _, ch := range p.Table.Chains {
		wantChains[ch.Name] = ch
		have, ok := st.chains[ch.Name]
		fill[ch.Name] = !ok || !sameHook(have, ch) || !same("chain "+ch.Name) ||
			slices.ContainsFunc(ch.refs(), func(n string) bool { return recreate[n] })
	}

	// 1. Empty the chains that change or go, so nothing references what
	// is deleted below.
	var drop []string
	for _, name := range slices.Sorted(maps.Keys(st.chains)) {
		want := wantChains[name]
		if want != nil && !fill[name] {
			continue
		}
		t.add(unix.NFT_MSG_DELRULE, 0, flushChainMsg(t.table, name), "flush chain %s", name)
		if want == nil || !sameHook(st.chains[name], want) {
			drop = append(drop, name)
		}
	}
	// 2. Sets: empty the managed ones that change, delete mwan3's sets the
	// plan no longer has and the incompatible ones.
	for _, s := range p.Table.Sets {
		_, have := st.sets[s.Name]
		switch {
		case have && recreate[s.Name]:
			t.add(unix.NFT_MSG_DELSET, 0, setRefMsg(t.table, s.Name), "delete set %s (type or flags changed)", s.Name)
		case have:
			t.named[s.Name] = &nlSet{name: s.Name}
			if s.Contents == Managed && !same("set "+s.Name) {
				t.add(unix.NFT_MSG_DELSETELEM, 0, setRefMsg(t.table, s.Name), "flush set %s", s.Name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.sets)) {
		if ownedSet(name) && !slices.ContainsFunc(p.Table.Sets, func(s *Set) bool { return s.Name == name }) {
			t.add(unix.NFT_MSG_DELSET, 0, setRefMsg(t.table, name), "delete set %s", name)
		}
	}
	// 3. Counters and chains that go.
	wantCounters := map[string]bool{}
	for _, ctr := range p.Table.Counters {
		wantCounters[ctr.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(st.counters)) {
		if !wantCounters[name] {
			t.add(unix.NFT_MSG_DELOBJ, 0, counterMsg(t.table, name, true), "delete counter %s", name)
		}
	}
	for _, name := range drop {
		t.add(unix.NFT_MSG_DELCHAIN, 0, chainMsg(t.table, name, nil), "delete chain %s", name)
		delete(st.chains, name)
	}
	// 4. New chains, counters and sets, then the elements of managed sets.
	for _, ch := range p.Table.Chains {
		if _, ok := st.chains[ch.Name]; !ok {
			t.add(unix.NFT_MSG_NEWCHAIN, create, chainMsg(t.table, ch.Name, ch.Hook), "add chain %s", ch.Name)
		}
	}
	for _, ctr := range p.Table.Counters {
		if _, ok := st.counters[ctr.Name]; !ok {
			t.add(unix.NFT_MSG_NEWOBJ, create, counterMsg(t.table, ctr.Name, false), "add counter %s", ctr.Name)
		}
	}
	for _, s := range p.Table.Sets {
		if recreate[s.Name] {
			ns := translateSet(s, t.ids.id())
			t.add(unix.NFT_MSG_NEWSET, create, setMsg(t.table, ns), "add set %s", s.Name)
			t.named[s.Name] = ns
		}
		if s.Contents != Managed || !recreate[s.Name] && same("set "+s.Name) {
			continue
		}
		elems, err := setElements(s)
		if err != nil {
			return err
		}
		ref := t.named[s.Name]
		for i := 0; i < len(elems); i += elementsPerMessage {
			chunk := elems[i:min(i+elementsPerMessage, len(elems))]
			t.add(unix.NFT_MSG_NEWSETELEM, create, setElemsMsg(t.table, s.Name, ref.id, chunk),
				"add elements %d-%d to set %s", i+1, i+len(chunk), s.Name)
		}
	}
	// 5. The rules of the new and changed chains.
	for _, ch := range p.Table.Chains {
		if !fill[ch.Name] {
			continue
		}
		for i, r := range ch.Rules {
			desc := fmt.Sprintf("chain %s rule %d (%s)", ch.Name, i+1, r)
			exprs, anon, err := translateRule(r, &t.ids, t.named)
			if err != nil {
				return fmt.Errorf("%s: %w", desc, err)
			}
			for _, as := range anon {
				t.add(unix.NFT_MSG_NEWSET, create, setMsg(t.table, as.set), "%s: anonymous set", desc)
				t.add(unix.NFT_MSG_NEWSETELEM, create, setElemsMsg(t.table, as.set.name, as.set.id, as.elems), "%s: anonymous set", desc)
			}
			msg, err := ruleMsg(t.table, ch.Name, exprs, r.Comment)
			if err != nil {
				return fmt.Errorf("%s: %w", desc, err)
			}
			t.add(unix.NFT_MSG_NEWRULE, create|nlsock.FlagAppend, msg, "%s", desc)
		}
	}
	t.next = next
	return nil
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
	c, err := a.open()
	if err != nil {
		return fmt.Errorf("remove nft table: %w", err)
	}
	defer c.Close()
	exists, err := a.tableExists(c, name)
	if err != nil {
		return fmt.Errorf("remove nft table: %w", err)
	}
	if !exists {
		return nil
	}
	t := newTx(name)
	t.add(unix.NFT_MSG_DELTABLE, 0, tableMsg(name), "delete table inet %s", name)
	if err := t.commit(a, c); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove nft table inet %s: %w", name, err)
	}
	return nil
}

// Counters reads the plan's counters from the kernel. Counters the kernel
// does not have (yet) read as zero.
func (a *Applier) Counters(p *Plan) ([]CounterValue, error) {
	c, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("read nft counters: %w", err)
	}
	defer c.Close()
	exists, err := a.tableExists(c, p.Table.Name)
	if err == nil && !exists {
		err = unix.ENOENT
	}
	var counters map[string]kObj
	if err == nil {
		counters, err = a.readCounters(c, p.Table.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("read nft counters of table inet %s: %w", p.Table.Name, err)
	}
	out := make([]CounterValue, len(p.Counters))
	for i, info := range p.Counters {
		out[i].CounterInfo = info
		if co, ok := counters[info.Name]; ok {
			out[i].Packets, out[i].Bytes = co.packets, co.bytes
		}
	}
	return out, nil
}
