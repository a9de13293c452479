//go:build linux

package nft

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

// The daemon's view of an applier; nfttest.Fake implements it too.
var _ interface {
	Apply(*Plan) error
	Remove() error
	Counters(*Plan) ([]CounterValue, error)
} = (*Applier)(nil)

// nsApplier returns a fresh namespace and an Applier working in it.
func nsApplier(t *testing.T) (*testbed.NS, *Applier) {
	t.Helper()
	ns := testbed.NewNS(t, "nft")
	return ns, NewApplier(WithNetNS(ns.NetNSFd()), WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))))
}

func nftRun(t *testing.T, ns *testbed.NS, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := ns.Run(ctx, "nft", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listTable(t *testing.T, ns *testbed.NS) string {
	return nftRun(t, ns, "list", "table", "inet", TableName)
}

var ipv4Re = regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+\b`)

var counterValues = regexp.MustCompile(`packets \d+ bytes \d+`)

// blocks splits a table listing into its blocks (sets, chains, counters),
// sorted, with counter values zeroed: the kernel lists objects in
// creation order, which differs from plan order after re-applies.
func blocks(listing string) []string {
	body := strings.TrimSuffix(strings.TrimSpace(listing), "}")
	_, body, _ = strings.Cut(body, "{\n")
	out := strings.Split(strings.TrimRight(counterValues.ReplaceAllString(body, "packets 0 bytes 0"), "\n"), "\n\n")
	slices.Sort(out)
	return out
}

// assertListing compares the kernel's listing with the plan's String.
func assertListing(t *testing.T, ns *testbed.NS, p *Plan) {
	t.Helper()
	got, want := blocks(listTable(t, ns)), blocks(p.String())
	if !slices.Equal(got, want) {
		for _, b := range want {
			if !slices.Contains(got, b) {
				t.Errorf("missing or different in the kernel:\n%s", b)
			}
		}
		for _, b := range got {
			if !slices.Contains(want, b) {
				t.Errorf("unexpected in the kernel:\n%s", b)
			}
		}
	}
}

// TestKernelListing applies plans into a fresh namespace and checks that
// `nft list table inet mwan3` prints exactly the plan: the translation and
// the IR's String agree.
func TestKernelListing(t *testing.T) {
	inputs := map[string]*Input{
		"shipped":     shippedInput([5]bool{1: true}, [5]bool{1: true}),
		"all_online":  shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, true, true, true, true}),
		"all_offline": shippedInput([5]bool{false, true, true, true, true}, [5]bool{}),
		"options":     optionsInput(),
		"dual_stack":  dualStackInput(),
		"many":        manyRulesInput(16, 200),
		"masked":      maskedInput(),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			ns, a := nsApplier(t)
			p := renderOK(t, in)
			if err := a.Apply(p); err != nil {
				t.Fatal(err)
			}
			if got := listTable(t, ns); counterValues.ReplaceAllString(got, "packets 0 bytes 0") != p.String() {
				t.Errorf("listing of a fresh table differs from the plan:\n%s", lineDiff(p.String(), got))
			}
			// Applying the same plan again changes nothing.
			if err := a.Apply(p); err != nil {
				t.Fatal(err)
			}
			assertListing(t, ns, p)
		})
	}
}

// TestKernelTransitions moves through every online/offline combination of
// the default config in a random-looking order, checking the kernel
// matches each plan (chains, sets and counters added and removed).
func TestKernelTransitions(t *testing.T) {
	ns, a := nsApplier(t)
	order := []int{0, 15, 3, 12, 5, 10, 1, 14, 7, 8, 2, 13, 4, 11, 6, 9, 0, 15}
	for _, bitsOn := range order {
		var online [5]bool
		for i := 1; i <= 4; i++ {
			online[i] = bitsOn&(1<<(4-i)) != 0
		}
		p := renderOK(t, shippedInput([5]bool{false, true, true, true, true}, online))
		if err := a.Apply(p); err != nil {
			t.Fatalf("state %04b: %v", bitsOn, err)
		}
		assertListing(t, ns, p)
	}
	// A different config on top: everything not in it goes; then the
	// same without uses, which removes their nat chain.
	noUses := optionsInput()
	noUses.Uses = nil
	for _, in := range []*Input{optionsInput(), noUses} {
		p := renderOK(t, in)
		if err := a.Apply(p); err != nil {
			t.Fatal(err)
		}
		assertListing(t, ns, p)
	}
}

// TestKernelUnchangedChainsKept checks that a re-apply leaves unchanged
// chains alone (same rule handles) and rewrites the changed ones, and that
// a chain deleted behind the Applier's back is restored.
func TestKernelUnchangedChainsKept(t *testing.T) {
	ns, a := nsApplier(t)
	in := shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, true, true, true, true})
	if err := a.Apply(renderOK(t, in)); err != nil {
		t.Fatal(err)
	}
	handles := func(chain string) string { return nftRun(t, ns, "-a", "list", "chain", "inet", TableName, chain) }
	rules, policy := handles(chainRules), handles("policy_balanced_ipv4")
	in.Interfaces[2].Online = false // wanb
	p := renderOK(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	if got := handles(chainRules); got != rules {
		t.Errorf("unchanged chain rules rewritten:\n%s\nbefore:\n%s", got, rules)
	}
	if got := handles("policy_balanced_ipv4"); got == policy {
		t.Errorf("changed chain policy_balanced_ipv4 not rewritten:\n%s", got)
	}
	assertListing(t, ns, p)
	// Someone deletes a chain and a map by hand: the next apply restores
	// them although the plan did not change.
	nftRun(t, ns, "flush", "chain", "inet", TableName, chainHook)
	nftRun(t, ns, "delete", "chain", "inet", TableName, "policy_wan_only_ipv6")
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	listing := listTable(t, ns)
	if !strings.Contains(listing, "chain policy_wan_only_ipv6 {") {
		t.Errorf("deleted chain not restored:\n%s", listing)
	}
	// A chain flushed by hand keeps its fingerprint, so it is not noticed
	// (documented on Applier); Remove and Apply rebuild everything.
	if strings.Contains(nftRun(t, ns, "list", "chain", "inet", TableName, chainHook), "jump rules") {
		t.Error("the flushed hook chain was refilled without a change; update the Applier documentation")
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	assertListing(t, ns, p)
}

// TestKernelKeepsState adds elements by hand to the dynamic set, a user
// ipset set and a sticky set, counts a packet, and re-applies changed
// plans: the elements and the counts survive; managed sets are replaced.
func TestKernelKeepsState(t *testing.T) {
	ns, a := nsApplier(t)
	in := optionsInput()
	in.Connected = pfx("192.168.1.0/24")
	in.Rules = append([]UserRule{{Name: "discard", Proto: "udp", DestPort: []PortRange{{9, 9}}, UsePolicy: "default"}}, in.Rules...)
	p := renderOK(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	nftRun(t, ns, "add", "element", "inet", TableName, "mwan3_dynamic_ipv4", "{ 198.18.0.0/15 }")
	nftRun(t, ns, "add", "element", "inet", TableName, "vpn", "{ 203.0.113.7 }")
	nftRun(t, ns, "add", "element", "inet", TableName, "sticky_https_ipv4_1", "{ 192.168.1.100 }")

	// One locally generated UDP packet to port 9 passes the output hook
	// and is counted by rule "discard".
	conn, err := ns.Dial(t.Context(), "udp", "127.0.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	in.Connected = pfx("10.0.0.0/8")
	in.Interfaces[2].Online = false // wanb: its sticky set goes, wan's stays
	p2 := renderOK(t, in)
	if err := a.Apply(p2); err != nil {
		t.Fatal(err)
	}
	listing := listTable(t, ns)
	for _, want := range []string{"198.18.0.0/15", "203.0.113.7", "192.168.1.100", "elements = { 10.0.0.0/8 }"} {
		if !strings.Contains(listing, want) {
			t.Errorf("after re-apply the table lacks %q:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "192.168.1.0/24") || strings.Contains(listing, "sticky_https_ipv4_3") {
		t.Errorf("stale managed element or sticky set kept:\n%s", listing)
	}
	vals, err := a.Counters(p2)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(vals, func(v CounterValue) bool { return v.Rule == "discard" && v.Family == IPv4 })
	if i < 0 || vals[i].Packets != 1 {
		t.Fatalf("counter of rule discard after re-apply: %+v", vals)
	}
	if vals[i].Kind != CounterRule || vals[i].Bytes == 0 {
		t.Errorf("counter value %+v", vals[i])
	}
}

// TestKernelInvalidPlan checks that a plan the kernel rejects leaves the
// previous ruleset byte-identical and that the error names the rule.
func TestKernelInvalidPlan(t *testing.T) {
	ns, a := nsApplier(t)
	p := renderOK(t, shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, true, false, true, false}))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	nftRun(t, ns, "add", "element", "inet", TableName, "mwan3_dynamic_ipv4", "{ 198.18.0.0/15 }")
	before := nftRun(t, ns, "list", "ruleset")

	bad := renderOK(t, shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, false, true, true, true}))
	rules := bad.Table.Chains[slices.IndexFunc(bad.Table.Chains, func(c *Chain) bool { return c.Name == chainRules })]
	rules.Rules = append(rules.Rules, Rule{Exprs: []Expr{Nfproto{IPv4}, Verdict{Kind: Goto, Chain: "no_such_chain"}}})
	err := a.Apply(bad)
	if err == nil {
		t.Fatal("Apply of an invalid plan succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "chain rules rule 5 (meta nfproto ipv4 goto no_such_chain)") {
		t.Errorf("error does not name the rule: %v", err)
	}
	if after := nftRun(t, ns, "list", "ruleset"); after != before {
		t.Errorf("ruleset changed by a failed apply:\n%s", lineDiff(before, after))
	}
	// The applier is not poisoned: the valid plan applies next.
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
}

// TestKernelTranslateError checks errors found before anything is sent.
func TestKernelTranslateError(t *testing.T) {
	ns, a := nsApplier(t)
	p := renderOK(t, shippedInput([5]bool{1: true}, [5]bool{1: true}))
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	before := listTable(t, ns)
	bad := renderOK(t, shippedInput([5]bool{1: true}, [5]bool{1: true}))
	bad.Table.Chains[0].Rules = append(bad.Table.Chains[0].Rules, Rule{Exprs: []Expr{AddrInSet{Family: IPv4, Set: "nosuch"}}})
	if err := a.Apply(bad); err == nil || !strings.Contains(err.Error(), "set nosuch is not in the plan") {
		t.Fatalf("Apply = %v", err)
	}
	if listTable(t, ns) != before {
		t.Error("table changed")
	}
}

func TestKernelRemove(t *testing.T) {
	ns, a := nsApplier(t)
	if err := a.Remove(); err != nil {
		t.Fatalf("Remove without table: %v", err)
	}
	if err := a.Apply(renderOK(t, dualStackInput())); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if out := nftRun(t, ns, "list", "tables"); strings.Contains(out, TableName) {
		t.Errorf("table still there: %s", out)
	}
	if _, err := a.Counters(renderOK(t, dualStackInput())); err == nil {
		t.Error("Counters without table succeeded")
	}
}

// TestKernelLargeSet loads a connected set of 100 000 prefixes in one
// transaction (chunked messages), then shrinks it.
func TestKernelLargeSet(t *testing.T) {
	ns, a := nsApplier(t)
	in := dualStackInput()
	in.Connected = largeConnected(100000)
	p := renderOK(t, in)
	start := time.Now()
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied %d elements in %v", len(in.Connected), time.Since(start))
	out := nftRun(t, ns, "list", "set", "inet", TableName, "mwan3_connected_ipv4")
	if n := len(ipv4Re.FindAllString(out, -1)); n != 100000 {
		t.Errorf("set has %d host elements, want 100000", n)
	}
	in.Connected = pfx("192.168.1.0/24")
	if err := a.Apply(renderOK(t, in)); err != nil {
		t.Fatal(err)
	}
	if out := nftRun(t, ns, "list", "set", "inet", TableName, "mwan3_connected_ipv4"); len(ipv4Re.FindAllString(out, -1)) != 1 {
		t.Error("old elements left")
	}
}

// largeConnected returns n non-adjacent IPv4 host routes.
func largeConnected(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range n {
		v := uint32(0x0a000000) + uint32(i)*2
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 32)
	}
	return out
}

// TestKernelMaskedMatch sends one locally generated UDP packet to each of
// x.1 … x.4 of an IPv4 and an IPv6 test network (routed to loopback) and
// reads the rule counters: a destination under a non-contiguous mask
// with an odd last byte matches x.1 and x.3 only, the rule after it
// counts x.2 and x.4.
func TestKernelMaskedMatch(t *testing.T) {
	ns, a := nsApplier(t)
	for _, args := range [][]string{
		{"-4", "route", "add", "local", "198.51.100.0/24", "dev", "lo"},
		{"-6", "route", "add", "local", "2001:db8:ff::/64", "dev", "lo"},
	} {
		if _, err := ns.Run(t.Context(), "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	in := &Input{Mask: DefaultMask, Rules: []UserRule{
		{Name: "odd", Family: IPv4, Proto: "udp", DestMasked: []MaskedAddr{masked("198.51.100.1", "255.255.255.1")}, UsePolicy: "default"},
		{Name: "odd6", Family: IPv6, Proto: "udp", DestMasked: []MaskedAddr{masked("2001:db8:ff::1", "ffff:ffff:ffff:ffff::1")}, UsePolicy: "default"},
		{Name: "rest", Proto: "udp", UsePolicy: "default"},
	}}
	p := renderOK(t, in)
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"198.51.100.0", "2001:db8:ff::"} {
		for i := 1; i <= 4; i++ {
			b := netip.MustParseAddr(base).AsSlice()
			b[len(b)-1] = byte(i)
			dst, _ := netip.AddrFromSlice(b)
			conn, err := ns.Dial(t.Context(), "udp", netip.AddrPortFrom(dst, 9).String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			conn.Close()
		}
	}
	vals, err := a.Counters(p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, v := range vals {
		if v.Kind == CounterRule {
			got[v.Rule+"_"+v.Family.String()] = v.Packets
		}
	}
	want := map[string]uint64{"odd_ipv4": 2, "odd6_ipv6": 2, "rest_ipv4": 2, "rest_ipv6": 2}
	if !maps.Equal(got, want) {
		t.Errorf("rule counters %v, want %v\n%s", got, want, listTable(t, ns))
	}
}
