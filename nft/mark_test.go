package nft

import (
	"math/bits"
	"testing"
)

func TestMaskMark(t *testing.T) {
	tests := []struct {
		mask      Mask
		v, want   uint32
		ifaceMax  uint32
		def, unr  uint32
		blackhole uint32
	}{
		{mask: 0x3f00, v: 1, want: 0x100, ifaceMax: 60, def: 0x3f00, unr: 0x3e00, blackhole: 0x3d00},
		{mask: 0x3f00, v: 2, want: 0x200, ifaceMax: 60, def: 0x3f00, unr: 0x3e00, blackhole: 0x3d00},
		{mask: 0x3f00, v: 3, want: 0x300, ifaceMax: 60, def: 0x3f00, unr: 0x3e00, blackhole: 0x3d00},
		{mask: 0x3f00, v: 60, want: 0x3c00, ifaceMax: 60, def: 0x3f00, unr: 0x3e00, blackhole: 0x3d00},
		// spec §3.2: non-contiguous mask, 5 = 101b → bits 1 and 5.
		{mask: 0xaa, v: 5, want: 0x22, ifaceMax: 12, def: 0xaa, unr: 0xa8, blackhole: 0xa2},
		// bits beyond the mask width are dropped (legacy wraps).
		{mask: 0x7, v: 9, want: 0x1, ifaceMax: 4, def: 0x7, unr: 0x6, blackhole: 0x5},
		{mask: 0xff000000, v: 1, want: 0x01000000, ifaceMax: 252, def: 0xff000000, unr: 0xfe000000, blackhole: 0xfd000000},
		{mask: 0xffffffff, v: 7, want: 7, ifaceMax: 0xfffffffc, def: 0xffffffff, unr: 0xfffffffe, blackhole: 0xfffffffd},
		{mask: 0x3, v: 1, want: 0x1, ifaceMax: 0, def: 0x3, unr: 0x2, blackhole: 0x1},
	}
	for _, tt := range tests {
		if got := tt.mask.Mark(tt.v); got != tt.want {
			t.Errorf("Mask(%v).Mark(%d) = %#x, want %#x", tt.mask, tt.v, got, tt.want)
		}
		if got := tt.mask.IfaceMax(); got != tt.ifaceMax {
			t.Errorf("Mask(%v).IfaceMax() = %d, want %d", tt.mask, got, tt.ifaceMax)
		}
		if got := tt.mask.DefaultMark(); got != tt.def {
			t.Errorf("Mask(%v).DefaultMark() = %#x, want %#x", tt.mask, got, tt.def)
		}
		if got := tt.mask.UnreachableMark(); got != tt.unr {
			t.Errorf("Mask(%v).UnreachableMark() = %#x, want %#x", tt.mask, got, tt.unr)
		}
		if got := tt.mask.BlackholeMark(); got != tt.blackhole {
			t.Errorf("Mask(%v).BlackholeMark() = %#x, want %#x", tt.mask, got, tt.blackhole)
		}
	}
}

func TestMaskValidate(t *testing.T) {
	for _, tt := range []struct {
		mask Mask
		ok   bool
	}{{0x3f00, true}, {0x7, true}, {0xaa, true}, {0x3, false}, {0, false}, {0xffffffff, true}} {
		if err := tt.mask.Validate(); (err == nil) != tt.ok {
			t.Errorf("Mask(%v).Validate() = %v, want ok=%v", tt.mask, err, tt.ok)
		}
	}
	if got := DefaultMask.String(); got != "0x3f00" {
		t.Errorf("DefaultMask.String() = %q", got)
	}
}

func TestMaskIfaceMark(t *testing.T) {
	for _, tt := range []struct {
		id   int
		want uint32
		ok   bool
	}{{1, 0x100, true}, {60, 0x3c00, true}, {0, 0, false}, {61, 0, false}, {-1, 0, false}} {
		got, err := DefaultMask.IfaceMark(tt.id)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("IfaceMark(%d) = %#x, %v; want %#x, ok=%v", tt.id, got, err, tt.want, tt.ok)
		}
	}
}

// TestMaskRoundTrip checks Mark and Value against each other and against
// a bit-by-bit reference for many masks.
func TestMaskRoundTrip(t *testing.T) {
	masks := []Mask{0x3f00, 0xaa, 0x7, 0x80000001, 0xf0f0f0f0, 0xffffffff, 0x10204080}
	for _, mask := range masks {
		b := mask.Bits()
		limit := uint64(1) << min(b, 12)
		for v := range uint32(limit) {
			m := mask.Mark(v)
			if m&^uint32(mask) != 0 {
				t.Fatalf("Mask(%v).Mark(%d) = %#x sets bits outside the mask", mask, v, m)
			}
			if got := mask.Value(m); got != v {
				t.Fatalf("Mask(%v).Value(Mark(%d)) = %d", mask, v, got)
			}
			if want := refDeposit(uint32(mask), v); m != want {
				t.Fatalf("Mask(%v).Mark(%d) = %#x, reference %#x", mask, v, m, want)
			}
		}
	}
}

// refDeposit is the obvious bit-by-bit deposit.
func refDeposit(mask, v uint32) uint32 {
	var out uint32
	k := 0
	for i := range 32 {
		if mask&(1<<i) != 0 {
			if k < 32 && v&(1<<k) != 0 {
				out |= 1 << i
			}
			k++
		}
	}
	return out
}

func FuzzMaskMark(f *testing.F) {
	f.Add(uint32(0x3f00), uint32(5))
	f.Add(uint32(0xaa), uint32(5))
	f.Add(uint32(0xffffffff), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, mask, v uint32) {
		m := Mask(mask)
		got := m.Mark(v)
		if want := refDeposit(mask, v); got != want {
			t.Fatalf("Mark(%#x) under %#x = %#x, want %#x", v, mask, got, want)
		}
		if b := bits.OnesCount32(mask); b < 32 {
			v &= 1<<b - 1
		}
		if m.Value(m.Mark(v)) != v {
			t.Fatalf("round trip of %#x under %#x failed", v, mask)
		}
	})
}
