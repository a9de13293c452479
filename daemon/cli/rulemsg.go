package cli

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mwan3d/mwan3d/rtsync/nlsock"
)

// The rules are decoded here from the kernel's RTM_NEWRULE messages: a
// struct fib_rule_hdr, then FRA_* attributes, in host byte order
// (rtnetlink's Go bindings do not report a rule's action, blackhole,
// unreachable, …, which `ip rule` prints).

// fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action
// (u8 each), flags (u32).
const fibRuleHdrLen = 12

// FRA_* attribute types used by ip rule show.
const (
	fraDst            = 1
	fraSrc            = 2
	fraIifName        = 3
	fraGoto           = 4
	fraPriority       = 6
	fraFwmark         = 10
	fraSuppressPrefix = 14
	fraTable          = 15
	fraFwmask         = 16
	fraOifName        = 17
)

// fibRuleInvert is FIB_RULE_INVERT.
const fibRuleInvert = 0x2

// parseRuleMsg decodes the payload of an RTM_NEWRULE message.
func parseRuleMsg(b []byte) (ipRule, error) {
	var r ipRule
	if len(b) < fibRuleHdrLen {
		return r, fmt.Errorf("rule message of %d bytes, shorter than its header", len(b))
	}
	n, dstLen, srcLen := addrLen(b[0]), int(b[1]), int(b[2])
	r.Table, r.Action = int(b[4]), int(b[7])
	r.Invert = binary.NativeEndian.Uint32(b[8:12])&fibRuleInvert != 0
	r.SuppressPL = -1
	prefix := func(v []byte, bits int) (netip.Prefix, error) {
		a, err := attrAddr(v, n)
		if err == nil && bits > n*8 {
			err = fmt.Errorf("prefix length %d", bits)
		}
		return netip.PrefixFrom(a, bits), err
	}
	err := nlsock.ForAttrs(b[fibRuleHdrLen:], func(typ uint16, v []byte) error {
		var err error
		switch typ {
		case fraDst:
			r.Dst, err = prefix(v, dstLen)
		case fraSrc:
			r.Src, err = prefix(v, srcLen)
		case fraIifName:
			r.Iif = nlsock.CString(v)
		case fraOifName:
			r.Oif = nlsock.CString(v)
		case fraGoto:
			r.Goto, err = attrInt(v)
		case fraPriority:
			r.Priority, err = attrInt(v)
		case fraFwmark:
			r.Mark, err = attrU32(v)
			r.HasMark = true
			if !r.hasMask {
				r.Mask = 0xffffffff
			}
		case fraFwmask:
			r.Mask, err = attrU32(v)
			r.HasMark, r.hasMask = true, true
		case fraSuppressPrefix:
			var n uint32
			if n, err = attrU32(v); err == nil && n != 0xffffffff {
				r.SuppressPL = int(n)
			}
		case fraTable:
			r.Table, err = attrInt(v)
		}
		return err
	})
	return r, err
}
