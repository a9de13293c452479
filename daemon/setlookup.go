package daemon

import (
	"bytes"
	"net/netip"
	"slices"
)

// SetLookup tells whether the named set of the daemon's nft table holds
// an address (explain's rules with an ipset option). Kernel.SetLookup is
// the Linux one.
type SetLookup func(set string, a netip.Addr) (bool, error)

// setElem is one element of an nft set as the kernel lists it: a key, or
// for interval sets the start of a range (the next element up, flagged
// end, is the first key past it) or a range end; KeyEnd, when set, is the
// last key of a range in one element (sets with concatenations or kernels
// that list ranges so).
type setElem struct {
	key, keyEnd []byte
	end         bool
}

// setHas decides whether key (an address in network order) is in a set
// with these elements.
func setHas(elems []setElem, interval bool, key []byte) bool {
	for _, e := range elems {
		if e.keyEnd != nil && bytes.Compare(e.key, key) <= 0 && bytes.Compare(key, e.keyEnd) <= 0 {
			return true
		}
		if !interval && !e.end && bytes.Equal(e.key, key) {
			return true
		}
	}
	if !interval {
		return false
	}
	// Ranges: the closest boundary at or below key decides. A start and
	// an end at the same key (adjacent ranges) is a start: ends are
	// exclusive.
	sorted := slices.Clone(elems)
	slices.SortFunc(sorted, func(a, b setElem) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		switch {
		case a.end == b.end:
			return 0
		case a.end:
			return -1
		}
		return 1
	})
	in := false
	for _, e := range sorted {
		if e.keyEnd != nil || len(e.key) != len(key) || bytes.Compare(e.key, key) > 0 {
			continue
		}
		in = !e.end
	}
	return in
}
