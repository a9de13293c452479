package nft

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
	"golang.org/x/sys/unix"
)

// nftables' netlink messages, encoded and decoded here rather than with
// google/nftables, which (with the mdlayher/netlink it brings) adds more
// than half a megabyte to the router's binary for the dozen message kinds
// and fourteen expressions mwan3d uses. The encodings follow google/nftables
// v0.3.0's (no echo of added rules, set ids only when set), so `nft list`
// prints what they create as the IR's String does (the kernel tests check
// it). Payloads start with struct nfgenmsg, then attributes with host-order
// headers and big-endian values.

// Constants x/sys/unix lacks (linux/netfilter/nf_tables.h).
const (
	nftaSetElemKeyEnd   = 10
	nftaSocketKey       = 1
	nftaSocketDreg      = 2
	nftaSocketLevel     = 3
	nftSocketCgroupv2   = 3
	nftaSetElemListElem = 1 // the type nft gives each element of a list
	nfAccept            = 1 // NF_ACCEPT, a verdict and a chain policy
)

// nftMsg is the netlink message type of an nf_tables message.
func nftMsg(m int) uint16 { return uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | m) }

// Set key types (nft's datatype numbers) and lengths.
type datatype struct{ magic, len uint32 }

var (
	typeIPAddr      = datatype{7, 4}
	typeIP6Addr     = datatype{8, 16}
	typeInetService = datatype{13, 2}
	typeMark        = datatype{19, 4}
	typeICMP6Type   = datatype{29, 1}
	typeInteger     = datatype{4, 4}
)

// attrWriter appends netlink attributes to b.
type attrWriter struct{ b []byte }

// newMsg starts a payload: struct nfgenmsg for family (version 0,
// resource id 0).
func newMsg(family byte) *attrWriter {
	return &attrWriter{b: append(make([]byte, 0, 128), family, unix.NFNETLINK_V0, 0, 0)}
}

func (w *attrWriter) attr(typ uint16, data []byte) {
	l := 4 + len(data)
	w.b = binary.NativeEndian.AppendUint16(w.b, uint16(l))
	w.b = binary.NativeEndian.AppendUint16(w.b, typ)
	w.b = append(w.b, data...)
	for range (l+3)&^3 - l {
		w.b = append(w.b, 0)
	}
}

// str is a NUL-terminated string.
func (w *attrWriter) str(typ uint16, s string) {
	start := w.open(typ)
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
	w.end(start)
}

func (w *attrWriter) u32(typ uint16, v uint32) { w.attr(typ, binary.BigEndian.AppendUint32(nil, v)) }

func (w *attrWriter) u64(typ uint16, v uint64) { w.attr(typ, binary.BigEndian.AppendUint64(nil, v)) }

// open starts an attribute whose value follows; end closes it.
func (w *attrWriter) open(typ uint16) int {
	start := len(w.b)
	w.b = binary.NativeEndian.AppendUint16(append(w.b, 0, 0), typ)
	return start
}

// begin starts a nested attribute.
func (w *attrWriter) begin(typ uint16) int { return w.open(typ | unix.NLA_F_NESTED) }

func (w *attrWriter) end(start int) {
	binary.NativeEndian.PutUint16(w.b[start:], uint16(len(w.b)-start))
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// value is NFTA_DATA_VALUE nested in typ, how nf_tables carries data.
func (w *attrWriter) value(typ uint16, v []byte) {
	s := w.begin(typ)
	w.attr(unix.NFTA_DATA_VALUE, v)
	w.end(s)
}

// nlVerdict is an immediate verdict: a code (NF_ACCEPT, NFT_JUMP, …) and
// the chain of a jump or goto.
type nlVerdict struct {
	code  int32
	chain string
}

func (w *attrWriter) verdict(typ uint16, v nlVerdict) {
	s := w.begin(typ)
	d := w.begin(unix.NFTA_DATA_VERDICT)
	w.u32(unix.NFTA_VERDICT_CODE, uint32(v.code))
	if v.chain != "" {
		w.str(unix.NFTA_VERDICT_CHAIN, v.chain)
	}
	w.end(d)
	w.end(s)
}

// Messages of a transaction.

func tableMsg(name string) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_TABLE_NAME, name)
	w.u32(unix.NFTA_TABLE_FLAGS, 0)
	return w.b
}

// chainMsg declares a chain (a base chain with policy accept when it has
// a hook) or, for hook nil, names one.
func chainMsg(table, name string, hook *Hook) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_CHAIN_TABLE, table)
	w.str(unix.NFTA_CHAIN_NAME, name)
	if hook != nil {
		h := w.begin(unix.NFTA_CHAIN_HOOK)
		w.u32(unix.NFTA_HOOK_HOOKNUM, hookNum(hook.Hook))
		w.u32(unix.NFTA_HOOK_PRIORITY, uint32(hook.Priority))
		w.end(h)
		w.u32(unix.NFTA_CHAIN_POLICY, nfAccept)
		w.str(unix.NFTA_CHAIN_TYPE, hook.Type)
	}
	return w.b
}

// flushChainMsg deletes every rule of a chain (a DELRULE message).
func flushChainMsg(table, chain string) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_RULE_TABLE, table)
	w.str(unix.NFTA_RULE_CHAIN, chain)
	return w.b
}

func hookNum(h string) uint32 {
	switch h {
	case "output":
		return unix.NF_INET_LOCAL_OUT
	case "postrouting":
		return unix.NF_INET_POST_ROUTING
	}
	return unix.NF_INET_PRE_ROUTING
}

// counterMsg declares (with zero values) or, for del, names a counter.
func counterMsg(table, name string, del bool) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_OBJ_TABLE, table)
	w.str(unix.NFTA_OBJ_NAME, name)
	w.u32(unix.NFTA_OBJ_TYPE, unix.NFT_OBJECT_COUNTER)
	d := w.begin(unix.NFTA_OBJ_DATA)
	if !del {
		w.u64(unix.NFTA_COUNTER_BYTES, 0)
		w.u64(unix.NFTA_COUNTER_PACKETS, 0)
	}
	w.end(d)
	return w.b
}

// nlSet is a set's declaration as nf_tables takes it.
type nlSet struct {
	name     string
	id       uint32 // transaction-local, for references before the kernel names it
	flags    uint32 // NFT_SET_*
	key      datatype
	timeout  time.Duration
	size     uint32 // the descriptor's size: elements of a constant set, or the maximum
	userdata []byte
}

// Set userdata (libnftnl's udata TLVs: type, length, value) nft reads.
const (
	udataSetKeyByteOrder  = 0
	udataSetMergeElements = 2
	udataRuleComment      = 0
	byteOrderBig          = 2
	byteOrderHost         = 1
)

func appendUdataU32(b []byte, typ byte, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(append(b, typ, 4), v)
}

func setMsg(table string, s *nlSet) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_SET_TABLE, table)
	w.str(unix.NFTA_SET_NAME, s.name)
	w.u32(unix.NFTA_SET_FLAGS, s.flags)
	w.u32(unix.NFTA_SET_KEY_TYPE, s.key.magic)
	w.u32(unix.NFTA_SET_KEY_LEN, s.key.len)
	w.u32(unix.NFTA_SET_ID, s.id)
	if s.flags&unix.NFT_SET_MAP != 0 {
		w.u32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
		w.u32(unix.NFTA_SET_DATA_LEN, 0)
	}
	if s.timeout != 0 {
		w.u64(unix.NFTA_SET_TIMEOUT, uint64(s.timeout.Milliseconds()))
	}
	if s.size > 0 {
		d := w.begin(unix.NFTA_SET_DESC)
		w.u32(unix.NFTA_SET_DESC_SIZE, s.size)
		w.end(d)
	}
	if len(s.userdata) > 0 {
		w.attr(unix.NFTA_SET_USERDATA, s.userdata)
	}
	return w.b
}

// setRefMsg names a set: DELSET deletes it, DELSETELEM empties it.
func setRefMsg(table, name string) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_SET_TABLE, table)
	w.str(unix.NFTA_SET_NAME, name)
	return w.b
}

// setElem is one element: a key (the start of a range in an interval set,
// or the end marker after it) and, in a verdict map, its verdict.
type setElem struct {
	key         []byte
	intervalEnd bool
	verdict     *nlVerdict
}

// setElemsMsg adds elements to the set name (or, before the kernel named
// an anonymous set, to the set with the transaction id).
func setElemsMsg(table, name string, id uint32, elems []setElem) []byte {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_SET_ELEM_LIST_SET, name)
	if id != 0 {
		w.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, id)
	}
	w.str(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	list := w.begin(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for _, e := range elems {
		s := w.begin(nftaSetElemListElem)
		if e.intervalEnd {
			w.u32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
		}
		w.value(unix.NFTA_SET_ELEM_KEY, e.key)
		if e.verdict != nil {
			w.verdict(unix.NFTA_SET_ELEM_DATA, *e.verdict)
		}
		w.end(s)
	}
	w.end(list)
	return w.b
}

// ruleMsg appends a rule to a chain; exprs is the NFTA_RULE_EXPRESSIONS
// content (exprWriter's).
func ruleMsg(table, chain string, exprs []byte, comment string) ([]byte, error) {
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_RULE_TABLE, table)
	w.str(unix.NFTA_RULE_CHAIN, chain)
	s := w.begin(unix.NFTA_RULE_EXPRESSIONS)
	w.b = append(w.b, exprs...)
	w.end(s)
	if comment != "" {
		if len(comment) > 254 {
			return nil, fmt.Errorf("comment of %d bytes, at most 254", len(comment))
		}
		w.attr(unix.NFTA_RULE_USERDATA, append(append([]byte{udataRuleComment, byte(len(comment) + 1)}, comment...), 0))
	}
	return w.b, nil
}

// Dump requests and their answers.

// dumpMsg is the request of a dump of family inet, filtered by table when
// tableAttr is not 0.
func dumpMsg(tableAttr uint16, table string) []byte {
	w := newMsg(unix.NFPROTO_INET)
	if tableAttr != 0 {
		w.str(tableAttr, table)
	}
	return w.b
}

// errMalformed is nlsock's, so attribute walks and message decoding report
// one kind of malformed message.
var errMalformed = nlsock.ErrMalformed

// payloadAttrs walks the attributes after struct nfgenmsg.
func payloadAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	if len(b) < 4 {
		return fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	return nlsock.ForAttrs(b[4:], fn)
}

func attrU32(v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: %d bytes for a 32-bit value", errMalformed, len(v))
	}
	return binary.BigEndian.Uint32(v), nil
}

func attrU64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %d bytes for a 64-bit value", errMalformed, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// dataValue decodes NFTA_DATA_VALUE nested in v (a copy: v lives in a
// receive buffer).
func dataValue(v []byte) ([]byte, error) {
	var out []byte
	err := nlsock.ForAttrs(v, func(typ uint16, d []byte) error {
		if typ == unix.NFTA_DATA_VALUE {
			out = append([]byte(nil), d...)
		}
		return nil
	})
	return out, err
}

// kChain is a chain as the kernel lists it.
type kChain struct {
	table, name, typ string
	hook             *uint32
	priority         int32
}

func parseChain(b []byte) (c kChain, err error) {
	err = payloadAttrs(b, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case unix.NFTA_CHAIN_TABLE:
			c.table = nlsock.CString(v)
		case unix.NFTA_CHAIN_NAME:
			c.name = nlsock.CString(v)
		case unix.NFTA_CHAIN_TYPE:
			c.typ = nlsock.CString(v)
		case unix.NFTA_CHAIN_HOOK:
			err = nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
				n, err := attrU32(v)
				switch typ {
				case unix.NFTA_HOOK_HOOKNUM:
					c.hook = &n
				case unix.NFTA_HOOK_PRIORITY:
					c.priority = int32(n)
				default:
					return nil
				}
				return err
			})
		}
		return err
	})
	return c, err
}

// kSet is a set as the kernel lists it.
type kSet struct {
	table     string
	name      string
	flags     uint32
	keyType   uint32
	timeout   time.Duration
	size      uint32
	autoMerge bool // nft's userdata
}

func parseSet(b []byte) (s kSet, err error) {
	err = payloadAttrs(b, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case unix.NFTA_SET_TABLE:
			s.table = nlsock.CString(v)
		case unix.NFTA_SET_NAME:
			s.name = nlsock.CString(v)
		case unix.NFTA_SET_FLAGS:
			s.flags, err = attrU32(v)
		case unix.NFTA_SET_KEY_TYPE:
			s.keyType, err = attrU32(v)
		case unix.NFTA_SET_TIMEOUT:
			var ms uint64
			ms, err = attrU64(v)
			s.timeout = time.Duration(ms) * time.Millisecond
		case unix.NFTA_SET_DESC:
			err = nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
				var err error
				if typ == unix.NFTA_SET_DESC_SIZE {
					s.size, err = attrU32(v)
				}
				return err
			})
		case unix.NFTA_SET_USERDATA:
			for u := v; len(u) >= 2 && len(u) >= 2+int(u[1]); u = u[2+int(u[1]):] {
				if u[0] == udataSetMergeElements && u[1] == 4 {
					s.autoMerge = binary.LittleEndian.Uint32(u[2:]) != 0
				}
			}
		}
		return err
	})
	return s, err
}

// kObj is a counter as the kernel lists it (other objects have another
// type).
type kObj struct {
	table          string
	name           string
	typ            uint32
	packets, bytes uint64
}

func parseObj(b []byte) (o kObj, err error) {
	err = payloadAttrs(b, func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case unix.NFTA_OBJ_TABLE:
			o.table = nlsock.CString(v)
		case unix.NFTA_OBJ_NAME:
			o.name = nlsock.CString(v)
		case unix.NFTA_OBJ_TYPE:
			o.typ, err = attrU32(v)
		case unix.NFTA_OBJ_DATA:
			err = nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
				var err error
				switch typ {
				case unix.NFTA_COUNTER_BYTES:
					o.bytes, err = attrU64(v)
				case unix.NFTA_COUNTER_PACKETS:
					o.packets, err = attrU64(v)
				}
				return err
			})
		}
		return err
	})
	return o, err
}

// parseTableName returns the name of a listed table.
func parseTableName(b []byte) (name string, err error) {
	err = payloadAttrs(b, func(typ uint16, v []byte) error {
		if typ == unix.NFTA_TABLE_NAME {
			name = nlsock.CString(v)
		}
		return nil
	})
	return name, err
}

// SetElement is one element of a set as the kernel lists it: a key, the
// end of a concatenated range when set, and whether it ends an interval.
type SetElement struct {
	Key, KeyEnd []byte
	IntervalEnd bool
}

// parseSetElems decodes the elements of a GETSETELEM answer.
func parseSetElems(b []byte) (out []SetElement, err error) {
	err = payloadAttrs(b, func(typ uint16, v []byte) error {
		if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			return nil
		}
		return nlsock.ForAttrs(v, func(_ uint16, v []byte) error {
			var e SetElement
			err := nlsock.ForAttrs(v, func(typ uint16, v []byte) error {
				var err error
				switch typ {
				case unix.NFTA_SET_ELEM_KEY:
					e.Key, err = dataValue(v)
				case nftaSetElemKeyEnd:
					e.KeyEnd, err = dataValue(v)
				case unix.NFTA_SET_ELEM_FLAGS:
					var f uint32
					f, err = attrU32(v)
					e.IntervalEnd = f&unix.NFT_SET_ELEM_INTERVAL_END != 0
				}
				return err
			})
			out = append(out, e)
			return err
		})
	})
	return out, err
}
