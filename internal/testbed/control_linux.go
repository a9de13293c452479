//go:build linux

package testbed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ispTable is the nftables table of the testbed in each ISP namespace.
const ispTable = "testbed"

// MaxLatency bounds SetLatency.
const MaxLatency = 10 * time.Second

// wanControl is the state of the controls of one WAN (guarded by
// Testbed.mu).
type wanControl struct {
	upstreamCut bool
	loss        int           // percent of the packets from the router dropped
	latency     time.Duration // delay of ICMP echo answers for the internet host
	responder   *latencyResponder
}

func ispTables() (*nftables.Table, *nftables.Chain, *nftables.Chain) {
	t := &nftables.Table{Name: ispTable, Family: nftables.TableFamilyINet}
	pre := &nftables.Chain{Name: "pre", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw}
	post := &nftables.Chain{Name: "post", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	return t, pre, post
}

// setupISPTable creates the ISP's table: masquerade towards the internet
// and an empty control chain that sees every packet before conntrack.
func (tb *Testbed) setupISPTable(i int) error {
	isp := tb.WANs[i].ISP
	c, err := isp.NftConn()
	if err != nil {
		return err
	}
	t, pre, post := ispTables()
	c.AddTable(t)
	c.AddChain(pre)
	c.AddChain(post)
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(matchIfname(expr.MetaKeyOIFNAME, ispUpDev), &expr.Masq{})})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s in %s: %w", ispTable, isp.Name, err)
	}
	return nil
}

// applyControls rewrites WAN i's control chain from its state in one
// transaction. tb.mu must be held.
func (tb *Testbed) applyControls(i int) error {
	isp := tb.WANs[i].ISP
	st := tb.ctl[i]
	c, err := isp.NftConn()
	if err != nil {
		return err
	}
	t, pre, _ := ispTables()
	c.FlushChain(pre)
	for _, exprs := range controlRules(st.upstreamCut, st.loss, st.latency > 0) {
		c.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: exprs})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("control rules (cut %v, loss %d%%, latency %v) in %s: %w",
			st.upstreamCut, st.loss, st.latency, isp.Name, err)
	}
	return nil
}

// controlRules returns the rules of an ISP's control chain, in order:
//
//	icmpv6 type 133-136 accept                     (neighbour discovery always passes)
//	iifname { "cpe", "up" } drop                   (upstream cut)
//	iifname "cpe" numgen random mod 100 < N drop   (loss)
//	iifname "cpe" icmp type echo-request ip daddr 198.51.100.0/24 drop (latency:
//	iifname "cpe" icmpv6 type echo-request ip6 daddr 2001:db8:ff::/64 drop  the responder answers)
func controlRules(cut bool, loss int, latency bool) [][]expr.Any {
	if !cut && loss == 0 && !latency {
		return nil
	}
	rules := [][]expr.Any{
		append(matchICMP(unix.NFPROTO_IPV6, protoICMPv6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: []byte{133}, ToData: []byte{136}},
			&expr.Verdict{Kind: expr.VerdictAccept}),
	}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	if cut {
		for _, dev := range []string{ispCPEDev, ispUpDev} {
			rules = append(rules, append(matchIfname(expr.MetaKeyIIFNAME, dev), drop))
		}
	}
	if loss > 0 {
		threshold := make([]byte, 4)
		binary.BigEndian.PutUint32(threshold, uint32(loss))
		rules = append(rules, append(matchIfname(expr.MetaKeyIIFNAME, ispCPEDev),
			&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
			// numgen is host-endian; compare it big-endian, as nft does.
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: threshold},
			drop))
	}
	if latency {
		for _, f := range []struct {
			nfproto, proto, echoType byte
			offset                   uint32
			net                      netip.Prefix
		}{
			{unix.NFPROTO_IPV4, protoICMP, icmpEchoRequest, 16, publicNet4},
			{unix.NFPROTO_IPV6, protoICMPv6, icmp6EchoReq, 24, publicNet6},
		} {
			r := matchIfname(expr.MetaKeyIIFNAME, ispCPEDev)
			r = append(r, matchICMP(f.nfproto, f.proto)...)
			r = append(r,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.echoType}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: f.offset, Len: uint32(f.net.Addr().BitLen() / 8)},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(f.net.Addr().BitLen() / 8),
					Mask: prefixNet(f.net).Mask, Xor: make([]byte, f.net.Addr().BitLen()/8)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: f.net.Addr().AsSlice()},
				drop)
			rules = append(rules, r)
		}
	}
	return rules
}

// matchIfname matches the input or output interface name.
func matchIfname(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

// matchICMP matches the family and the ICMP protocol of that family.
func matchICMP(nfproto, proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// CutCarrier sets the ISP's end of WAN i down: the router's device loses
// its carrier (NO-CARRIER); addresses and routes stay, as with a pulled
// cable. Restore ends it.
func (tb *Testbed) CutCarrier(i int) error {
	w, err := tb.wan(i)
	if err != nil {
		return err
	}
	h := w.ISP.Handle()
	l, err := h.LinkByName(ispCPEDev)
	if err != nil {
		return fmt.Errorf("cut carrier of %s: %w", w.Name, err)
	}
	if err := h.LinkSetDown(l); err != nil {
		return fmt.Errorf("cut carrier of %s: %w", w.Name, err)
	}
	return nil
}

// CutUpstream makes ISP i drop everything silently, in both directions,
// except neighbour discovery: the link stays up and ARP and ND still
// resolve the gateway, but nothing is routed or answered. Restore ends it.
func (tb *Testbed) CutUpstream(i int) error {
	return tb.control(i, "cut upstream", func(c *wanControl) error {
		c.upstreamCut = true
		return nil
	})
}

// SetLoss makes ISP i drop percent % of the packets coming from the router
// (pings to the gateway included), picked at random; 0 ends it. The latency
// responder drops the same share of the echo requests it answers.
func (tb *Testbed) SetLoss(i int, percent int) error {
	return tb.control(i, "set loss", func(c *wanControl) error {
		if percent < 0 || percent > 100 {
			return fmt.Errorf("loss %d%% out of range 0..100", percent)
		}
		c.loss = percent
		return nil
	})
}

// SetLatency makes the pings that WAN i carries to the internet host's
// addresses (198.51.100.0/24, 2001:db8:ff::/64: the targets, echo and HTTP
// addresses) come back d later: ISP i drops those echo requests and a
// userspace responder in its namespace answers them after d, with the
// target's address as source. Only ICMP echo is delayed; 0 ends it.
func (tb *Testbed) SetLatency(i int, d time.Duration) error {
	return tb.control(i, "set latency", func(c *wanControl) error {
		if d < 0 || d > MaxLatency {
			return fmt.Errorf("latency %v out of range 0..%v", d, MaxLatency)
		}
		if d > 0 && c.responder == nil {
			r, err := newLatencyResponder(tb.WANs[i].ISP, ispCPEDev, tb.log.With("wan", tb.WANs[i].Name))
			if err != nil {
				return err
			}
			c.responder = r
		}
		c.latency = d
		return nil
	})
}

// Restore returns WAN i to its built state: both ends of the link up, no
// drops, no loss, no latency, the addresses and routes of both ends present
// again (the router's default routes as netifd would re-add them), and the
// neighbour entries of the link flushed, so that the next packet resolves
// the gateway at once instead of after the kernel's retry time.
func (tb *Testbed) Restore(i int) error {
	w, err := tb.wan(i)
	if err != nil {
		return err
	}
	err = tb.control(i, "restore", func(c *wanControl) error {
		*c = wanControl{responder: c.responder}
		return nil
	})
	// Forget the neighbours resolution failed for during the cut: the kernel
	// would retry only after its retransmission time (1 s).
	if nerr := errors.Join(flushNeighbours(tb.Router, w.Dev), flushNeighbours(w.ISP, ispCPEDev)); nerr != nil {
		err = errors.Join(err, fmt.Errorf("restore %s: %w", w.Name, nerr))
	}
	if ierr := tb.ensureISP(i); ierr != nil {
		err = errors.Join(err, fmt.Errorf("restore %s: %w", w.Name, ierr))
	}
	if rerr := tb.ensureRouterWAN(i); rerr != nil {
		err = errors.Join(err, fmt.Errorf("restore %s: %w", w.Name, rerr))
	}
	return err
}

// control changes WAN i's control state with change and applies it: the
// responder's view and the ISP's rules, in the order that never answers a
// ping twice (a ping may go unanswered while the latency switches).
func (tb *Testbed) control(i int, op string, change func(*wanControl) error) error {
	w, err := tb.wan(i)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	c := tb.ctl[i]
	old := *c
	if err := change(c); err != nil {
		*c = old
		return fmt.Errorf("%s of %s: %w", op, w.Name, err)
	}
	setResponder := func() {
		if c.responder != nil {
			c.responder.Set(responderState{latency: c.latency, loss: c.loss, cut: c.upstreamCut})
		}
	}
	// Turning the latency off: the responder stops answering first.
	if c.latency == 0 {
		setResponder()
	}
	if err := tb.applyControls(i); err != nil {
		// The old rules are still in place: go back to the old state.
		*c = wanControl{upstreamCut: old.upstreamCut, loss: old.loss, latency: old.latency, responder: c.responder}
		setResponder()
		return fmt.Errorf("%s of %s: %w", op, w.Name, err)
	}
	if c.latency > 0 {
		setResponder()
	}
	return nil
}

// flushNeighbours deletes the neighbour entries of dev in n, but the
// permanent ones.
func flushNeighbours(n *NS, dev string) error {
	h := n.Handle()
	l, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("flush neighbours: %s in %s: %w", dev, n.Name, err)
	}
	neighs, err := h.NeighList(l.Attrs().Index, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("flush neighbours: list on %s in %s: %w", dev, n.Name, err)
	}
	var errs []error
	for _, nb := range neighs {
		if nb.State&(unix.NUD_PERMANENT|unix.NUD_NOARP) != 0 {
			continue
		}
		if err := h.NeighDel(&nb); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("flush neighbours: delete %s on %s in %s: %w", nb.IP, dev, n.Name, err))
		}
	}
	return errors.Join(errs...)
}
