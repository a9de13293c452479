// Package blob holds the low-level libubox "blob" and "blobmsg" attribute
// layout shared by the ubus client and the ubustest broker: walking
// attributes with libubox's validity rules, checking blobmsg attributes, and
// appending attributes to a buffer.
//
// Everything on the wire is big-endian. An attribute is a 32-bit header
// (extended flag, 7-bit id, 24-bit length including the header) followed by
// its payload and zero padding up to the next multiple of four. The length
// field never counts the padding of the attribute itself; a container's
// payload is its padded children.
package blob

import (
	"encoding/binary"
	"iter"
)

const (
	// HeaderLen is the size of an attribute header.
	HeaderLen = 4
	// MaxLen is the largest value of an attribute's 24-bit length field.
	MaxLen = 0xffffff
	// extBit marks a blobmsg (named, typed) attribute.
	extBit = 0x80000000
)

// blobmsg type ids (libubox enum blobmsg_type).
const (
	TypeUnspec = 0
	TypeArray  = 1
	TypeTable  = 2
	TypeString = 3
	TypeInt64  = 4
	TypeInt32  = 5
	TypeInt16  = 6
	TypeInt8   = 7
	TypeDouble = 8
	typeLast   = TypeDouble
)

// Pad4 rounds n up to a multiple of four.
func Pad4(n int) int { return (n + 3) &^ 3 }

// Attr is a view of one attribute inside a buffer.
type Attr struct {
	ID   uint8  // id (0..127); for blobmsg attributes the blobmsg type
	Ext  bool   // extended flag: a blobmsg attribute with a name header
	Data []byte // payload, without header and padding
}

// Next decodes the attribute at the start of b with libubox's walking rules:
// at least four bytes, a length of at least four, and the padded length
// within b. It returns the attribute and the number of bytes it occupies
// (padding included).
func Next(b []byte) (Attr, int, bool) {
	if len(b) < HeaderLen {
		return Attr{}, 0, false
	}
	hdr := binary.BigEndian.Uint32(b)
	l := int(hdr & MaxLen)
	if l < HeaderLen || Pad4(l) > len(b) {
		return Attr{}, 0, false
	}
	return Attr{ID: uint8(hdr>>24) & 0x7f, Ext: hdr&extBit != 0, Data: b[HeaderLen:l]}, Pad4(l), true
}

// All iterates over the attributes of b and stops silently at the first one
// that breaks the walking rules, as libubox's blob_for_each_attr does.
func All(b []byte) iter.Seq[Attr] {
	return func(yield func(Attr) bool) {
		for {
			a, n, ok := Next(b)
			if !ok || !yield(a) {
				return
			}
			b = b[n:]
		}
	}
}

// MsgHeader splits a blobmsg attribute into its name and value payload. A
// non-extended attribute has no name and its whole payload is the value. ok
// is false when the name header does not fit or is not NUL-terminated.
func MsgHeader(a Attr) (name string, value []byte, ok bool) {
	n, value, ok := MsgSplit(a)
	return string(n), value, ok
}

// MsgSplit is MsgHeader returning the name as a slice of the attribute.
func MsgSplit(a Attr) (name, value []byte, ok bool) {
	if !a.Ext {
		return nil, a.Data, true
	}
	if len(a.Data) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(a.Data))
	hl := Pad4(2 + n + 1)
	if hl > len(a.Data) || a.Data[2+n] != 0 {
		return nil, nil, false
	}
	return a.Data[2 : 2+n], a.Data[hl:], true
}

// CheckValue reports whether value is a valid payload for blobmsg type t,
// using libubox's blob_check_type rules: integers need their exact size, a
// double at least eight bytes, a string at least one byte ending in NUL;
// unspec, tables and arrays accept any length. Types above double are
// invalid.
func CheckValue(t uint8, value []byte) bool {
	switch t {
	case TypeInt8:
		return len(value) == 1
	case TypeInt16:
		return len(value) == 2
	case TypeInt32:
		return len(value) == 4
	case TypeInt64:
		return len(value) == 8
	case TypeDouble:
		return len(value) >= 8
	case TypeString:
		return len(value) >= 1 && value[len(value)-1] == 0
	case TypeUnspec, TypeArray, TypeTable:
		return true
	}
	return false
}

// Check mirrors libubox's blobmsg_check_attr: a valid name header (a
// non-empty name when needName is set; non-extended attributes are valid
// only when no name is needed) and a valid value for the type.
func Check(a Attr, needName bool) bool {
	if !a.Ext {
		if needName {
			return false
		}
		return a.ID <= typeLast && CheckValue(a.ID, a.Data)
	}
	name, value, ok := MsgHeader(a)
	if !ok || (needName && name == "") || a.ID > typeLast {
		return false
	}
	return CheckValue(a.ID, value)
}

// Find looks up one entry of a blobmsg table payload the way libubox's
// blobmsg_parse does for a single policy entry: the walk stops at the first
// invalid attribute, non-extended attributes are skipped, an attribute of
// another type does not match, and the first match wins. It returns the
// value payload.
func Find(table []byte, name string, t uint8) ([]byte, bool) {
	for a := range All(table) {
		if !Check(a, false) {
			return nil, false
		}
		if !a.Ext || a.ID != t {
			continue
		}
		n, v, _ := MsgHeader(a)
		if n == name {
			return v, true
		}
	}
	return nil, false
}

// AppendHeader appends an attribute header.
func AppendHeader(b []byte, id uint8, ext bool, length int) []byte {
	h := uint32(id&0x7f)<<24 | uint32(length)&MaxLen
	if ext {
		h |= extBit
	}
	return binary.BigEndian.AppendUint32(b, h)
}

// Begin reserves the header of a container or leaf attribute and returns the
// buffer and the header's offset, to be completed by End.
func Begin(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

// End writes the header reserved at off (length = everything appended since)
// and pads the buffer to a multiple of four.
func End(b []byte, off int, id uint8, ext bool) []byte {
	AppendHeader(b[off:off], id, ext, len(b)-off)
	return pad(b)
}

// AppendAttr appends a plain attribute with the given payload.
func AppendAttr(b []byte, id uint8, payload []byte) []byte {
	b = AppendHeader(b, id, false, HeaderLen+len(payload))
	b = append(b, payload...)
	return pad(b)
}

// AppendU32 appends a plain attribute holding a big-endian u32.
func AppendU32(b []byte, id uint8, v uint32) []byte {
	b = AppendHeader(b, id, false, HeaderLen+4)
	return binary.BigEndian.AppendUint32(b, v)
}

// AppendU8 appends a plain attribute holding one byte.
func AppendU8(b []byte, id uint8, v uint8) []byte {
	b = AppendHeader(b, id, false, HeaderLen+1)
	return pad(append(b, v))
}

// AppendString appends a plain attribute holding s and its terminating NUL.
func AppendString(b []byte, id uint8, s string) []byte {
	b = AppendHeader(b, id, false, HeaderLen+len(s)+1)
	b = append(b, s...)
	return pad(append(b, 0))
}

// BeginMsg starts a blobmsg attribute of type t named name: it reserves the
// header and writes the padded name header. Finish it with End(b, off, t,
// true) after appending the value.
func BeginMsg(b []byte, name string) ([]byte, int) {
	b, off := Begin(b)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = append(b, 0)
	return pad(b), off
}

// AppendMsg appends a complete blobmsg attribute with a raw value payload.
func AppendMsg(b []byte, t uint8, name string, value []byte) []byte {
	b, off := BeginMsg(b, name)
	b = append(b, value...)
	l := len(b) - off
	AppendHeader(b[off:off], t, true, l)
	return pad(b)
}

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// frameHeaderLen is the ubus message header (version, type, seq, peer).
const frameHeaderLen = 8

// Frame starts a ubus frame: the 8-byte message header (version 0) and a
// reserved body header, to be completed by Finish once the body attributes
// are appended.
func Frame(typ uint8, seq uint16, peer uint32) []byte {
	return AppendFrame(make([]byte, 0, 64), typ, seq, peer)
}

// AppendFrame is Frame appending to b (normally b[:0] of a reused buffer).
func AppendFrame(b []byte, typ uint8, seq uint16, peer uint32) []byte {
	b = append(b, 0, typ, byte(seq>>8), byte(seq))
	b = binary.BigEndian.AppendUint32(b, peer)
	return append(b, 0, 0, 0, 0)
}

// Finish writes the body length of a frame started by Frame.
func Finish(f []byte) []byte {
	binary.BigEndian.PutUint32(f[frameHeaderLen:], uint32(len(f)-frameHeaderLen))
	return f
}
