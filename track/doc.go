// Package track is mwan3d's interface tracker: it probes the targets of
// every tracked WAN with native probes (no forked programs) and runs legacy
// mwan3track's score state machine on the results.
//
// # Shape
//
// A Manager owns one goroutine per tracked interface. The daemon starts,
// stops and reconfigures trackers, forwards netifd's ifup/ifdown/ifupdate
// and the kernel's carrier changes to them, and reads the tracker events
// (connected, disconnected, connecting, disconnecting) from
// Manager.Events. Manager.Status returns an immutable Snapshot for status
// calls at any time without blocking a tracker.
//
// A tracker goroutine runs rounds (spec §5.4). The targets of a round are
// probed at the same time, but the round is evaluated in configuration
// order exactly as legacy's sequential loop: once `reliability` targets
// answered, the remaining targets are `skipped` and their probes are
// cancelled; a target's result is only taken into account if legacy would
// have probed it. A round therefore takes as long as its slowest needed
// probe instead of the sum of all probes, which halves the detection time
// of the shipped configuration (4 targets, reliability 2).
//
// The score state machine (machine.go) is pure: it takes results and the
// time and reports events and tracker-file values through a small sink, so
// it is tested line by line in virtual time (testing/synctest).
//
// # Probes
//
// Every probe socket is bound with SO_BINDTODEVICE to the interface's
// device, marked with SO_MARK and bound to the interface's source address —
// what legacy's LD_PRELOAD shim does (§5.3.2) — and only of the
// interface's family, so a probe can never leave through another WAN.
// ping and nping-icmp keep one ICMP socket per interface open between
// rounds (a reader goroutine hands each reply to the probe waiting for its
// sequence number; a socket whose device vanished is replaced); the other
// methods open a socket per probe. The methods:
//
//   - ping: ICMP or ICMPv6 echo; `count` requests one second apart, each
//     answered within `timeout`; success when at least one reply came back.
//     An ICMP error about a request (destination unreachable, time
//     exceeded, parameter problem) fails that request at once, as iputils'
//     ping does (busybox's waits for the timeout). `size` and `max_ttl` set
//     the payload size and TTL/hop limit. Raw sockets are used when
//     permitted (root), unprivileged ping sockets otherwise (which do not
//     see ICMP errors).
//   - arping: ARP requests on the device (IPv4 only), like `arping -c count
//     -w timeout`: the whole probe ends after `timeout`; success with at
//     least one reply.
//   - httping: "HEAD / HTTP/1.1" to port 80, the Host header bracketing
//     IPv6 literals; any HTTP status line counts as an answer (an error
//     status too, as for httping). With httping_ssl, a TLS ClientHello to
//     port 443; a ServerHello or a TLS alert counts as an answer: the
//     target's TLS stack answered through the interface, which is all
//     httping's verdict depends on (it does not verify certificates); the
//     key exchange and the request inside TLS are saved (httping.go).
//   - nping-icmp, nping-tcp, nping-udp, nping-arp: like nping, success only
//     when every one of the `count` probes was answered. TCP connects to
//     port 80; an accepted connection or a reset both count as an answer.
//     UDP sends empty datagrams to port 40125; a datagram back or an ICMP
//     port unreachable counts as an answer. ICMP and ARP as for ping and
//     arping.
//   - nslookup: one DNS query over UDP to the target (the DNS server),
//     asking for the NS records of Params.DNSName, by default the root
//     zone "." (legacy asked for www.google.com, a hard-coded public
//     name). A well-formed answer with RCODE NOERROR or NXDOMAIN counts.
//
// Host-name targets are resolved at every probe with a resolver whose DNS
// queries leave through the same bound socket setup, as legacy's probe
// tools did through the shim.
//
// # Timing
//
// Each of the `count` probes of a target waits `timeout` for its reply,
// and they leave one second apart (ping -c/-W; arping's -w bounds the whole
// probe instead). A round whose requests are silently lost therefore lasts
// (count−1)·1 s + timeout: the targets are probed at the same time and any
// of them may still answer until its timeout, so the failure is not
// certain earlier. A round ends before the timeout when `reliability`
// targets answered (the rest are skipped, as legacy skipped them) or when
// ICMP errors failed the requests. A failure that is certain while some
// targets are still being probed does not end the round: legacy probed
// them, and their TRACK_ files and LOST (spec §5.8, CONTRACT) depend on
// their answers. The pause before the next round counts from the end of
// the round, as in legacy (spec §5.5, CONTRACT). An upstream cut is seen by the first round
// that starts after it, 0 … interval later, so with the defaults the
// shipped wan goes offline phase + 5·4 s + 4·10 s = 60 … 70 s after the
// cut (legacy: 120 … 130 s); with interval 1 and down 3, 14 … 15 s (legacy
// 50 … 51 s); when a router answers "unreachable", 40 … 50 s with the
// defaults (TestDetectionTimes).
//
// # Tracker files
//
// Values are only written when they change, each replaced atomically. TURN
// and TIME change after every round: on Linux each keeps a spare inode in
// the hidden sibling directory .<iface>.spare and the two are swapped with
// renameat2(RENAME_EXCHANGE), which costs a fifth of creating a file.
//
// # Differences from legacy, on purpose
//
//   - The spec's RECs: after a success while disconnecting the in-memory
//     status is online too (the next degradation fires `disconnecting`
//     again); ifup runs first connect at once, with the binding it carries;
//     ifupdate refreshes device and source; check_quality is ignored with a
//     warning for methods other than ping and httping; httping brackets
//     IPv6 literals.
//   - ifdown and ifup interrupt the probes in flight; as in legacy, those
//     count as failed and the round is evaluated (which can fire a
//     `disconnecting` just before `disconnected`).
//   - Carrier loss (Manager.Carrier) takes the interface offline at once
//     with `disconnected` (if it was online or disconnecting) and stops
//     probing; carrier back starts a round at once, and `up` successful
//     rounds bring it online. A first connect without carrier is a quiet
//     offline.
//   - Quality figures are exact integers (legacy failed to parse iputils'
//     "33.3333%" and marked such targets skipped); TRACK_OUTPUT holds a
//     summary in the tool's format with our numbers.
//   - Reconfigure keeps the status instead of restarting the tracker
//     (Stop and Start give legacy's restart).
//   - Bad values are normalized with a warning (Params.Normalize).
package track
