// Package nlsock is a small netlink socket: requests answered by an
// acknowledgement, dumps, and multicast subscriptions, in a given network
// namespace. It frames and checks messages; their payloads are the
// caller's to encode and decode.
//
// It replaces the sockets of vishvananda/netlink and mdlayher/netlink for
// mwan3d, whose binary for routers carried several hundred kilobytes of
// those libraries (with google/nftables) for what netlink's framing
// takes, and which allocate more per request: a route write costs 9
// allocations with vishvananda's, about 50 with mdlayher's, 1 here.
package nlsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// Netlink header constants (Linux uapi values), spelled out so the
// framing builds and fuzzes on every OS.
const (
	HeaderLen = 16 // struct nlmsghdr

	typeNoop    = 1
	typeError   = 2
	typeDone    = 3
	typeOverrun = 4

	// Request flags (NLM_F_*).
	FlagRequest = 0x1
	FlagMulti   = 0x2
	FlagAck     = 0x4
	FlagDump    = 0x300 // NLM_F_ROOT | NLM_F_MATCH
	FlagReplace = 0x100
	FlagExcl    = 0x200
	FlagCreate  = 0x400
	FlagAppend  = 0x800

	flagDumpIntr = 0x10
	flagCapped   = 0x100 // in an error message: only the request's header is quoted
	flagAckTLVs  = 0x200 // in an error message: extended acknowledgement attributes follow

	errAttrMsg = 1 // NLMSGERR_ATTR_MSG
)

// ErrDumpInterrupted reports a dump the kernel marked inconsistent
// (NLM_F_DUMP_INTR): what was dumped changed while it was being read.
// The messages were all delivered; a caller wanting a consistent view
// dumps again.
var ErrDumpInterrupted = errors.New("netlink dump interrupted by a concurrent change")

// errStop ends an attribute walk early.
var errStop = errors.New("stop")

// ErrMalformed is wrapped by every framing and attribute error.
var ErrMalformed = errors.New("malformed netlink message")

var ne = binary.NativeEndian

// Message is one netlink message. Data, the payload after the header, is
// only valid until the function it was passed to returns.
type Message struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	Data  []byte
}

// appendRequest appends a request message to b.
func appendRequest(b []byte, typ, flags uint16, seq uint32, payload []byte) []byte {
	b = ne.AppendUint32(b, uint32(HeaderLen+len(payload)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, flags|FlagRequest)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // port id: the kernel fills it in
	return append(b, payload...)
}

// next splits the first message off a datagram.
func next(b []byte) (m Message, rest []byte, err error) {
	if len(b) < HeaderLen {
		return m, nil, fmt.Errorf("%w: %d bytes left for a header", ErrMalformed, len(b))
	}
	l := int(ne.Uint32(b))
	if l < HeaderLen || l > len(b) {
		return m, nil, fmt.Errorf("%w: length %d with %d bytes left", ErrMalformed, l, len(b))
	}
	m = Message{Type: ne.Uint16(b[4:]), Flags: ne.Uint16(b[6:]), Seq: ne.Uint32(b[8:]), Data: b[HeaderLen:l]}
	if a := (l + 3) &^ 3; a < len(b) {
		return m, b[a:], nil
	}
	return m, nil, nil
}

// errorOf decodes the status of an NLMSG_ERROR message (nil for an
// acknowledgement) or of an NLMSG_DONE one: a negative errno, for an
// error message followed by the request (its header only when capped) and
// extended acknowledgement attributes, whose message joins the error.
func errorOf(m Message) error {
	if len(m.Data) < 4 {
		if m.Type == typeDone {
			return nil // a dump's end without status
		}
		return fmt.Errorf("%w: error message of %d bytes", ErrMalformed, len(m.Data))
	}
	code := int32(ne.Uint32(m.Data))
	if code == 0 {
		return nil
	}
	err := error(syscall.Errno(-code))
	if code > 0 {
		err = fmt.Errorf("%w: positive error code %d", ErrMalformed, code)
	}
	if m.Type != typeError || m.Flags&flagAckTLVs == 0 || len(m.Data) < 4+HeaderLen {
		return err
	}
	attrs := m.Data[4+HeaderLen:]
	if m.Flags&flagCapped == 0 {
		l := int(ne.Uint32(m.Data[4:]))
		if l < HeaderLen || 4+(l+3)&^3 > len(m.Data) {
			return err
		}
		attrs = m.Data[4+(l+3)&^3:]
	}
	// The message attribute, if any; malformed attributes after it (or
	// instead of it) leave the error as it is.
	var msg string
	_ = ForAttrs(attrs, func(typ uint16, v []byte) error {
		if typ == errAttrMsg {
			if msg = CString(v); msg != "" {
				return errStop
			}
		}
		return nil
	})
	if msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// attrTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from a type.
const attrTypeMask = 0x3fff

// ForAttrs calls fn for each attribute (struct nlattr) of b in order,
// with the type's flag bits masked off and the payload without padding,
// and stops at fn's first error, which it returns as is. A length that
// does not fit, or bytes after the last attribute too short for a
// header, is an error wrapping the package's malformed-message error.
func ForAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: %d bytes after the last attribute", ErrMalformed, len(b))
		}
		l := int(ne.Uint16(b))
		if l < 4 || l > len(b) {
			return fmt.Errorf("%w: attribute length %d with %d bytes left", ErrMalformed, l, len(b))
		}
		if err := fn(ne.Uint16(b[2:])&attrTypeMask, b[4:l]); err != nil {
			return err
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil
}

// CString is the NUL-terminated string at the start of v (all of v
// without a NUL).
func CString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}
