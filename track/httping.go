package track

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
)

// httping without an HTTP or TLS library (net/http and crypto/tls would
// more than double the size of the binary): the probe writes one request
// on the prober's own socket and reads only as far as the first bytes of
// the answer.
//
// Plain: "HEAD / HTTP/1.1" with Host and "Connection: close"; any status
// line (1xx..9xx, like httping, which counts every HTTP response) is an
// answer.
//
// httping_ssl: a TLS ClientHello (TLS 1.3 and 1.2 offered, SNI for host
// names); a ServerHello or an alert record is an answer. It is a fair
// reachability probe: the answer comes from the TLS stack of the target,
// after a full round trip through the interface on an established TCP
// connection, which is all that httping's verdict depends on — httping
// does not verify the certificate, and any HTTP response after the
// handshake (an error status included) counts. What the shortened probe
// does not see is a server that completes handshakes but never answers
// HTTP, a fault of the server, not of the path through the WAN. It saves
// the key exchange (milliseconds of CPU per probe on a MIPS router) and
// one round trip, so the latency is connect + one round trip, as for plain
// HTTP.

// maxStatusLine bounds the bytes read for an HTTP status line.
const maxStatusLine = 1024

var errMalformedHTTP = errors.New("malformed HTTP status line")

// httpHost is the host part of the URL httping is given for target: IPv6
// literals in brackets (spec §10.22 REC).
func httpHost(target string) string {
	if a, err := netip.ParseAddr(target); err == nil && a.Is6() {
		return "[" + target + "]"
	}
	return target
}

// httpURL is the URL httping is given for target.
func httpURL(target string, ssl bool) string {
	scheme := "http://"
	if ssl {
		scheme = "https://"
	}
	return scheme + httpHost(target) + "/"
}

// httpRequest is the HEAD request for target.
func httpRequest(target string) []byte {
	return []byte("HEAD / HTTP/1.1\r\nHost: " + httpHost(target) +
		"\r\nUser-Agent: mwan3d-httping\r\nAccept: */*\r\nConnection: close\r\n\r\n")
}

// httpStatus checks the start of an HTTP response: done once the status
// line ("HTTP/x.y NNN[ reason]") is complete, an error as soon as b cannot
// start one, neither while more is needed.
func httpStatus(b []byte) (done bool, err error) {
	const prefix = "HTTP/"
	if n := min(len(b), len(prefix)); !bytes.Equal(b[:n], []byte(prefix[:n])) {
		return false, fmt.Errorf("%w %q", errMalformedHTTP, b[:min(len(b), 32)])
	}
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		if len(b) >= maxStatusLine {
			return false, fmt.Errorf("%w: longer than %d bytes", errMalformedHTTP, maxStatusLine)
		}
		return false, nil
	}
	line := bytes.TrimSuffix(b[:end], []byte("\r"))
	// HTTP/d.d SP ddd [SP reason]
	if len(line) < 12 || !isDigit(line[5]) || line[6] != '.' || !isDigit(line[7]) || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || line[9] == '0' ||
		(len(line) > 12 && line[12] != ' ') {
		return false, fmt.Errorf("%w %q", errMalformedHTTP, line[:min(len(line), 64)])
	}
	return true, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// TLS constants (RFC 8446).
const (
	tlsRecordHandshake = 22
	tlsRecordAlert     = 21
	tlsClientHello     = 1
	tlsServerHello     = 2
	tlsMaxRecord       = 1<<14 + 256 // TLSCiphertext.length bound

	extServerName          = 0
	extSupportedGroups     = 10
	extECPointFormats      = 11
	extSignatureAlgorithms = 13
	extExtendedMaster      = 23
	extSupportedVersions   = 43
	extKeyShare            = 51
	extRenegotiationInfo   = 0xff01
	groupX25519            = 0x001d
)

var errMalformedTLS = errors.New("malformed TLS answer")

// Offered to look like an ordinary client, so that any TLS server picks
// something or at least answers with an alert.
var (
	tlsCipherSuites = []uint16{
		0x1301, 0x1302, 0x1303, // TLS 1.3 AES-128-GCM, AES-256-GCM, CHACHA20
		0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, // ECDHE GCM, CHACHA20
		0xc009, 0xc013, 0xc00a, 0xc014, // ECDHE CBC
		0x009c, 0x009d, 0x002f, 0x0035, // RSA
	}
	tlsGroups     = []uint16{groupX25519, 0x0017, 0x0018} // x25519, P-256, P-384
	tlsSignatures = []uint16{
		0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0203, 0x0201,
	}
	tlsVersions = []uint16{0x0304, 0x0303, 0x0302, 0x0301}
)

// tlsHelloParams are the parts of a ClientHello that vary: the server name
// (sent only for host names, RFC 6066) and the random values (random,
// legacy session id, X25519 key share). None is secret: the handshake is
// never completed.
type tlsHelloParams struct {
	serverName string
	random     [32]byte
	sessionID  [32]byte
	keyShare   [32]byte
}

// newHelloParams returns the ClientHello parameters for a probe of target
// with fresh random values.
func newHelloParams(target string) tlsHelloParams {
	p := tlsHelloParams{serverName: target}
	for _, b := range [][]byte{p.random[:], p.sessionID[:], p.keyShare[:]} {
		for i := 0; i < len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], rand.Uint64())
		}
	}
	return p
}

// helloBuilder appends TLS vectors with length prefixes filled in later.
// Its methods are not inlined: inlined at each of their calls, the appends
// made tlsClientHelloRecord 9 KB of MIPS code instead of 1 KB.
type helloBuilder struct {
	b []byte
}

//go:noinline
func (h *helloBuilder) u8(v byte) { h.b = append(h.b, v) }

//go:noinline
func (h *helloBuilder) u16(v uint16) { h.b = append(h.b, byte(v>>8), byte(v)) }

//go:noinline
func (h *helloBuilder) raw(v []byte) { h.b = append(h.b, v...) }

// open starts a vector with a size-byte length prefix; close fills it.
//
//go:noinline
func (h *helloBuilder) open(size int) int {
	for range size {
		h.b = append(h.b, 0)
	}
	return len(h.b)
}

//go:noinline
func (h *helloBuilder) close(start, size int) {
	n := len(h.b) - start
	for i := range size {
		h.b[start-1-i] = byte(n >> (8 * i))
	}
}

func (h *helloBuilder) u16s(size int, vs []uint16) {
	s := h.open(size)
	for _, v := range vs {
		h.u16(v)
	}
	h.close(s, size)
}

// tlsClientHelloRecord renders a ClientHello in one handshake record.
func tlsClientHelloRecord(p tlsHelloParams) []byte {
	h := helloBuilder{b: make([]byte, 0, 320)}
	h.u8(tlsRecordHandshake)
	h.u16(0x0301) // record version for the first ClientHello (RFC 8446 §5.1)
	rec := h.open(2)
	h.u8(tlsClientHello)
	msg := h.open(3)
	h.u16(0x0303) // legacy_version: TLS 1.2
	h.raw(p.random[:])
	sid := h.open(1)
	h.raw(p.sessionID[:])
	h.close(sid, 1)
	h.u16s(2, tlsCipherSuites)
	h.u8(1) // compression methods: null only
	h.u8(0)
	exts := h.open(2)
	ext := func(typ uint16, body func()) {
		h.u16(typ)
		s := h.open(2)
		body()
		h.close(s, 2)
	}
	if name := p.serverName; name != "" {
		if _, err := netip.ParseAddr(name); err != nil {
			ext(extServerName, func() {
				list := h.open(2)
				h.u8(0) // host_name
				n := h.open(2)
				h.raw([]byte(name))
				h.close(n, 2)
				h.close(list, 2)
			})
		}
	}
	ext(extSupportedGroups, func() { h.u16s(2, tlsGroups) })
	ext(extECPointFormats, func() { h.u8(1); h.u8(0) })
	ext(extSignatureAlgorithms, func() { h.u16s(2, tlsSignatures) })
	ext(extExtendedMaster, func() {})
	ext(extRenegotiationInfo, func() { h.u8(0) })
	ext(extSupportedVersions, func() {
		s := h.open(1)
		for _, v := range tlsVersions {
			h.u16(v)
		}
		h.close(s, 1)
	})
	ext(extKeyShare, func() {
		list := h.open(2)
		h.u16(groupX25519)
		k := h.open(2)
		h.raw(p.keyShare[:])
		h.close(k, 2)
		h.close(list, 2)
	})
	h.close(exts, 2)
	h.close(msg, 3)
	h.close(rec, 2)
	return h.b
}

// tlsAnswer checks the start of a TLS server's answer: done once the
// first record header shows a handshake record starting with a
// ServerHello (a HelloRetryRequest is one too) or an alert, an error as
// soon as b cannot be either, neither while more is needed. It needs 6
// bytes at most.
func tlsAnswer(b []byte) (done bool, err error) {
	if len(b) >= 1 && b[0] != tlsRecordHandshake && b[0] != tlsRecordAlert {
		return false, fmt.Errorf("%w: record type %d", errMalformedTLS, b[0])
	}
	if len(b) >= 3 && (b[1] != 3 || b[2] > 4) {
		return false, fmt.Errorf("%w: record version 0x%02x%02x", errMalformedTLS, b[1], b[2])
	}
	if len(b) < 6 {
		return false, nil
	}
	n := int(b[3])<<8 | int(b[4])
	if b[0] == tlsRecordAlert {
		if n != 2 || (b[5] != 1 && b[5] != 2) {
			return false, fmt.Errorf("%w: alert record of %d bytes, level %d", errMalformedTLS, n, b[5])
		}
		return true, nil
	}
	if n < 4 || n > tlsMaxRecord || b[5] != tlsServerHello {
		return false, fmt.Errorf("%w: handshake record of %d bytes, message type %d", errMalformedTLS, n, b[5])
	}
	return true, nil
}
