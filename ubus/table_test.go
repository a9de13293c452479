package ubus

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestAppendTableTypes(t *testing.T) {
	type named string
	tests := []struct {
		v    any
		typ  Type
		want any // decoded value
	}{
		{nil, TypeUnspec, nil},
		{(*int)(nil), TypeUnspec, nil},
		{true, TypeInt8, int8(1)},
		{false, TypeInt8, int8(0)},
		{int8(-3), TypeInt8, int8(-3)},
		{uint8(200), TypeInt8, int8(-56)},
		{int16(-2), TypeInt16, int16(-2)},
		{uint16(65535), TypeInt16, int16(-1)},
		{int32(42), TypeInt32, int32(42)},
		{uint32(0xc9c3c4cb), TypeInt32, int32(-909916981)},
		{int64(1), TypeInt64, int64(1)},
		{uint64(math.MaxUint64), TypeInt64, int64(-1)},
		{1, TypeInt32, int32(1)},
		{int(math.MaxInt32), TypeInt32, int32(math.MaxInt32)},
		{int(math.MinInt32), TypeInt32, int32(math.MinInt32)},
		{uint(math.MaxInt32) + 1, TypeInt64, int64(math.MaxInt32) + 1},
		{uint(3), TypeInt32, int32(3)},
		{uint(math.MaxUint32), TypeInt64, int64(math.MaxUint32)},
		{3.25, TypeDouble, 3.25},
		{float32(0.5), TypeDouble, 0.5},
		{json.Number("7"), TypeInt32, int32(7)},
		{json.Number("3000000000"), TypeInt64, int64(3000000000)},
		{json.Number("2.0"), TypeDouble, 2.0},
		{"s", TypeString, "s"},
		{named("n"), TypeString, "n"},
		{netip.MustParseAddr("192.0.2.1"), TypeString, "192.0.2.1"},
		{Table{{"a", 1}}, TypeTable, Table{{"a", int32(1)}}},
		{map[string]int{"b": 2, "a": 1}, TypeTable, Table{{"a", int32(1)}, {"b", int32(2)}}},
		{[]any{1, "x", Field{"n", true}}, TypeArray, []any{int32(1), "x", Field{"n", int8(1)}}},
		{[]string{"a", "b"}, TypeArray, []any{"a", "b"}},
		{[2]bool{true, false}, TypeArray, []any{int8(1), int8(0)}},
		{[]int(nil), TypeArray, []any{}},
	}
	if strconv.IntSize == 64 {
		big := int64(math.MaxInt32) + 1
		tests = append(tests, struct {
			v    any
			typ  Type
			want any
		}{int(big), TypeInt64, big}, struct {
			v    any
			typ  Type
			want any
		}{int(-big - 1), TypeInt64, -big - 1})
	}
	for _, tc := range tests {
		b, err := AppendTable(nil, Table{{"v", tc.v}})
		if err != nil {
			t.Errorf("%#v: %v", tc.v, err)
			continue
		}
		got, err := DecodeTable(b)
		if err != nil {
			t.Errorf("%#v: decode: %v", tc.v, err)
			continue
		}
		if valueType(got[0].Value) != tc.typ || !reflect.DeepEqual(got[0].Value, tc.want) {
			t.Errorf("%#v encoded as %s %#v, want %s %#v", tc.v, valueType(got[0].Value), got[0].Value, tc.typ, tc.want)
		}
	}
}

type embedded struct {
	Kind string `ubus:"kind"`
}

type status struct {
	embedded
	Up      bool           `ubus:"up"`
	Uptime  int            `ubus:"uptime,omitempty"`
	Metric  uint32         `ubus:"metric"`
	Device  string         `ubus:"l3_device"`
	Addr    netip.Addr     `ubus:"address"`
	Routes  []route        `ubus:"route"`
	Extra   map[string]any `ubus:"data"`
	Skip    string         `ubus:"-"`
	private int
	Plain   *int
}

type route struct {
	Target string `ubus:"target"`
	Mask   int8   `ubus:"mask"`
}

func TestStructRoundTrip(t *testing.T) {
	in := status{
		embedded: embedded{Kind: "wan"},
		Up:       true,
		Metric:   0xfffffff0,
		Device:   "eth1",
		Addr:     netip.MustParseAddr("2001:db8::1"),
		Routes:   []route{{"0.0.0.0", 0}, {"10.0.0.0", 8}},
		Extra:    map[string]any{"x": "y"},
		Skip:     "no",
		private:  1,
	}
	b, err := AppendTable(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := DecodeTable(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"wan","up":true,"metric":-16,"l3_device":"eth1","address":"2001:db8::1",` +
		`"route":[{"target":"0.0.0.0","mask":false},{"target":"10.0.0.0","mask":true}],"data":{"x":"y"},"Plain":null}`
	if got := tb.String(); got != want {
		t.Errorf("encoded as\n%s\nwant\n%s", got, want)
	}
	var out status
	if err := tb.Decode(&out); err != nil {
		t.Fatal(err)
	}
	in.Skip, in.private = "", 0
	if !reflect.DeepEqual(in, out) {
		t.Errorf("decoded %+v\nwant %+v", out, in)
	}
	// Encoding the same struct through a pointer, a Table or a map gives the same bytes.
	b2, err := AppendTable(nil, &in)
	if err != nil || !bytes.Equal(b, b2) {
		t.Errorf("pointer encoding differs: %v", err)
	}
}

func TestDecodeLenient(t *testing.T) {
	tb := Table{
		{"id", int32(-909880245)},
		{"big", int64(3000000000)},
		{"flag", int32(1)},
		{"f", int32(2)},
		{"s", "x"},
		{"dup", "first"},
		{"dup", "second"},
	}
	var out struct {
		ID   uint32  `ubus:"id"`
		Big  uint32  `ubus:"big"`
		Flag bool    `ubus:"flag"`
		F    float64 `ubus:"f"`
		Dup  string  `ubus:"dup"`
		Any  any     `ubus:"s"`
	}
	if err := tb.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.ID != 0xc9c4544b || out.Big != 3000000000 || !out.Flag || out.F != 2 || out.Dup != "first" || out.Any != "x" {
		t.Errorf("decoded %+v", out)
	}
	if id, ok := tb.GetUint32("id"); !ok || id != 0xc9c4544b {
		t.Errorf("GetUint32 = %x %v", id, ok)
	}
	if b, ok := tb.GetBool("flag"); !ok || !b {
		t.Error("GetBool")
	}
	var bad struct {
		S int8 `ubus:"s"`
	}
	if err := tb.Decode(&bad); err == nil || !strings.Contains(err.Error(), `field s`) {
		t.Errorf("string into int8: %v", err)
	}
	var small struct {
		Big int16 `ubus:"big"`
	}
	if err := tb.Decode(&small); err == nil {
		t.Error("overflow accepted")
	}
	m := tb.Map()
	if m["dup"] != "first" || len(m) != 6 {
		t.Errorf("Map = %v", m)
	}
}

func TestAppendTableErrors(t *testing.T) {
	deep := any(Table{})
	for range maxDepth + 1 {
		deep = Table{{"a", deep}}
	}
	for _, v := range []any{
		42,
		"str",
		map[int]string{1: "a"},
		Table{{"b", []byte{1}}},
		Table{{"c", make(chan int)}},
		Table{{"f", Field{"x", 1}}},
		Table{{strings.Repeat("n", 70000), 1}},
		deep,
	} {
		if _, err := AppendTable(nil, v); err == nil {
			t.Errorf("%T accepted", v)
		}
	}
}

func TestDecodeTableErrors(t *testing.T) {
	for _, h := range []string{
		"85000010000161000000002a00",     // trailing byte
		"8500000c00016100",               // length past the end
		"0500000c0000000000000001",       // not extended
		"8900000c0000000000000001",       // unknown type 9
		"8500000d000161000000002a000000", // int32 of 5 bytes
		"8300000c0001610061626364",       // string without NUL
		"8000000c0001610001020304",       // unspec with payload
		"8500000c0005610000000001",       // name longer than the attribute
		"85000003",                       // length below 4
	} {
		b, _ := hex.DecodeString(h)
		if _, err := DecodeTable(b); err == nil {
			t.Errorf("%s accepted", h)
		}
	}
	// 10 000 nested arrays: refused with an error, not a crash.
	var b []byte
	for range 10000 {
		b = append(b, 0x81, 0, 0, 0, 0, 0, 0, 0)
	}
	for i := range 10000 {
		l := (10000 - i) * 8
		b[i*8+1], b[i*8+2], b[i*8+3] = byte(l>>16), byte(l>>8), byte(l)
	}
	if _, err := DecodeTable(b); !errors.Is(err, errTooDeep) {
		t.Errorf("deep nesting: %v", err)
	}
}
