// Package testbed builds a real multi-WAN network out of Linux network
// namespaces and veth links, for kernel tests and demos. It needs root;
// without it the tests skip (see RequireRoot).
//
// NewNS gives a test a network namespace of its own, removed at cleanup even
// after a failure, with Do to run code inside it on a throwaway locked
// thread, handles bound to it (netlink, nftables) and sockets created in it.
// New builds the whole topology, here with N WANs:
//
//	  lan ns             router ns             isp1 ns                 internet ns
//	.-----------.      .------------.       .-------------.         .-------------------.
//	| client    |      |       eth1 o-------o cpe      up o---------o isp1              |
//	|      eth0 o------o lan0       |       | route, NAT  |         |                   |
//	'-----------'      |       eth2 o--.    '-------------'         | lo:               |
//	                   |        ... |  '--- isp2 ns ----------------o isp2  targets     |
//	                   |       ethN o------ ispN ns ----------------o ispN  echo, HTTP  |
//	                   '------------'                               '-------------------'
//
//	LAN            192.168.1.0/24, fd00:100::/64: router .1, ::1; client .100, ::100
//	WAN n (1..8)   10.0.n.0/24, fd00:n::/64: ISP gateway .1, ::1; router .2, ::2;
//	               router default routes via the gateway with metric 10*n
//	ISP n uplink   203.0.113.8n/29, 2001:db8:n::/64: internet host .8n+1, ::1;
//	               ISP .8n+2, ::2 (the public address the internet host sees)
//	internet lo    targets 198.51.100.1-4, 2001:db8:ff::1-4; echo 198.51.100.7,
//	               2001:db8:ff::7 (TCP and UDP, port 7); HTTP 198.51.100.80,
//	               2001:db8:ff::80 (port 80)
//
// The router does no NAT; every ISP masquerades (IPv4 and IPv6) towards the
// internet host, so the source address the internet host sees tells which
// WAN carried a packet (Testbed.WANBySource). The internet host answers pings
// on its own addresses (the track targets); its echo servers answer with the
// client address they saw, and so does its HTTP server. All namespaces have
// duplicate address detection and the reverse-path filter off; the router
// and the ISPs forward. AddInternetAddrs puts more addresses on the
// internet host's loopback (a configuration's real-world track_ip targets,
// such as 1.1.1.1 or 2606:4700:4700::1111).
//
// Controls act in an ISP namespace: CutCarrier sets the ISP end of the WAN
// link down (the router sees NO-CARRIER), CutUpstream drops everything but
// neighbour discovery with nftables, SetLoss drops a share of the packets
// from the router with `numgen random`, and SetLatency diverts ICMP echo
// requests for the internet host to a userspace responder that answers
// after the delay (the kernel here has no netem). Restore undoes them all.
//
// Traffic helpers: TCPFlows and UDPFlows open flows from any namespace and
// report the WAN each took, Stream sends a probe every few milliseconds and
// measures the gap when traffic moves between WANs, and NS.Ping is a fast
// ICMP pinger.
package testbed
