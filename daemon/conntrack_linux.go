package daemon

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// markFilter selects conntrack entries whose mark, under mask, equals value.
type markFilter struct{ mask, value uint32 }

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (f markFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	return flow.Mark&f.mask == f.value
}

// FlushConntrackMark deletes, in both families, the conntrack entries that
// carry mark under mask (one interface's connections) through ctnetlink on
// handle h, and returns how many it deleted. Other entries, and other
// mark bits, are left alone: this is never a global flush.
func FlushConntrackMark(h *netlink.Handle, mask, mark uint32) (uint, error) {
	if mark == 0 || mark&^mask != 0 {
		return 0, fmt.Errorf("flush conntrack: mark %#x is not a non-zero value under mask %#x", mark, mask)
	}
	var total uint
	var errs []error
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, markFilter{mask: mask, value: mark})
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("flush conntrack family %d mark %#x/%#x: %w", fam, mark, mask, err))
		}
	}
	return total, errors.Join(errs...)
}
