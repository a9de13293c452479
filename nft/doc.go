// Package nft renders mwan3's whole policy as one nftables table, `inet
// mwan3`, and applies it to the kernel as one atomic transaction.
//
// The pieces, in the order data flows through them:
//
//   - Input: the configuration (already validated by the daemon) and the
//     current interface states; Mask holds the mark arithmetic (bit
//     deposit of interface ids and the special values into mmx_mask).
//   - Render: a pure, deterministic function from Input to Plan. A Plan's
//     Table is an intermediate representation (tables, sets, maps, chains,
//     rules as plain Go values) whose String is what `nft list table inet
//     mwan3` prints for it; Dump and WriteDump give the debug file.
//   - Applier (Linux): translates the IR into nf_tables netlink messages
//     in one place (what nft 1.0.6 sends for the same text) and applies a
//     Plan as one batch, a single kernel transaction. The table
//     is created once and never deleted while running; chains that change
//     are flushed and refilled in the same transaction, so sticky entries,
//     users' ipset elements, the dynamic set and counters survive. Counters
//     reads the per-rule and per-member counters back; Remove deletes the
//     table.
//
// The packet path follows the legacy mangle chains step by step (spec §4,
// design §4.9): conntrack marks are restored and saved under the mask with
// verdict maps dispatching to one tiny chain per mark value, because
// OpenWrt kernels lack register-to-register bitwise operations; bits
// outside the mask are never changed. Policies balance with `numgen random
// mod Σweight` over the online members of the best metric; sticky rules use
// one timeout set per rule, family and active member, updated from the
// packet path, so a sticky client keeps its WAN and moves when that WAN
// goes offline.
//
// A user rule's address options may hold prefixes and addresses under
// non-contiguous masks (iptables' dotted masks such as 0.0.0.1/0.0.0.1,
// rendered as `ip saddr & 0.0.0.1 == 0.0.0.1`); like iptables, such a rule
// expands to one nft rule per combination of a source and a destination
// alternative, all counting into the rule's counter.
//
// Uses (`mwan3 use`) mark the output of a cgroup with an interface's mark
// in the output route chain, so it is rerouted to the interface's table,
// and accept it before the hook saves the mark into conntrack; a nat
// postrouting chain masquerades such new connections (interface mark, no
// conntrack mark: the kernel allows no cgroup test in postrouting) when
// their source address is not one of the out interface's.
package nft
