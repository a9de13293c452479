package daemon

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"

	"github.com/mwan3d/mwan3d/nft"
)

// nftSetLookup reads the sets of the daemon's table (inet mwan3) over
// nftables netlink, in the namespace of the options (the current one
// without).
func nftSetLookup(opts ...nftables.ConnOption) SetLookup {
	return func(name string, a netip.Addr) (bool, error) {
		c, err := nftables.New(opts...)
		if err != nil {
			return false, fmt.Errorf("nftables: %w", err)
		}
		defer c.CloseLasting()
		set, err := c.GetSetByName(&nftables.Table{Name: nft.TableName, Family: nftables.TableFamilyINet}, name)
		if err != nil {
			return false, fmt.Errorf("set %s: %w", name, err)
		}
		a = a.Unmap()
		switch {
		case set.KeyType == nftables.TypeIPAddr && a.Is4():
		case set.KeyType == nftables.TypeIP6Addr && a.Is6():
		default:
			return false, nil // another family, or not an address set
		}
		list, err := c.GetSetElements(set)
		if err != nil {
			return false, fmt.Errorf("elements of set %s: %w", name, err)
		}
		elems := make([]setElem, len(list))
		for i, e := range list {
			elems[i] = setElem{key: e.Key, keyEnd: e.KeyEnd, end: e.IntervalEnd}
		}
		return setHas(elems, set.Interval, a.AsSlice()), nil
	}
}
