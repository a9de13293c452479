package cli

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
)

// ruleMsg builds an RTM_NEWRULE payload: the header, then attributes.
func ruleMsg(family, dstLen, srcLen, table, action byte, flags uint32, attrs ...[]byte) []byte {
	b := []byte{family, dstLen, srcLen, 0, table, 0, 0, action, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[8:], flags)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// attr encodes one attribute, padded to 4 bytes.
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32attr(typ uint16, v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return attr(typ, b)
}

func TestParseRuleMsg(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		msg  []byte
		want ipRule
		err  bool
	}{
		{"local", ruleMsg(2, 0, 0, 255, ruleToTable, 0, u32attr(fraTable, 255)),
			ipRule{Action: ruleToTable, Table: 255, SuppressPL: -1}, false},
		{"iif lookup", ruleMsg(2, 0, 0, 1, ruleToTable, 0, u32attr(fraPriority, 1001), attr(fraIifName, []byte("eth1\x00")), u32attr(fraTable, 1)),
			ipRule{Priority: 1001, Iif: "eth1", Action: ruleToTable, Table: 1, SuppressPL: -1}, false},
		{"fwmark unreachable", ruleMsg(2, 0, 0, 0, ruleUnreachable, 0, u32attr(fraPriority, 3001), u32attr(fraFwmark, 0x100), u32attr(fraFwmask, 0x3f00)),
			ipRule{Priority: 3001, HasMark: true, Mark: 0x100, Mask: 0x3f00, hasMask: true, Action: ruleUnreachable, SuppressPL: -1}, false},
		{"mask before mark", ruleMsg(2, 0, 0, 0, ruleBlackhole, 0, u32attr(fraFwmask, 0x3f00), u32attr(fraFwmark, 0x3d00)),
			ipRule{HasMark: true, Mark: 0x3d00, Mask: 0x3f00, hasMask: true, Action: ruleBlackhole, SuppressPL: -1}, false},
		{"mark only", ruleMsg(2, 0, 0, 254, ruleToTable, 0, u32attr(fraFwmark, 7)),
			ipRule{HasMark: true, Mark: 7, Mask: 0xffffffff, Action: ruleToTable, Table: 254, SuppressPL: -1}, false},
		{"not from to", ruleMsg(10, 128, 48, 0, ruleProhibit, fibRuleInvert,
			attr(fraSrc, netip.MustParseAddr("2001:db8:1::").AsSlice()), attr(fraDst, netip.MustParseAddr("2001:db8::1").AsSlice()),
			attr(fraOifName, []byte("eth2\x00"))),
			ipRule{Invert: true, Src: p("2001:db8:1::/48"), Dst: p("2001:db8::1/128"), Oif: "eth2", Action: ruleProhibit, SuppressPL: -1}, false},
		{"goto and suppress", ruleMsg(2, 0, 0, 254, ruleGoto, 0, u32attr(fraGoto, 32766), u32attr(fraSuppressPrefix, 0)),
			ipRule{Action: ruleGoto, Table: 254, Goto: 32766, SuppressPL: 0}, false},
		{"suppress unset", ruleMsg(2, 0, 0, 254, ruleToTable, 0, u32attr(fraSuppressPrefix, 0xffffffff), attr(99, []byte{1, 2, 3})),
			ipRule{Action: ruleToTable, Table: 254, SuppressPL: -1}, false},
		{"short header", []byte{2, 0, 0}, ipRule{}, true},
		{"truncated attribute", append(ruleMsg(2, 0, 0, 0, 1, 0), 8, 0), ipRule{}, true},
		{"attribute too long", append(ruleMsg(2, 0, 0, 0, 1, 0), 200, 0, 6, 0, 1, 2, 3, 4), ipRule{}, true},
		{"short priority", ruleMsg(2, 0, 0, 0, 1, 0, attr(fraPriority, []byte{1})), ipRule{}, true},
		{"bad address", ruleMsg(2, 24, 0, 0, 1, 0, attr(fraDst, []byte{10, 0, 0})), ipRule{}, true},
		{"prefix too long", ruleMsg(2, 33, 0, 0, 1, 0, attr(fraDst, []byte{10, 0, 0, 0})), ipRule{}, true},
	}
	for _, tt := range tests {
		got, err := parseRuleMsg(tt.msg)
		if (err != nil) != tt.err {
			t.Errorf("%s: error %v, want error %v", tt.name, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func FuzzParseRuleMsg(f *testing.F) {
	f.Add(ruleMsg(2, 0, 0, 255, ruleToTable, 0, u32attr(fraTable, 255)))
	f.Add(ruleMsg(2, 0, 0, 0, ruleUnreachable, 0, u32attr(fraPriority, 3001), u32attr(fraFwmark, 0x100), u32attr(fraFwmask, 0x3f00)))
	f.Add(ruleMsg(10, 128, 48, 0, ruleProhibit, fibRuleInvert, attr(fraSrc, make([]byte, 16)), attr(fraIifName, []byte("eth1"))))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0, 6, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRuleMsg(b)
		if err != nil {
			return
		}
		// Whatever decodes prints.
		if out := formatRules([]ipRule{r}); out == "" {
			t.Fatal("empty rule line")
		}
	})
}

// BenchmarkParseRuleMsg decodes an mwan3 fwmark rule.
func BenchmarkParseRuleMsg(b *testing.B) {
	msg := ruleMsg(2, 0, 0, 0, ruleUnreachable, 0, u32attr(fraPriority, 3001), u32attr(fraFwmark, 0x100), u32attr(fraFwmask, 0x3f00))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseRuleMsg(msg); err != nil {
			b.Fatal(err)
		}
	}
}
