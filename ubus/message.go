package ubus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// MsgType is the type of a ubus message.
type MsgType uint8

// Message types (ubusmsg.h).
const (
	MsgHello        MsgType = 0  // ubusd → client: the client id, on connect
	MsgStatus       MsgType = 1  // final answer to a request
	MsgData         MsgType = 2  // data answer to a request
	MsgPing         MsgType = 3  // echo request
	MsgLookup       MsgType = 4  // resolve paths to objects
	MsgInvoke       MsgType = 5  // method call, event or notification delivery
	MsgAddObject    MsgType = 6  // register an object
	MsgRemoveObject MsgType = 7  // unregister an object
	MsgSubscribe    MsgType = 8  // subscribe an object to another
	MsgUnsubscribe  MsgType = 9  // cancel a subscription / target gone
	MsgNotify       MsgType = 10 // notify subscribers / subscriber change
	MsgMonitor      MsgType = 11 // mirrored traffic for monitors
)

var msgNames = [...]string{"HELLO", "STATUS", "DATA", "PING", "LOOKUP", "INVOKE", "ADD_OBJECT",
	"REMOVE_OBJECT", "SUBSCRIBE", "UNSUBSCRIBE", "NOTIFY", "MONITOR"}

// String returns the type's name as in ubusmsg.h ("INVOKE").
func (t MsgType) String() string {
	if int(t) < len(msgNames) {
		return msgNames[t]
	}
	return "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
}

// AttrID identifies an attribute of a message body.
type AttrID uint8

// Message attributes (ubusmsg.h enum ubus_msg_attr).
const (
	AttrStatus      AttrID = 1  // u32 status code
	AttrObjPath     AttrID = 2  // string
	AttrObjID       AttrID = 3  // u32
	AttrMethod      AttrID = 4  // string: method, event name or notification type
	AttrObjType     AttrID = 5  // u32 type id
	AttrSignature   AttrID = 6  // nested blobmsg: one table per method
	AttrData        AttrID = 7  // nested blobmsg table members
	AttrTarget      AttrID = 8  // u32 object id
	AttrActive      AttrID = 9  // u8
	AttrNoReply     AttrID = 10 // u8
	AttrSubscribers AttrID = 11 // nested: plain u32 attributes with id 0
	AttrUser        AttrID = 12 // string
	AttrGroup       AttrID = 13 // string
)

var attrNames = [...]string{"UNSPEC", "STATUS", "OBJPATH", "OBJID", "METHOD", "OBJTYPE", "SIGNATURE",
	"DATA", "TARGET", "ACTIVE", "NO_REPLY", "SUBSCRIBERS", "USER", "GROUP"}

// String returns the attribute's name as in ubusmsg.h ("OBJID").
func (a AttrID) String() string {
	if int(a) < len(attrNames) {
		return attrNames[a]
	}
	return "ATTR(" + strconv.Itoa(int(a)) + ")"
}

const (
	// HeaderLen is the size of the message header in front of the body.
	HeaderLen = 8
	// MaxBodyLen is ubusd's and libubus's limit on a message body
	// (UBUS_MAX_MSGLEN). Frames whose padded body is longer are refused.
	MaxBodyLen = 1 << 20
)

// Header is the fixed part of every message. Seq and Peer are carried
// big-endian.
type Header struct {
	Version uint8
	Type    MsgType
	Seq     uint16
	Peer    uint32
}

// Attr is one attribute of a message body, with its raw payload.
type Attr struct {
	ID   AttrID
	Data []byte
}

// Message is one ubus frame: a header and the attributes of its body, in
// wire order.
type Message struct {
	Header
	Attrs []Attr
}

// Errors for frames that break the framing rules.
var (
	ErrShortFrame = errors.New("ubus: frame shorter than its header")
	ErrBodyLength = errors.New("ubus: invalid body length")
	ErrTooLarge   = errors.New("ubus: message body larger than 1 MiB")
)

// bodyLen validates the body header of a frame (the 4 bytes at offset 8).
func bodyLen(h []byte) (int, error) {
	l := int(binary.BigEndian.Uint32(h) & blob.MaxLen)
	switch {
	case l < blob.HeaderLen:
		return 0, ErrBodyLength
	case blob.Pad4(l) > MaxBodyLen:
		return 0, ErrTooLarge
	}
	return l, nil
}

// UnmarshalBinary decodes one complete frame. Body attributes are read with
// libubox's rules (the walk stops silently at the first malformed one); their
// Data slices point into b.
func (m *Message) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen+blob.HeaderLen {
		return ErrShortFrame
	}
	l, err := bodyLen(b[HeaderLen:])
	if err != nil {
		return err
	}
	if len(b) != HeaderLen+l {
		return fmt.Errorf("%w: header says %d bytes, frame has %d", ErrBodyLength, l, len(b)-HeaderLen)
	}
	m.parse(b)
	return nil
}

func (m *Message) parse(b []byte) {
	m.Header = Header{
		Version: b[0],
		Type:    MsgType(b[1]),
		Seq:     binary.BigEndian.Uint16(b[2:]),
		Peer:    binary.BigEndian.Uint32(b[4:]),
	}
	m.Attrs = m.Attrs[:0]
	for a := range blob.All(b[HeaderLen+blob.HeaderLen:]) {
		m.Attrs = append(m.Attrs, Attr{ID: AttrID(a.ID), Data: a.Data})
	}
}

// ReadMessage reads one frame from r the way libubus and ubusd do: the
// header and the body's own header first, then the rest of the body. It
// refuses bodies shorter than 4 bytes or (padded) longer than 1 MiB before
// reading them.
func ReadMessage(r io.Reader) (*Message, error) {
	var h [HeaderLen + blob.HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	l, err := bodyLen(h[HeaderLen:])
	if err != nil {
		return nil, err
	}
	b := make([]byte, HeaderLen+l)
	copy(b, h[:])
	if _, err := io.ReadFull(r, b[len(h):]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	m := new(Message)
	m.parse(b)
	return m, nil
}

// AppendBinary appends the encoded frame to b.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, m.Version, byte(m.Type))
	b = binary.BigEndian.AppendUint16(b, m.Seq)
	b = binary.BigEndian.AppendUint32(b, m.Peer)
	b, off := blob.Begin(b)
	for _, a := range m.Attrs {
		if len(a.Data) > blob.MaxLen-blob.HeaderLen {
			return b[:start], fmt.Errorf("ubus: %s attribute of %d bytes is too long", a.ID, len(a.Data))
		}
		b = blob.AppendAttr(b, uint8(a.ID), a.Data)
	}
	if blob.Pad4(len(b)-off) > MaxBodyLen {
		return b[:start], ErrTooLarge
	}
	return blob.End(b, off, 0, false), nil
}

// MarshalBinary encodes the frame.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(nil)
}

// Get returns the payload of the last attribute with the given id.
func (m *Message) Get(id AttrID) ([]byte, bool) {
	for i := len(m.Attrs) - 1; i >= 0; i-- {
		if m.Attrs[i].ID == id {
			return m.Attrs[i].Data, true
		}
	}
	return nil, false
}

// GetU32 returns the last attribute with the given id whose payload is a
// 4-byte integer; other sizes count as absent, as in libubus.
func (m *Message) GetU32(id AttrID) (uint32, bool) {
	for i := len(m.Attrs) - 1; i >= 0; i-- {
		if a := m.Attrs[i]; a.ID == id && len(a.Data) == 4 {
			return binary.BigEndian.Uint32(a.Data), true
		}
	}
	return 0, false
}

// GetU8 returns the first byte of the last attribute with the given id.
func (m *Message) GetU8(id AttrID) (uint8, bool) {
	for i := len(m.Attrs) - 1; i >= 0; i-- {
		if a := m.Attrs[i]; a.ID == id && len(a.Data) >= 1 {
			return a.Data[0], true
		}
	}
	return 0, false
}

// GetString returns the last attribute with the given id that is a valid
// string (NUL-terminated), cut at its first NUL as C readers see it.
func (m *Message) GetString(id AttrID) (string, bool) {
	for i := len(m.Attrs) - 1; i >= 0; i-- {
		if a := m.Attrs[i]; a.ID == id && len(a.Data) >= 1 && a.Data[len(a.Data)-1] == 0 {
			s := a.Data[:len(a.Data)-1]
			if j := strings.IndexByte(string(s), 0); j >= 0 {
				s = s[:j]
			}
			return string(s), true
		}
	}
	return "", false
}

// GetTable decodes the last attribute with the given id (normally
// AttrData) as blobmsg table members. ok is false when it is absent.
func (m *Message) GetTable(id AttrID) (t Table, ok bool, err error) {
	d, ok := m.Get(id)
	if !ok {
		return nil, false, nil
	}
	t, err = DecodeTable(d)
	return t, true, err
}

// AddU32 appends a u32 attribute.
func (m *Message) AddU32(id AttrID, v uint32) {
	m.Attrs = append(m.Attrs, Attr{ID: id, Data: binary.BigEndian.AppendUint32(nil, v)})
}

// AddU8 appends a one-byte attribute.
func (m *Message) AddU8(id AttrID, v uint8) {
	m.Attrs = append(m.Attrs, Attr{ID: id, Data: []byte{v}})
}

// AddString appends a string attribute (with its terminating NUL).
func (m *Message) AddString(id AttrID, s string) {
	m.Attrs = append(m.Attrs, Attr{ID: id, Data: append([]byte(s), 0)})
}

// AddTable appends v encoded with [AppendTable] as a nested attribute.
func (m *Message) AddTable(id AttrID, v any) error {
	d, err := AppendTable(nil, v)
	if err != nil {
		return err
	}
	m.Attrs = append(m.Attrs, Attr{ID: id, Data: d})
	return nil
}

// String summarizes the message on one line, for logs and test failures.
func (m *Message) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s seq=%d peer=%08x", m.Type, m.Seq, m.Peer)
	for _, a := range m.Attrs {
		sb.WriteByte(' ')
		sb.WriteString(a.ID.String())
		sb.WriteByte('=')
		switch a.ID {
		case AttrStatus:
			if len(a.Data) == 4 {
				s := Status(binary.BigEndian.Uint32(a.Data))
				fmt.Fprintf(&sb, "%d(%s)", int32(s), s)
				continue
			}
		case AttrObjID, AttrObjType, AttrTarget:
			if len(a.Data) == 4 {
				fmt.Fprintf(&sb, "%08x", binary.BigEndian.Uint32(a.Data))
				continue
			}
		case AttrObjPath, AttrMethod, AttrUser, AttrGroup:
			if len(a.Data) > 0 && a.Data[len(a.Data)-1] == 0 {
				sb.WriteString(strconv.Quote(string(a.Data[:len(a.Data)-1])))
				continue
			}
		case AttrActive, AttrNoReply:
			if len(a.Data) >= 1 {
				sb.WriteString(strconv.Itoa(int(a.Data[0])))
				continue
			}
		case AttrData, AttrSignature:
			if t, err := DecodeTable(a.Data); err == nil {
				sb.WriteString(FormatJSON(t, -1))
				continue
			}
		case AttrSubscribers:
			sb.WriteByte('[')
			first := true
			for s := range blob.All(a.Data) {
				if !first {
					sb.WriteByte(',')
				}
				first = false
				if len(s.Data) == 4 {
					fmt.Fprintf(&sb, "%08x", binary.BigEndian.Uint32(s.Data))
				}
			}
			sb.WriteByte(']')
			continue
		}
		fmt.Fprintf(&sb, "%x", a.Data)
	}
	return sb.String()
}
