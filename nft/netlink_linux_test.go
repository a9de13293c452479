//go:build linux

package nft

import (
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMessageRoundTrip decodes what the encoders produce.
func TestMessageRoundTrip(t *testing.T) {
	if name, err := parseTableName(tableMsg("mwan3")); err != nil || name != "mwan3" {
		t.Errorf("table: %q %v", name, err)
	}
	hook := &Hook{Type: "route", Hook: "output", Priority: -150}
	ch, err := parseChain(chainMsg("mwan3", "mwan3_output", hook))
	if err != nil || ch.table != "mwan3" || ch.name != "mwan3_output" || ch.typ != "route" || ch.hook == nil ||
		*ch.hook != unix.NF_INET_LOCAL_OUT || ch.priority != -150 || !sameHook(ch, &Chain{Hook: hook}) {
		t.Errorf("base chain: %+v %v", ch, err)
	}
	if ch, err := parseChain(chainMsg("mwan3", "plain", nil)); err != nil || ch.hook != nil || sameHook(ch, &Chain{Hook: hook}) {
		t.Errorf("regular chain: %+v %v", ch, err)
	}
	for _, s := range []*Set{
		{Name: "sticky", Key: KeyIPv4, Dynamic: true, Timeout: 600 * time.Second, Size: 65535},
		{Name: "conn", Key: KeyIPv6, Interval: true, AutoMerge: true},
		{Name: "marks", Key: KeyMark, Verdicts: true},
	} {
		ks, err := parseSet(setMsg("mwan3", translateSet(s, 3)))
		if err != nil || ks.table != "mwan3" || ks.name != s.Name || !compatible(ks, s) {
			t.Errorf("set %s: %+v %v", s.Name, ks, err)
		}
	}
	o, err := parseObj(counterMsg("mwan3", "rule_x", false))
	if err != nil || o.table != "mwan3" || o.name != "rule_x" || o.typ != unix.NFT_OBJECT_COUNTER {
		t.Errorf("counter: %+v %v", o, err)
	}
	w := newMsg(unix.NFPROTO_INET)
	w.str(unix.NFTA_OBJ_NAME, "c")
	w.u32(unix.NFTA_OBJ_TYPE, unix.NFT_OBJECT_COUNTER)
	d := w.begin(unix.NFTA_OBJ_DATA)
	w.u64(unix.NFTA_COUNTER_BYTES, 1500)
	w.u64(unix.NFTA_COUNTER_PACKETS, 3)
	w.end(d)
	if o, err := parseObj(w.b); err != nil || o.packets != 3 || o.bytes != 1500 {
		t.Errorf("counter values: %+v %v", o, err)
	}
	elems := []setElem{{key: []byte{0, 0, 0, 0}, intervalEnd: true}, {key: []byte{10, 0, 0, 0}, verdict: &nlVerdict{code: unix.NFT_GOTO, chain: "x"}}}
	got, err := parseSetElems(setElemsMsg("mwan3", "s", 0, elems))
	want := []SetElement{{Key: []byte{0, 0, 0, 0}, IntervalEnd: true}, {Key: []byte{10, 0, 0, 0}}}
	if err != nil || !slices.EqualFunc(got, want, func(a, b SetElement) bool {
		return string(a.Key) == string(b.Key) && a.IntervalEnd == b.IntervalEnd && a.KeyEnd == nil
	}) {
		t.Errorf("elements: %+v %v", got, err)
	}
}

func TestRuleComment(t *testing.T) {
	if _, err := ruleMsg("t", "c", nil, string(make([]byte, 255))); err == nil {
		t.Error("a 255-byte comment was accepted")
	}
	b, err := ruleMsg("t", "c", nil, "rule https")
	if err != nil {
		t.Fatal(err)
	}
	var udata []byte
	_ = payloadAttrs(b, func(typ uint16, v []byte) error {
		if typ == unix.NFTA_RULE_USERDATA {
			udata = v
		}
		return nil
	})
	if string(udata) != "\x00\x0brule https\x00" {
		t.Errorf("userdata %q", udata)
	}
}

// FuzzParseNftMsgs feeds every decoder arbitrary payloads: errors must
// wrap errMalformed, nothing may panic.
func FuzzParseNftMsgs(f *testing.F) {
	f.Add(chainMsg("mwan3", "c", &Hook{Type: "filter", Hook: "prerouting", Priority: -150}))
	f.Add(setMsg("mwan3", translateSet(&Set{Name: "s", Key: KeyIPv4, Interval: true, AutoMerge: true, Size: 4}, 1)))
	f.Add(counterMsg("mwan3", "x", false))
	f.Add(setElemsMsg("mwan3", "s", 2, []setElem{{key: []byte{1, 2, 3, 4}, intervalEnd: true}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(err error) {
			if err != nil && !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
		}
		_, err := parseTableName(b)
		check(err)
		_, err = parseChain(b)
		check(err)
		_, err = parseSet(b)
		check(err)
		_, err = parseObj(b)
		check(err)
		_, err = parseSetElems(b)
		check(err)
	})
}
