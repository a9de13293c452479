// Package rtsync keeps mwan3's policy routing in the kernel: the ip rules
// (priorities 1000+id, 2000+id, 3000+id and the global blackhole and
// unreachable rules) and one routing table per interface id that mirrors the
// main table (and the rt_table_lookup tables) as routes come and go.
//
// The package is layered like tailscale's router:
//
//   - [Desired] is pure: from an [Input] (the validated model plus netifd's view
//     of each interface) and a [Snapshot] of the kernel's links and routes it
//     computes the rules, the contents of every interface table and the
//     connected and custom networks that feed nft's bypass sets.
//   - [Syncer.Reconcile] lists what the kernel has through the narrow [Kernel]
//     interface (only rules in mwan3's priority slots and tables of mwan3 ids),
//     diffs it against the desired state, adds before it deletes, replaces
//     routes in place and records what was applied. Calling it again with the
//     same input does nothing.
//   - [Watcher] subscribes to route, link and address changes. A notification
//     only marks the state dirty; a debounced reconcile then re-lists the
//     kernel. A closed subscription (ENOBUFS under a route storm) leads to a
//     new subscription and a full resync. Carrier changes are reported at once.
//   - [Syncer.Cleanup] removes every rule and table entry of ours, nothing else.
//
// The kernel side ([NetlinkKernel], Linux only) speaks rtnetlink through
// [nlsock] sockets opened in a given network namespace, with its own
// message codec.
package rtsync
