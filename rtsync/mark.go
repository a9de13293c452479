package rtsync

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrInvalidInput is wrapped by every error about a bad [Input].
var ErrInvalidInput = errors.New("rtsync: invalid input")

// Mask limits. With b mask bits the ids are 1..2^b−4 and the special values
// are 2^b−3..2^b−1; priorities are 1000+id, 2000+id, 3000+id and
// 2000+(2^b−3), 2000+(2^b−2). Beyond 9 bits those ranges overlap.
const (
	minMaskBits = 3
	maxMaskBits = 9
)

// Rule priority bases (spec §3.4, a contract).
const (
	prioIIF    = 1000
	prioLookup = 2000
	prioGuard  = 3000
)

// maxDeviceName is the longest device name the kernel accepts (IFNAMSIZ−1).
const maxDeviceName = 15

// marks describes the mark layout of one mask.
type marks struct {
	mask uint32
	bits int
	all  uint32 // 2^b − 1, the "default" value
}

func newMarks(mask uint32) (marks, error) {
	b := bits.OnesCount32(mask)
	if b < minMaskBits || b > maxMaskBits {
		return marks{}, fmt.Errorf("%w: mask %#x has %d bits, need %d..%d", ErrInvalidInput, mask, b, minMaskBits, maxMaskBits)
	}
	return marks{mask: mask, bits: b, all: 1<<b - 1}, nil
}

// ifaceMax is the highest interface id (2^b − 4).
func (m marks) ifaceMax() int { return int(m.all) - 3 }

// blackhole and unreachable are the special values of spec §3.3.
func (m marks) blackhole() uint32   { return m.all - 2 }
func (m marks) unreachable() uint32 { return m.all - 1 }

// mark deposits the bits of v, least significant first, onto the 1-bits of
// the mask, least significant first (spec §3.2). Bits of v that do not fit
// are dropped.
func (m marks) mark(v uint32) uint32 {
	return deposit(m.mask, v)
}

// deposit is the "bit deposit" of v into mask (like x86 PDEP).
func deposit(mask, v uint32) uint32 {
	var out uint32
	for rest := mask; rest != 0 && v != 0; rest &= rest - 1 {
		low := rest & -rest
		if v&1 != 0 {
			out |= low
		}
		v >>= 1
	}
	return out
}

// ownsRulePriority reports whether prio is one of mwan3's rule slots.
func (m marks) ownsRulePriority(prio uint32) bool {
	max := uint32(m.ifaceMax())
	switch {
	case prio > prioIIF && prio <= prioIIF+max:
		return true
	case prio > prioLookup && prio <= prioLookup+max:
		return true
	case prio > prioGuard && prio <= prioGuard+max:
		return true
	}
	return prio == prioLookup+m.blackhole() || prio == prioLookup+m.unreachable()
}

// validate checks the parts of in that rtsync depends on.
func validate(in Input) (marks, error) {
	m, err := newMarks(in.Mask)
	if err != nil {
		return m, err
	}
	seen := make(map[int]string, len(in.Interfaces))
	for _, ifc := range in.Interfaces {
		if ifc.ID < 1 || ifc.ID > m.ifaceMax() {
			return m, fmt.Errorf("%w: interface %q: id %d outside 1..%d", ErrInvalidInput, ifc.Name, ifc.ID, m.ifaceMax())
		}
		if other, dup := seen[ifc.ID]; dup {
			return m, fmt.Errorf("%w: interfaces %q and %q share id %d", ErrInvalidInput, other, ifc.Name, ifc.ID)
		}
		seen[ifc.ID] = ifc.Name
		if ifc.Family != IPv4 && ifc.Family != IPv6 {
			return m, fmt.Errorf("%w: interface %q: bad family %v", ErrInvalidInput, ifc.Name, ifc.Family)
		}
		if len(ifc.Device) > maxDeviceName {
			return m, fmt.Errorf("%w: interface %q: device name %q longer than %d bytes", ErrInvalidInput, ifc.Name, ifc.Device, maxDeviceName)
		}
	}
	for _, t := range in.TableLookup {
		if t == 0 {
			return m, fmt.Errorf("%w: rt_table_lookup: table 0", ErrInvalidInput)
		}
	}
	return m, nil
}
