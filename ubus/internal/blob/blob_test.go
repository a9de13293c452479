package blob

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWalk(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		n    int // attributes walked
	}{
		{"empty", "", 0},
		{"two", "03000008000000010400000a6d65746800000000", 2},
		{"stops at short length", "0300000800000001" + "00000002", 1},
		{"stops when padding is missing", "0300000800000001" + "04000006abcd", 1},
		{"stops at truncated header", "0300000800000001" + "0400", 1},
		{"zero-length attribute", "00000004", 1},
	}
	for _, tc := range tests {
		n := 0
		for range All(mustHex(t, tc.hex)) {
			n++
		}
		if n != tc.n {
			t.Errorf("%s: walked %d attributes, want %d", tc.name, n, tc.n)
		}
	}
}

func TestFindLikeBlobmsgParse(t *testing.T) {
	var table []byte
	table = AppendMsg(table, TypeInt32, "pattern", []byte{0, 0, 0, 3}) // wrong type: skipped
	table = AppendMsg(table, TypeString, "pattern", []byte("first\x00"))
	table = AppendMsg(table, TypeString, "pattern", []byte("second\x00")) // first match wins
	table = AppendAttr(table, TypeString, []byte("plain\x00"))            // not extended: skipped
	table = AppendMsg(table, TypeInt32, "object", []byte{0, 0, 4, 0})
	if v, ok := Find(table, "pattern", TypeString); !ok || string(v) != "first\x00" {
		t.Errorf("pattern = %q %v", v, ok)
	}
	if v, ok := Find(table, "object", TypeInt32); !ok || !bytes.Equal(v, []byte{0, 0, 4, 0}) {
		t.Errorf("object = %x %v", v, ok)
	}
	if _, ok := Find(table, "object", TypeString); ok {
		t.Error("type mismatch found")
	}
	// An invalid attribute ends the parse: later entries are not seen.
	bad := AppendMsg(nil, TypeInt32, "x", []byte{1, 2}) // int32 of 2 bytes
	bad = AppendMsg(bad, TypeInt32, "object", []byte{0, 0, 4, 0})
	if _, ok := Find(bad, "object", TypeInt32); ok {
		t.Error("entry after an invalid attribute found")
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		attr     []byte
		needName bool
		ok       bool
	}{
		{AppendMsg(nil, TypeString, "n", []byte("v\x00")), true, true},
		{AppendMsg(nil, TypeString, "", []byte("v\x00")), true, false}, // a name is needed
		{AppendMsg(nil, TypeString, "", []byte("v\x00")), false, true},
		{AppendMsg(nil, TypeString, "n", []byte("v")), false, false}, // no NUL
		{AppendMsg(nil, TypeInt8, "n", []byte{1, 2}), false, false},
		{AppendMsg(nil, TypeDouble, "n", make([]byte, 12)), false, true}, // libubox: at least 8
		{AppendMsg(nil, 9, "n", nil), false, false},
		{AppendMsg(nil, TypeTable, "n", []byte{1, 2, 3}), false, true}, // children not checked
		{AppendAttr(nil, TypeInt32, []byte{0, 0, 0, 1}), false, true},
		{AppendAttr(nil, TypeInt32, []byte{0, 0, 0, 1}), true, false},
		{mustHex(t, "8300000a000561000000000000"), false, false}, // name runs past the attribute
	}
	for i, tc := range tests {
		a, _, ok := Next(tc.attr)
		if !ok {
			t.Fatalf("%d: not an attribute: %x", i, tc.attr)
		}
		if Check(a, tc.needName) != tc.ok {
			t.Errorf("%d: Check(%x, %v) = %v", i, tc.attr, tc.needName, !tc.ok)
		}
	}
}

func TestAppendLayout(t *testing.T) {
	// The worked example of the protocol specification, §4.2.
	b := AppendMsg(nil, TypeString, "string", []byte("hello\x00"))
	if got, want := hex.EncodeToString(b), "8300001600067374"+"72696e670000000068656c6c6f000000"; got != want {
		t.Errorf("string attribute %s, want %s", got, want)
	}
	b, off := BeginMsg(nil, "table")
	b = AppendMsg(b, TypeInt32, "a", []byte{0, 0, 0, 1})
	b = End(b, off, TypeTable, true)
	if got, want := hex.EncodeToString(b), "8200001800057461626c6500"+"8500000c0001610000000001"; got != want {
		t.Errorf("table attribute %s, want %s", got, want)
	}
	f := Finish(AppendU32(Frame(5, 2, 0x34566dad), 3, 0x34566dad))
	if got, want := hex.EncodeToString(f), "0005000234566dad0000000c0300000834566dad"; got != want {
		t.Errorf("frame %s, want %s", got, want)
	}
}
