//go:build linux

package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

func TestIntervalElems(t *testing.T) {
	be := binaryutil.BigEndian.PutUint32
	v := func(c string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictGoto, Chain: c} }
	show := func(es []nftables.SetElement) string {
		var s string
		for _, e := range es {
			s += fmt.Sprintf("%x", e.Key)
			if e.IntervalEnd {
				s += "(end)"
			}
			if e.VerdictData != nil {
				s += "->" + e.VerdictData.Chain
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

// TestTranslatePlans translates every rule of the test configs and checks
// the protocol dependencies the kernel relies on: every network header
// load follows a meta nfproto test of the right family, every transport
// header load a meta l4proto test, and every expression marshals.
func TestTranslatePlans(t *testing.T) {
	inputs := []*Input{
		shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, true, true, true, false}),
		optionsInput(), dualStackInput(), manyRulesInput(8, 200), maskedInput(),
	}
	for _, in := range inputs {
		p := renderOK(t, in)
		table := inetTable(p.Table.Name)
		named := map[string]*nftables.Set{}
		var ids setIDs
		for _, s := range p.Table.Sets {
			named[s.Name] = translateSet(table, s, ids.id())
		}
		for _, c := range p.Table.Chains {
			for i, r := range c.Rules {
				where := fmt.Sprintf("chain %s rule %d (%s)", c.Name, i+1, r)
				rule, anon, err := translateRule(table, &nftables.Chain{Table: table, Name: c.Name}, r, &ids, named)
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				checkDependencies(t, where, rule.Exprs)
				for _, a := range anon {
					if a.set.ID == 0 || !a.set.Anonymous || len(a.elems) == 0 {
						t.Fatalf("%s: bad anonymous set %+v", where, a.set)
					}
				}
			}
		}
	}
}

func checkDependencies(t *testing.T, where string, exprs []expr.Any) {
	t.Helper()
	var family byte
	l4 := false
	for i, e := range exprs {
		if _, err := expr.Marshal(byte(nftables.TableFamilyINet), e); err != nil {
			t.Fatalf("%s: expression %d: %v", where, i, err)
		}
		if cmp, ok := e.(*expr.Cmp); ok && i > 0 {
			if m, ok := exprs[i-1].(*expr.Meta); ok {
				switch m.Key {
				case expr.MetaKeyNFPROTO:
					family = cmp.Data[0]
				case expr.MetaKeyL4PROTO:
					l4 = true
				}
			}
		}
		p, ok := e.(*expr.Payload)
		if !ok {
			continue
		}
		switch p.Base {
		case expr.PayloadBaseNetworkHeader:
			want := byte(unix.NFPROTO_IPV4)
			if p.Len == 16 {
				want = unix.NFPROTO_IPV6
			}
			if family != want {
				t.Fatalf("%s: network payload %+v without meta nfproto %d before it", where, p, want)
			}
		case expr.PayloadBaseTransportHeader:
			if !l4 {
				t.Fatalf("%s: transport payload %+v without meta l4proto before it", where, p)
			}
		}
	}
	if v, ok := exprs[len(exprs)-1].(*expr.Verdict); ok && slices.Contains([]expr.VerdictKind{expr.VerdictJump, expr.VerdictGoto}, v.Kind) && v.Chain == "" {
		t.Fatalf("%s: jump without chain", where)
	}
}

func TestTranslateErrors(t *testing.T) {
	table := inetTable("x")
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
		if _, _, err := translateRule(table, &nftables.Chain{Table: table, Name: "c"}, r, &setIDs{}, nil); err == nil {
			t.Errorf("translateRule(%s) succeeded", r)
		}
	}
}
