//go:build linux

package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
	"golang.org/x/sys/unix"
)

func TestIntervalElems(t *testing.T) {
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	v := func(c string) *nlVerdict { return &nlVerdict{code: unix.NFT_GOTO, chain: c} }
	show := func(es []setElem) string {
		var s string
		for _, e := range es {
			s += fmt.Sprintf("%x", e.key)
			if e.intervalEnd {
				s += "(end)"
			}
			if e.verdict != nil {
				s += "->" + e.verdict.chain
			}
			s += " "
		}
		return s
	}
	tests := []struct {
		name string
		in   []interval
		want string
	}{
		{"numgen", []interval{{be(0), be(2), v("a")}, {be(3), be(5), v("b")}}, "00000000->a 00000003->b 00000006(end) "},
		{"gap", []interval{{be(1), be(1), nil}, {be(5), be(9), nil}}, "00000000(end) 00000001 00000002(end) 00000005 0000000a(end) "},
		{"to max", []interval{{[]byte{224, 0, 0, 0}, []byte{255, 255, 255, 255}, nil}}, "00000000(end) e0000000 "},
		{"everything", []interval{{[]byte{0, 0}, []byte{255, 255}, nil}}, "0000 "},
	}
	for _, tt := range tests {
		if got := show(intervalElems(tt.in)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// decodedExpr is one expression of NFTA_RULE_EXPRESSIONS: its name and
// its attributes by type.
type decodedExpr struct {
	name  string
	attrs map[uint16][]byte
}

func (e decodedExpr) u32(typ uint16) uint32 {
	v := e.attrs[typ]
	if len(v) != 4 {
		return 0xffffffff
	}
	return binary.BigEndian.Uint32(v)
}

// decodeExprs decodes what translateRule produced, checking the framing.
func decodeExprs(t *testing.T, b []byte) []decodedExpr {
	t.Helper()
	var out []decodedExpr
	err := nlsock.ForAttrs(b, func(typ uint16, v []byte) error {
		if typ != unix.NFTA_LIST_ELEM {
			return fmt.Errorf("list element of type %d", typ)
		}
		e := decodedExpr{attrs: map[uint16][]byte{}}
		err := nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
			switch typ {
			case unix.NFTA_EXPR_NAME:
				e.name = nlsock.CString(v)
			case unix.NFTA_EXPR_DATA:
				return nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
					e.attrs[typ] = v
					return nil
				})
			}
			return nil
		})
		out = append(out, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTranslatePlans translates every rule of the test configs and checks
// the protocol dependencies the kernel relies on: every network header
// load follows a meta nfproto test of the right family, every transport
// header load a meta l4proto test, every jump or goto names a chain, and
// anonymous sets come with their elements.
func TestTranslatePlans(t *testing.T) {
	inputs := []*Input{
		shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, true, true, true, false}),
		optionsInput(), dualStackInput(), manyRulesInput(8, 200), maskedInput(),
	}
	for _, in := range inputs {
		p := renderOK(t, in)
		named := map[string]*nlSet{}
		var ids setIDs
		for _, s := range p.Table.Sets {
			named[s.Name] = translateSet(s, ids.id())
		}
		for _, c := range p.Table.Chains {
			for i, r := range c.Rules {
				where := fmt.Sprintf("chain %s rule %d (%s)", c.Name, i+1, r)
				exprs, anon, err := translateRule(r, &ids, named)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				checkDependencies(t, where, decodeExprs(t, exprs))
				for _, a := range anon {
					if a.set.id == 0 || a.set.flags&unix.NFT_SET_ANONYMOUS == 0 || len(a.elems) == 0 || a.set.size != uint32(len(a.elems)) {
						t.Fatalf("%s: bad anonymous set %+v", where, a.set)
					}
				}
			}
		}
	}
}

func checkDependencies(t *testing.T, where string, exprs []decodedExpr) {
	t.Helper()
	var family byte
	l4 := false
	for i, e := range exprs {
		if e.name == "cmp" && i > 0 && exprs[i-1].name == "meta" {
			data, err := dataValue(e.attrs[unix.NFTA_CMP_DATA])
			if err != nil || len(data) == 0 {
				t.Fatalf("%s: cmp without data", where)
			}
			switch exprs[i-1].u32(unix.NFTA_META_KEY) {
			case unix.NFT_META_NFPROTO:
				family = data[0]
			case unix.NFT_META_L4PROTO:
				l4 = true
			}
		}
		if e.name == "immediate" {
			var chain string
			var code uint32
			_ = nlsock.ForAttrs(e.attrs[unix.NFTA_IMMEDIATE_DATA], func(_ uint16, v []byte) error {
				return nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
					switch typ {
					case unix.NFTA_VERDICT_CODE:
						code, _ = attrU32(v)
					case unix.NFTA_VERDICT_CHAIN:
						chain = nlsock.CString(v)
					}
					return nil
				})
			})
			if (int32(code) == unix.NFT_JUMP || int32(code) == unix.NFT_GOTO) && chain == "" {
				t.Fatalf("%s: jump without chain", where)
			}
		}
		if e.name != "payload" {
			continue
		}
		switch e.u32(unix.NFTA_PAYLOAD_BASE) {
		case unix.NFT_PAYLOAD_NETWORK_HEADER:
			want := byte(unix.NFPROTO_IPV4)
			if e.u32(unix.NFTA_PAYLOAD_LEN) == 16 {
				want = unix.NFPROTO_IPV6
			}
			if family != want {
				t.Fatalf("%s: network payload without meta nfproto %d before it", where, want)
			}
		case unix.NFT_PAYLOAD_TRANSPORT_HEADER:
			if !l4 {
				t.Fatalf("%s: transport payload without meta l4proto before it", where)
			}
		}
	}
}

func TestTranslateErrors(t *testing.T) {
	for _, r := range []Rule{
		{Exprs: []Expr{AddrInSet{Family: IPv4, Set: "nosuch"}}},
		{Exprs: []Expr{SetUpdate{Family: IPv4, Set: "nosuch"}}},
		{Exprs: []Expr{MarkVmap{Map: "nosuch"}}},
		{Exprs: []Expr{AddrMatch{Family: IPv4}}},
		{Exprs: []Expr{AddrMasked{Family: IPv4}}},
		{Exprs: []Expr{AddrMasked{Family: IPv6, Mask: netip.MustParseAddr("0.0.0.1"), Value: netip.MustParseAddr("0.0.0.1")}}},
		{Exprs: []Expr{PortMatch{Proto: 47, Ranges: []PortRange{{1, 1}}}}},
		{Exprs: []Expr{IfName{Name: "0123456789abcdef"}}},
		{Exprs: []Expr{NumgenVmap{}}},
		{Exprs: []Expr{ICMPv6Types{}}},
		{Exprs: []Expr{Verdict{}}},
	} {
		if _, _, err := translateRule(r, &setIDs{}, nil); err == nil {
			t.Errorf("translateRule(%s) succeeded", r)
		}
	}
}
