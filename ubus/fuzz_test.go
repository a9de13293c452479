package ubus

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
)

// addVectorSeeds adds every recorded frame below 4 KiB, or with body set
// every DATA payload, as fuzz seeds.
func addVectorSeeds(f *testing.F, body bool) {
	names, err := vectors.Names()
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		v, err := vectors.Load(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, fr := range v.Frames {
			if fr.HexTruncated {
				continue
			}
			b, err := fr.Bytes()
			if err != nil {
				f.Fatal(err)
			}
			if !body {
				f.Add(b)
				continue
			}
			var m Message
			if m.UnmarshalBinary(b) == nil {
				if d, ok := m.Get(AttrData); ok {
					f.Add(d)
				}
			}
		}
	}
}

// FuzzDecode feeds arbitrary frames to the message decoder. Property: no
// panic; an accepted frame re-encodes to a frame that decodes to the same
// message, and its DATA decodes, if at all, to a table that round-trips.
func FuzzDecode(f *testing.F) {
	addVectorSeeds(f, false)
	f.Add([]byte{0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})       // body length 0
	f.Add([]byte{0, 4, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0x04}) // body over 1 MiB
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			if _, err := ReadMessage(bytes.NewReader(b)); err == nil && len(b) >= HeaderLen+4 && len(b) == HeaderLen+bodyLenOf(b) {
				t.Fatal("ReadMessage accepted what UnmarshalBinary refused")
			}
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var m2 Message
		if err := m2.UnmarshalBinary(out); err != nil {
			t.Fatal(err)
		}
		if m.Header != m2.Header || !reflect.DeepEqual(m.Attrs, m2.Attrs) && (len(m.Attrs) != 0 || len(m2.Attrs) != 0) {
			t.Fatalf("re-decoded %v, want %v", &m2, &m)
		}
		_ = m.String()
		if d, ok := m.Get(AttrData); ok {
			checkTableRoundTrip(t, d)
		}
	})
}

func bodyLenOf(b []byte) int {
	return int(b[9])<<16 | int(b[10])<<8 | int(b[11])
}

// FuzzDecodeTable feeds arbitrary blobmsg payloads to DecodeTable.
func FuzzDecodeTable(f *testing.F) {
	addVectorSeeds(f, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkTableRoundTrip(t, b)
	})
}

func checkTableRoundTrip(t *testing.T, b []byte) {
	tb, err := DecodeTable(b)
	if err != nil {
		return
	}
	out, err := AppendTable(nil, tb)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	tb2, err := DecodeTable(out)
	if err != nil {
		t.Fatalf("decode of re-encoded table: %v", err)
	}
	if FormatJSON(tb, 0) != FormatJSON(tb2, 0) || !sameTypes(tb, tb2) {
		t.Fatalf("round trip changed the table: %v → %v", tb, tb2)
	}
	out2, _ := AppendTable(nil, tb2)
	if !bytes.Equal(out, out2) {
		t.Fatal("encoding is not stable")
	}
	if _, err := tb.MarshalJSON(); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseJSON feeds arbitrary text to ParseJSON. Property: no panic; an
// accepted object encodes, decodes and prints the same.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[true,null,2.5,"x"],"c":{"d":-3000000000}}`, `{"u":"\ud83d\ude00"}`,
		`{"str":"x","big":18446744073709551615,"dbl":2.0,"exp":1e3,"dup":1,"dup":2}`, `[1]`, `{bad`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := ParseJSON(b)
		if err != nil {
			return
		}
		enc, err := AppendTable(nil, tb)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		dec, err := DecodeTable(enc)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if FormatJSON(tb, -1) != FormatJSON(dec, -1) {
			t.Fatalf("%s printed as %s after a round trip", FormatJSON(tb, -1), FormatJSON(dec, -1))
		}
	})
}
