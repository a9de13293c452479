package nft

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// What the daemon's diagnostics read of the table besides counters.

// Chains returns the names of the chains of table inet mwan3 in the
// Applier's namespace (none when the table does not exist).
func (a *Applier) Chains() (map[string]bool, error) {
	c, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("list nft chains: %w", err)
	}
	defer c.Close()
	out := map[string]bool{}
	err = a.dump(c, unix.NFT_MSG_GETCHAIN, dumpMsg(0, ""), func() { clear(out) }, func(b []byte) error {
		ch, err := parseChain(b)
		if ch.table == TableName {
			out[ch.name] = true
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list nft chains: %w", err)
	}
	return out, nil
}

// KernelSet is a named set of table inet mwan3 as the kernel lists it.
type KernelSet struct {
	Key      KeyType // 0: a key type mwan3 does not use
	Interval bool
	Elements []SetElement
}

// ReadSet lists the set name of table inet mwan3 with its elements (an
// error wrapping unix.ENOENT when there is no such set).
func (a *Applier) ReadSet(name string) (*KernelSet, error) {
	c, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("read nft set %s: %w", name, err)
	}
	defer c.Close()
	var found *kSet
	err = a.dump(c, unix.NFT_MSG_GETSET, dumpMsg(unix.NFTA_SET_TABLE, TableName), func() { found = nil }, func(b []byte) error {
		s, err := parseSet(b)
		if err == nil && s.table == TableName && s.name == name {
			found = &s
		}
		return err
	})
	if err == nil && found == nil {
		err = unix.ENOENT
	}
	if err != nil {
		return nil, fmt.Errorf("read nft set %s: %w", name, err)
	}
	out := &KernelSet{Interval: found.flags&unix.NFT_SET_INTERVAL != 0}
	for _, k := range []KeyType{KeyIPv4, KeyIPv6, KeyMark} {
		if keyType(k).magic == found.keyType {
			out.Key = k
		}
	}
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_SET_ELEM_LIST_TABLE, TableName)
	w.str(unix.NFTA_SET_ELEM_LIST_SET, name)
	err = a.dump(c, unix.NFT_MSG_GETSETELEM, w.b, func() { out.Elements = nil }, func(b []byte) error {
		elems, err := parseSetElems(b)
		out.Elements = append(out.Elements, elems...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read nft set %s elements: %w", name, err)
	}
	return out, nil
}
