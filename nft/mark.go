package nft

import (
	"fmt"
	"math/bits"
)

// Mask is the set of firewall mark bits reserved for mwan3 (the mmx_mask
// global, 0x3F00 by default). Every mark mwan3 writes or tests lives under
// the mask; bits outside it belong to other software and are never changed.
//
// A value v (an interface id or a special value) becomes a mark by
// depositing the bits of v, least significant first, onto the 1-bits of the
// mask, least significant first (spec §3.2). With b 1-bits in the mask the
// values 1 … 2^b−4 are interface ids, 2^b−1 is "default" (use the main
// table), 2^b−2 "unreachable" and 2^b−3 "blackhole" (spec §3.3).
type Mask uint32

// DefaultMask is mwan3's default mmx_mask.
const DefaultMask Mask = 0x3F00

// MinMaskBits is the smallest usable number of mask bits: with fewer, no
// interface id remains beside the three special values.
const MinMaskBits = 3

// Bits returns the number of 1-bits in the mask.
func (m Mask) Bits() int { return bits.OnesCount32(uint32(m)) }

// Validate reports whether the mask has enough bits to carry at least one
// interface id beside the special values.
func (m Mask) Validate() error {
	if m.Bits() < MinMaskBits {
		return fmt.Errorf("mark mask %#x has %d bits set, need at least %d", uint32(m), m.Bits(), MinMaskBits)
	}
	return nil
}

// all is 2^b − 1, the largest value the mask can carry (0 for an empty mask).
func (m Mask) all() uint32 {
	return uint32(uint64(1)<<m.Bits() - 1)
}

// IfaceMax returns the largest interface id the mask can carry: 2^b − 4
// (60 for the default mask), or 0 when the mask is unusable.
func (m Mask) IfaceMax() uint32 {
	if m.Bits() < MinMaskBits {
		return 0
	}
	return m.all() - 3
}

// Mark deposits the low bits of v onto the mask bits (bit deposit). Bits of
// v beyond the mask width are dropped.
func (m Mask) Mark(v uint32) uint32 {
	var out uint32
	for rest := uint32(m); rest != 0 && v != 0; rest &= rest - 1 {
		if v&1 != 0 {
			out |= rest & -rest // lowest remaining mask bit
		}
		v >>= 1
	}
	return out
}

// Value extracts the value carried by mark under the mask (bit extract),
// the inverse of Mark.
func (m Mask) Value(mark uint32) uint32 {
	var out, bit uint32 = 0, 1
	for rest := uint32(m); rest != 0; rest &= rest - 1 {
		if mark&(rest&-rest) != 0 {
			out |= bit
		}
		bit <<= 1
	}
	return out
}

// IfaceMark returns the mark of interface id, or an error when the id is
// outside 1 … IfaceMax.
func (m Mask) IfaceMark(id int) (uint32, error) {
	if id < 1 || uint64(id) > uint64(m.IfaceMax()) {
		return 0, fmt.Errorf("interface id %d outside 1..%d for mark mask %#x", id, m.IfaceMax(), uint32(m))
	}
	return m.Mark(uint32(id)), nil
}

// DefaultMark is the mark meaning "no policy routing, use the main table":
// value 2^b−1, which is the mask itself.
func (m Mask) DefaultMark() uint32 { return m.Mark(m.all()) }

// UnreachableMark is the mark the "unreachable" ip rule rejects: 2^b−2.
func (m Mask) UnreachableMark() uint32 { return m.Mark(m.all() - 1) }

// BlackholeMark is the mark the "blackhole" ip rule drops: 2^b−3.
func (m Mask) BlackholeMark() uint32 { return m.Mark(m.all() - 2) }

// String formats the mask like legacy mwan3 prints marks: lower-case hex
// with a 0x prefix.
func (m Mask) String() string { return fmt.Sprintf("%#x", uint32(m)) }
