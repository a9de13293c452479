package nfttest

import (
	"errors"
	"testing"

	"github.com/mwan3d/mwan3d/nft"
)

// applier is the method set the daemon uses; both implement it.
type applier interface {
	Apply(*nft.Plan) error
	Remove() error
	Counters(*nft.Plan) ([]nft.CounterValue, error)
}

var _ applier = (*Fake)(nil)

func plan(t *testing.T, online bool) *nft.Plan {
	t.Helper()
	p, err := nft.Render(&nft.Input{
		Mask:       nft.DefaultMask,
		Interfaces: []nft.Interface{{Name: "wan", ID: 1, Family: nft.IPv4, Enabled: true, Online: online, Device: "eth1"}},
		Policies:   []nft.Policy{{Name: "p", Members: []nft.Member{{Name: "m", Interface: "wan", Metric: 1, Weight: 1}}}},
		Rules:      []nft.UserRule{{Name: "r", UsePolicy: "p"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFake(t *testing.T) {
	var f Fake
	on, off := plan(t, true), plan(t, false)
	if _, err := f.Counters(on); err == nil {
		t.Error("Counters without a table succeeded")
	}
	if err := f.Apply(on); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	f.FailNextApply(boom)
	if err := f.Apply(off); !errors.Is(err, boom) {
		t.Fatalf("Apply = %v, want the injected error", err)
	}
	if f.Current() != on || f.Applies() != 1 {
		t.Fatalf("a failed apply changed the state: %d applies", f.Applies())
	}
	if err := f.Apply(off); err != nil || f.Current() != off {
		t.Fatalf("Apply = %v", err)
	}
	f.SetCounter("rule_r_ipv4", 3, 180)
	vals, err := f.Counters(off)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range vals {
		if v.Name == "rule_r_ipv4" {
			found = v.Packets == 3 && v.Bytes == 180 && v.Kind == nft.CounterRule && v.Rule == "r"
		}
	}
	if !found {
		t.Errorf("counter values %+v", vals)
	}
	if err := f.Remove(); err != nil || f.Current() != nil {
		t.Fatal("Remove kept the plan")
	}
	if err := f.Apply(nil); err == nil {
		t.Error("Apply(nil) succeeded")
	}
}
