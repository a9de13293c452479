//go:build linux

package nft

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelReadBack checks Chains and ReadSet against an applied plan and
// an element added by hand.
func TestKernelReadBack(t *testing.T) {
	ns, a := nsApplier(t)
	if got, err := a.Chains(); err != nil || len(got) != 0 {
		t.Errorf("chains without table: %v, %v", got, err)
	}
	p := renderOK(t, dualStackInput())
	if err := a.Apply(p); err != nil {
		t.Fatal(err)
	}
	chains, err := a.Chains()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, ch := range p.Table.Chains {
		want[ch.Name] = true
	}
	if !maps.Equal(chains, want) {
		t.Errorf("chains %v, want %v", slices.Sorted(maps.Keys(chains)), slices.Sorted(maps.Keys(want)))
	}

	show := func(es []SetElement) []string {
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%x/%x/%v", e.Key, e.KeyEnd, e.IntervalEnd))
		}
		slices.Sort(out)
		return out
	}
	for _, s := range p.Table.Sets {
		if s.Name != "mwan3_connected_ipv4" && s.Name != "mwan3_connected_ipv6" {
			continue
		}
		got, err := a.ReadSet(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		elems, err := setElements(s)
		if err != nil {
			t.Fatal(err)
		}
		var sent []SetElement
		for _, e := range elems {
			sent = append(sent, SetElement{Key: e.key, IntervalEnd: e.intervalEnd})
		}
		if got.Key != s.Key || got.Interval != s.Interval || !slices.Equal(show(got.Elements), show(sent)) {
			t.Errorf("set %s read back as %v %v %v, want %v %v %v", s.Name, got.Key, got.Interval, show(got.Elements), s.Key, s.Interval, show(sent))
		}
	}
	nftRun(t, ns, "add", "element", "inet", TableName, "mwan3_dynamic_ipv4", "{ 198.18.0.7 }")
	got, err := a.ReadSet("mwan3_dynamic_ipv4")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got.Elements, func(e SetElement) bool { return string(e.Key) == "\xc6\x12\x00\x07" && !e.IntervalEnd }) {
		t.Errorf("element added by hand not listed: %v", show(got.Elements))
	}
	if _, err := a.ReadSet("nosuch"); !errors.Is(err, unix.ENOENT) {
		t.Errorf("ReadSet of a missing set: %v", err)
	}
}
