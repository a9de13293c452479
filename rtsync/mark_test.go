package rtsync

import (
	"errors"
	"math/bits"
	"strings"
	"testing"
)

func TestDeposit(t *testing.T) {
	tests := []struct {
		mask, v, want uint32
	}{
		// Spec §3.2 examples.
		{0x3f00, 1, 0x100},
		{0x3f00, 2, 0x200},
		{0x3f00, 3, 0x300},
		{0x3f00, 60, 0x3c00},
		{0xaa, 5, 0x22},
		// Spec §3.3 special values with the default mask.
		{0x3f00, 63, 0x3f00},
		{0x3f00, 62, 0x3e00},
		{0x3f00, 61, 0x3d00},
		{0x3f00, 0, 0},
		// Bits that do not fit are dropped.
		{0x3f00, 64, 0},
		{0x7, 0xff, 0x7},
		{0x80000001, 3, 0x80000001},
		{0x80000001, 2, 0x80000000},
	}
	for _, tt := range tests {
		if got := deposit(tt.mask, tt.v); got != tt.want {
			t.Errorf("deposit(%#x, %d) = %#x, want %#x", tt.mask, tt.v, got, tt.want)
		}
	}
}

// TestDepositReference checks deposit against a slow, obviously correct
// version for many masks and values.
func TestDepositReference(t *testing.T) {
	slow := func(mask, v uint32) uint32 {
		var out uint32
		j := 0
		for i := range 32 {
			if mask&(1<<i) == 0 {
				continue
			}
			if j < 32 && v&(1<<j) != 0 {
				out |= 1 << i
			}
			j++
		}
		return out
	}
	x := uint32(0x9e3779b9)
	for range 5000 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		mask, v := x, x*2654435761
		if got, want := deposit(mask, v), slow(mask, v); got != want {
			t.Fatalf("deposit(%#x, %#x) = %#x, want %#x", mask, v, got, want)
		}
		if got := deposit(mask, v); got&^mask != 0 {
			t.Fatalf("deposit(%#x, %#x) = %#x sets bits outside the mask", mask, v, got)
		}
	}
}

func TestMarks(t *testing.T) {
	m, err := newMarks(0x3f00)
	if err != nil {
		t.Fatal(err)
	}
	if m.ifaceMax() != 60 || m.blackhole() != 61 || m.unreachable() != 62 {
		t.Errorf("iface_max %d blackhole %d unreachable %d, want 60 61 62", m.ifaceMax(), m.blackhole(), m.unreachable())
	}
	owned := []uint32{1001, 1060, 2001, 2060, 2061, 2062, 3001, 3060}
	foreign := []uint32{0, 1000, 1061, 1300, 2000, 2063, 2500, 3000, 3061, 5210, 32766}
	for _, p := range owned {
		if !m.ownsRulePriority(p) {
			t.Errorf("priority %d should be ours", p)
		}
	}
	for _, p := range foreign {
		if m.ownsRulePriority(p) {
			t.Errorf("priority %d should not be ours", p)
		}
	}
	// The ranges never overlap for any valid mask width.
	for b := minMaskBits; b <= maxMaskBits; b++ {
		m, err := newMarks(1<<b - 1)
		if err != nil {
			t.Fatal(err)
		}
		max := uint32(m.ifaceMax())
		if prioIIF+max >= prioLookup || prioLookup+m.unreachable() >= prioGuard+1 {
			t.Errorf("%d bits: ranges overlap", b)
		}
		if bits.OnesCount32(m.mask) != b {
			t.Errorf("%d bits: mask %#x", b, m.mask)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Interface{Name: "wan", ID: 1, Family: IPv4, Device: "eth1"}
	tests := []struct {
		name string
		in   Input
		want string // error substring, "" for valid
	}{
		{"default", Input{Mask: 0x3f00, Interfaces: []Interface{ok}}, ""},
		{"mask too small", Input{Mask: 0x3}, "mask 0x3 has 2 bits"},
		{"mask too wide", Input{Mask: 0xffff}, "has 16 bits"},
		{"zero mask", Input{}, "has 0 bits"},
		{"id zero", Input{Mask: 0x3f00, Interfaces: []Interface{{Name: "a", Family: IPv4}}}, `"a": id 0 outside 1..60`},
		{"id too big", Input{Mask: 0x3f00, Interfaces: []Interface{{Name: "a", ID: 61, Family: IPv4}}}, "id 61 outside 1..60"},
		{"3 bits", Input{Mask: 0x7, Interfaces: []Interface{{Name: "a", ID: 5, Family: IPv4}}}, "outside 1..4"},
		{"duplicate id", Input{Mask: 0x3f00, Interfaces: []Interface{ok, {Name: "b", ID: 1, Family: IPv6}}}, `"wan" and "b" share id 1`},
		{"bad family", Input{Mask: 0x3f00, Interfaces: []Interface{{Name: "a", ID: 1}}}, "bad family"},
		{"long device", Input{Mask: 0x3f00, Interfaces: []Interface{{Name: "a", ID: 1, Family: IPv4, Device: "abcdefghijklmnop"}}}, "longer than 15"},
		{"table 0", Input{Mask: 0x3f00, TableLookup: []uint32{0}}, "table 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validate(tt.in)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			case err != nil && !errors.Is(err, ErrInvalidInput):
				t.Fatalf("error %v does not wrap ErrInvalidInput", err)
			}
		})
	}
}
