// Package daemon is mwan3d itself: one loop that owns all state, follows
// netifd over ubus, the trackers and rtnetlink, hands the desired state to
// the nft and rtsync appliers, answers the mwan3 ubus object and runs the
// users' hooks. It is the only package that imports the others.
//
// # The loop
//
// Run starts one goroutine that owns the configuration, netifd's view of
// the interfaces, mwan3's per-interface state (ifup done, device, hotplug
// state, tracker commands sent) and what was applied. Its inputs arrive on
// channels: reloads (SIGHUP through Options.Reload, or ubus), netifd's
// interface changes, tracker events, route results and link changes from
// the route watcher, and the ubus calls that change state. It handles a
// burst of inputs, then reconciles once:
//
//  1. the rtsync input (ip rules and interface tables of the interfaces
//     that are up) goes to the route watcher when it changed;
//  2. trackers are started (paused), reconfigured or stopped as the
//     configuration says, without touching those whose options did not
//     change;
//  3. the nft ruleset is rendered and applied when anything it depends on
//     changed (a failed apply is retried);
//  4. trackers of interfaces that came up get their ifup once their routing
//     table is in place (their probes carry the interface's mark);
//  5. an immutable view is published for the ubus handlers, which never
//     touch the loop's state;
//  6. the transitions of the burst are announced: conntrack flushes, the
//     hooks (mwan3.user, hotplug-call iface) and the ubus event
//     mwan3.interface {interface, device, action, status, online}; then
//     the answers of the ubus calls of the burst are sent.
//
// At start the loop waits (Options.StartupWait at most) for netifd's dump
// and the first route reconcile before it applies anything, so that a
// daemon restarted after a crash adopts the kernel state of its
// predecessor with the same interfaces online, without a moment without a
// ruleset or rules. The first apply also waits for the one-time sweep of
// legacy mwan3's leftovers (legacy.go, spec §4.9 "Migration"), which runs
// meanwhile: when legacy's iptables mangle chains or ipsets are there, it
// removes the jumps to its chains, the chains, its ipsets and the ip rules
// of legacy's range 1000–3999 outside the daemon's own slots (rtsync
// reconciles those), and logs one line per kind; nothing else is touched.
//
// The status method answers from a cache of encoded replies, kept per
// published view and per state of the interfaces as status shows them
// (statuscache.go): a call builds that state, which is cheap, and encodes
// only when it changed since the last call.
//
// # netifd
//
// The daemon listens to the `network.interface` events (ifup, ifdown) and
// subscribes to the notifications of the `network.interface` object
// (interface.update, interface.down) with a subscription that follows
// netifd as it comes and goes (ubus.Conn.Watch). It reads `network.interface
// dump` at start and each time that subscription is made (netifd appeared
// or restarted, ubusd reconnected). Each event makes it read
// `network.interface.<name> status` again; the state is never patched from
// an event's contents. An interface.update whose status says "not up" is
// netifd's ifup-failed (its only such event).
//
// The hotplug rules are legacy's (spec §6.2, §6.3): ifup puts an interface
// in the policies at once unless initial_state is offline (then only a
// tracker that says online does), ifdown and a tracker's disconnected take
// it out, a tracker's connected (not the first connect) puts it back.
// An mwan3 interface uses netifd's interface of the same name for its
// device, rules and `up`/`uptime`; its tracker binds to the <name>_4 or
// <name>_6 child when netifd has one (cellular protocols). An address or
// route change without down/up (netifd's ifupdate) refreshes the tracker's
// source address and reaches the user script as "ifupdate". Events of
// netifd interfaces that are not enabled mwan3 interfaces only matter to
// rules with src_iface.
//
// # Hooks
//
// /etc/mwan3.user (Options.HooksDir) runs for every transition of an
// enabled interface — netifd's ifup, ifdown, ifupdate, ifup-failed and the
// tracker's connected, disconnected, connecting, disconnecting — with ACTION,
// INTERFACE and DEVICE only, after the state is applied; `hotplug-call
// iface` runs for the tracker's four with FIRSTCONNECT as legacy's
// trackers did. The ifup of interfaces found up at start and after a
// reload, and the CLI's own ifup/ifdown, do not run the user script
// (legacy's init and `mwan3 ifup` did not either). Hooks run off the loop,
// in order per interface, and are killed after their timeout.
//
// # Differences from legacy, on purpose
//
//   - Reload reconciles in place (spec §10.17): trackers keep their state,
//     sticky entries, sets and counters survive, no disconnected/connected
//     events; a configuration with errors is refused and the running one
//     stays.
//   - flush_conntrack deletes only the interface's connections (its mark),
//     never the whole table.
//   - ifupdate is followed.
//   - The ip rules of legacy's range are removed at start only when legacy
//     state is found, and only outside the daemon's own slots; at stop the
//     daemon removes its own rules only (spec §9.4 REC).
package daemon
