//go:build linux

package track

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mdlayher/arp"
	"golang.org/x/net/bpf"
)

func echoReplyPacket(v6, raw bool, id, seq uint16) []byte {
	b := make([]byte, 8+8)
	b[0] = icmpv4EchoReply
	if v6 {
		b[0] = icmpv6EchoReply
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	if raw && !v6 {
		ip := make([]byte, 20, 20+len(b))
		ip[0] = 0x45
		b = append(ip, b...)
	}
	return b
}

func TestParseEchoReply(t *testing.T) {
	tests := []struct {
		name    string
		pkt     []byte
		v6, raw bool
		seq     int
		ok      bool
	}{
		{"raw v4", echoReplyPacket(false, true, 7, 3), false, true, 3, true},
		{"raw v4 other id", echoReplyPacket(false, true, 8, 3), false, true, 0, false},
		{"ping socket v4 (id rewritten by the kernel)", echoReplyPacket(false, false, 99, 2), false, false, 2, true},
		{"raw v6", echoReplyPacket(true, true, 7, 1), true, true, 1, true},
		{"v6 reply on a v4 socket", echoReplyPacket(true, false, 7, 1), false, false, 0, false},
		{"truncated", echoReplyPacket(false, true, 7, 3)[:25], false, true, 0, false},
		{"empty", nil, false, true, 0, false},
		{"bad checksum", func() []byte { b := echoReplyPacket(false, true, 7, 3); b[27] ^= 0xff; return b }(), false, true, 0, false},
		{"IHL too small", func() []byte { b := echoReplyPacket(false, true, 7, 3); b[0] = 0x41; return b }(), false, true, 0, false},
		{"echo request", func() []byte { b := echoReplyPacket(true, true, 7, 3); b[0] = icmpv6EchoRequest; return b }(), true, true, 0, false},
	}
	for _, tc := range tests {
		seq, err := parseEchoReply(tc.pkt, tc.v6, tc.raw, 7)
		if (err == nil) != tc.ok || (tc.ok && seq != tc.seq) {
			t.Errorf("%s: seq %d err %v, want seq %d ok %v", tc.name, seq, err, tc.seq, tc.ok)
		}
	}
}

func FuzzParseEchoReply(f *testing.F) {
	f.Add(echoReplyPacket(false, true, 7, 3), false, true)
	f.Add(echoReplyPacket(true, true, 7, 3), true, true)
	f.Add(echoReplyPacket(false, false, 7, 3), false, false)
	f.Add([]byte{0x4f}, false, true)
	f.Fuzz(func(t *testing.T, b []byte, v6, raw bool) {
		seq, err := parseEchoReply(b, v6, raw, 7)
		if err == nil && (seq < 0 || seq > 0xffff) {
			t.Fatalf("sequence %d", seq)
		}
	})
}

// echoErrorPacket is an ICMP error of type typ quoting our echo request
// (identifier id, sequence seq) to dst, as a raw socket reads it (IPv4
// with its IP header).
func echoErrorPacket(typ uint8, dst netip.Addr, id, seq uint16) []byte {
	req := echoReplyPacket(dst.Is6(), false, id, seq) // ICMP header + 8 bytes
	req[0] = icmpv4EchoRequest
	var quoted []byte
	if dst.Is6() {
		req[0] = icmpv6EchoRequest
		quoted = make([]byte, 40)
		quoted[0] = 0x60
		quoted[6] = 58 // ICMPv6
		a := dst.As16()
		copy(quoted[24:], a[:])
	} else {
		quoted = make([]byte, 20)
		quoted[0] = 0x45
		quoted[9] = 1 // ICMP
		a := dst.As4()
		copy(quoted[16:], a[:])
	}
	msg := append([]byte{typ, 1, 0, 0, 0, 0, 0, 0}, append(quoted, req...)...)
	if dst.Is6() {
		return msg // the kernel checks ICMPv6 checksums
	}
	binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	ip := make([]byte, 20, 20+len(msg))
	ip[0] = 0x45
	return append(ip, msg...)
}

func TestParseEchoError(t *testing.T) {
	dst4, dst6 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8::7")
	tests := []struct {
		name string
		pkt  []byte
		v6   bool
		ok   bool
		text string
	}{
		{"v4 unreachable", echoErrorPacket(icmpv4Unreachable, dst4, 7, 3), false, true, "destination unreachable (code 1)"},
		{"v4 time exceeded", echoErrorPacket(icmpv4TimeExceed, dst4, 7, 3), false, true, "time exceeded"},
		{"v4 parameter problem", echoErrorPacket(icmpv4ParamProb, dst4, 7, 3), false, true, "parameter problem"},
		{"v4 redirect", echoErrorPacket(5, dst4, 7, 3), false, false, ""},
		{"v4 other identifier", echoErrorPacket(icmpv4Unreachable, dst4, 8, 3), false, false, ""},
		{"v4 bad checksum", func() []byte { b := echoErrorPacket(icmpv4Unreachable, dst4, 7, 3); b[30] ^= 1; return b }(), false, false, ""},
		{"v4 quoting UDP", func() []byte {
			b := echoErrorPacket(icmpv4Unreachable, dst4, 7, 3)
			b[28+9] = 17
			binary.BigEndian.PutUint16(b[22:], 0)
			binary.BigEndian.PutUint16(b[22:], checksum(b[20:]))
			return b
		}(), false, false, ""},
		{"v4 quoting a reply", func() []byte {
			b := echoErrorPacket(icmpv4Unreachable, dst4, 7, 3)
			b[48] = icmpv4EchoReply
			binary.BigEndian.PutUint16(b[22:], 0)
			binary.BigEndian.PutUint16(b[22:], checksum(b[20:]))
			return b
		}(), false, false, ""},
		{"v4 truncated quote", echoErrorPacket(icmpv4Unreachable, dst4, 7, 3)[:50], false, false, ""},
		{"v6 unreachable", echoErrorPacket(icmpv6Unreachable, dst6, 7, 3), true, true, "destination unreachable (code 1)"},
		{"v6 time exceeded", echoErrorPacket(icmpv6TimeExceed, dst6, 7, 3), true, true, "time exceeded"},
		{"v6 packet too big", echoErrorPacket(2, dst6, 7, 3), true, false, ""},
		{"v6 truncated", echoErrorPacket(icmpv6Unreachable, dst6, 7, 3)[:52], true, false, ""},
		{"v6 echo reply", echoReplyPacket(true, true, 7, 3), true, false, ""},
		{"empty", nil, false, false, ""},
	}
	for _, tc := range tests {
		e, err := parseEchoError(tc.pkt, tc.v6, 7)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		want := dst4
		if tc.v6 {
			want = dst6
		}
		e.from = netip.MustParseAddr("192.0.2.1")
		if e.seq != 3 || e.dst != want || e.Error() != "ICMP "+tc.text+" from 192.0.2.1" {
			t.Errorf("%s: seq %d dst %s %q", tc.name, e.seq, e.dst, e.Error())
		}
	}
}

func FuzzParseEchoError(f *testing.F) {
	f.Add(echoErrorPacket(icmpv4Unreachable, netip.MustParseAddr("198.51.100.7"), 7, 3), false)
	f.Add(echoErrorPacket(icmpv6Unreachable, netip.MustParseAddr("2001:db8::7"), 7, 3), true)
	f.Add([]byte{0x46, 0, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		e, err := parseEchoError(b, v6, 7)
		if err == nil && (e.seq < 0 || e.seq > 0xffff || e.dst.Is6() != v6) {
			t.Fatalf("%+v", e)
		}
	})
}

// scriptedEcho is an echoer whose requests are answered (answer[seq]) or
// failed by an ICMP error after 10 ms.
type scriptedEcho struct {
	answer  []bool
	pending []int
}

var errScriptedUnreachable = errors.New("unreachable")

func (e *scriptedEcho) send(seq int) error {
	e.pending = append(e.pending, seq)
	return nil
}

func (e *scriptedEcho) recv(deadline time.Time) (int, time.Time, error) {
	if len(e.pending) == 0 {
		time.Sleep(time.Until(deadline))
		return 0, time.Now(), os.ErrDeadlineExceeded
	}
	time.Sleep(10 * time.Millisecond)
	seq := e.pending[0]
	e.pending = e.pending[1:]
	if e.answer[seq] {
		return seq, time.Now(), nil
	}
	return 0, time.Now(), &requestFailed{seq: seq, err: errScriptedUnreachable}
}

// TestEchoLoopRequestFailed checks that a request failed by an ICMP error
// is not waited for: `ping -c 3` whose requests all fail ends when the
// last error is back, 2 s + 10 ms after its start, not after the timeout.
func TestEchoLoopRequestFailed(t *testing.T) {
	tests := []struct {
		name     string
		answer   []bool
		received int
	}{
		{"all failed", []bool{false, false, false}, 0},
		{"one answered", []bool{false, true, false}, 1},
	}
	for _, tc := range tests {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			e := &scriptedEcho{answer: tc.answer}
			r := echoLoop(t.Context(), probeOp{"ping", netip.MustParseAddrPort("192.0.2.1:0")}, e,
				echoSpec{count: 3, timeout: 4 * time.Second})
			if d := time.Since(start); d != 2*time.Second+10*time.Millisecond {
				t.Errorf("%s: probe took %v, want 2.01s", tc.name, d)
			}
			if r.Sent != 3 || r.Received != tc.received || !errors.Is(r.Err, errScriptedUnreachable) {
				t.Errorf("%s: sent %d received %d err %v", tc.name, r.Sent, r.Received, r.Err)
			}
		})
	}
}

func FuzzARPReply(f *testing.F) {
	// A reply from 10.0.1.1 (Ethernet/IPv4, 28 bytes).
	f.Add([]byte{0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 1, 1, 2, 0, 0, 0, 0, 2, 10, 0, 1, 2})
	f.Add([]byte{0, 1, 8, 0, 255, 4, 0, 2})
	dst := netip.MustParseAddr("10.0.1.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		// The same verdict as mdlayher/arp's decoder, used before.
		var p arp.Packet
		want := p.UnmarshalBinary(b) == nil && p.Operation == arp.OperationReply && p.SenderIP == dst
		if got := isARPReplyFrom(b, dst); got != want {
			t.Fatalf("isARPReplyFrom(%x) = %v, mdlayher/arp says %v", b, got, want)
		}
	})
}

// TestARPRequest checks the request against mdlayher/arp's encoder.
func TestARPRequest(t *testing.T) {
	hw := [6]byte{2, 0, 0, 0, 0, 1}
	src, dst := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.1")
	p, err := arp.NewPacket(arp.OperationRequest, hw[:], src, broadcastHW, dst)
	mustOK(t, err)
	want, err := p.MarshalBinary()
	mustOK(t, err)
	if got := arpRequest(hw, src, dst); !bytes.Equal(got, want) {
		t.Errorf("request %x, want %x", got, want)
	}
}

func TestARPReply(t *testing.T) {
	reply := []byte{0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 1, 10, 0, 1, 1, 2, 0, 0, 0, 0, 2, 10, 0, 1, 2}
	if !isARPReplyFrom(reply, netip.MustParseAddr("10.0.1.1")) {
		t.Error("reply not recognised")
	}
	if isARPReplyFrom(reply, netip.MustParseAddr("10.0.1.9")) {
		t.Error("reply from another host accepted")
	}
	req := append([]byte(nil), reply...)
	req[7] = 1
	if isARPReplyFrom(req, netip.MustParseAddr("10.0.1.1")) {
		t.Error("request accepted as a reply")
	}
}

// TestEchoFilter runs the raw socket filter in x/net's BPF interpreter:
// echo replies with our identifier and ICMP errors pass, the rest (other
// identifiers, echo requests, other types) is dropped; IPv4 with and
// without IP options.
func TestEchoFilter(t *testing.T) {
	const id = 0x1234
	icmp := func(typ byte, ident uint16) []byte {
		return []byte{typ, 0, 0, 0, byte(ident >> 8), byte(ident), 0, 1}
	}
	ip4 := func(optWords int, payload []byte) []byte {
		h := make([]byte, 20+4*optWords)
		h[0] = 0x45 + byte(optWords)
		return append(h, payload...)
	}
	tests := []struct {
		name string
		v6   bool
		pkt  []byte
		pass bool
	}{
		{"v4 reply to us", false, ip4(0, icmp(icmpv4EchoReply, id)), true},
		{"v4 reply to us after IP options", false, ip4(2, icmp(icmpv4EchoReply, id)), true},
		{"v4 reply to another", false, ip4(0, icmp(icmpv4EchoReply, id+1)), false},
		{"v4 echo request", false, ip4(0, icmp(8, id)), false},
		{"v4 unreachable", false, ip4(0, icmp(icmpv4Unreachable, 0)), true},
		{"v4 time exceeded", false, ip4(1, icmp(icmpv4TimeExceed, 0)), true},
		{"v4 parameter problem", false, ip4(0, icmp(icmpv4ParamProb, 0)), true},
		{"v4 redirect", false, ip4(0, icmp(5, id)), false},
		{"v6 reply to us", true, icmp(icmpv6EchoReply, id), true},
		{"v6 reply to another", true, icmp(icmpv6EchoReply, 1), false},
		{"v6 echo request", true, icmp(128, id), false},
		{"v6 unreachable", true, icmp(icmpv6Unreachable, 0), true},
		{"v6 time exceeded", true, icmp(icmpv6TimeExceed, 0), true},
		{"v6 parameter problem", true, icmp(icmpv6ParamProb, 0), true},
		{"v6 router advertisement", true, icmp(134, id), false},
	}
	vm := map[bool]*bpf.VM{}
	for _, v6 := range []bool{false, true} {
		var prog []bpf.Instruction
		for _, ins := range echoFilter(v6, id) {
			prog = append(prog, bpf.RawInstruction{Op: ins.Code, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}.Disassemble())
		}
		m, err := bpf.NewVM(prog)
		mustOK(t, err)
		vm[v6] = m
	}
	for _, tc := range tests {
		n, err := vm[tc.v6].Run(tc.pkt)
		mustOK(t, err)
		if pass := n > 0; pass != tc.pass {
			t.Errorf("%s: kept %d bytes, want pass %v", tc.name, n, tc.pass)
		}
	}
}
