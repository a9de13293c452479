package ubus

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
)

// cliRun is one recorded run of the ubus CLI.
type cliRun struct {
	v      *vectors.File
	conn   *vectors.Conn
	step   *vectors.Step
	simple bool
	cmd    string
	args   []string
}

func cliRuns(t *testing.T) []cliRun {
	t.Helper()
	names, err := vectors.Names()
	if err != nil {
		t.Fatal(err)
	}
	var runs []cliRun
	for _, name := range names {
		v, err := vectors.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v.Connections {
			c := &v.Connections[i]
			words := vectors.Args(c.Command)
			if len(words) == 0 || words[0] != "ubus" {
				continue
			}
			r := cliRun{v: v, conn: c, step: v.Step(c.Label)}
			for j := 1; j < len(words); j++ {
				switch words[j] {
				case "-s", "-t":
					j++
				case "-S":
					r.simple = true
				case "-v":
				default:
					r.cmd, r.args = words[j], words[j+1:]
					j = len(words)
				}
			}
			runs = append(runs, r)
		}
	}
	return runs
}

func (r cliRun) messages(t *testing.T, dir string) []*Message {
	t.Helper()
	var out []*Message
	for _, f := range r.v.FramesOf(r.conn.Conn) {
		if f.Dir != dir {
			continue
		}
		b, err := f.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m := new(Message)
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestCLIFormatting checks the JSON conversion against every recorded run
// of the ubus CLI: the JSON argument of `call` and `send` parsed with
// ParseJSON and encoded must give the bytes the CLI sent, and FormatJSON
// must reproduce what the CLI printed for replies, events and
// notifications.
func TestCLIFormatting(t *testing.T) {
	checked := 0
	for _, r := range cliRuns(t) {
		name := r.v.Scenario + "/" + r.conn.Label
		sent := r.messages(t, vectors.ToBus)
		recv := r.messages(t, vectors.FromBus)
		var stdout strings.Builder
		switch r.cmd {
		case "call":
			var invoke *Message
			for _, m := range sent {
				if m.Type == MsgInvoke {
					invoke = m
				}
			}
			var args Table
			if len(r.args) == 3 {
				var err error
				args, err = ParseJSON([]byte(r.args[2]))
				if err != nil {
					if *r.step.ExitCode != 244 || invoke != nil {
						t.Errorf("%s: %v", name, err)
					}
					continue
				}
			}
			if invoke == nil {
				continue
			}
			checkEncoded(t, name, invoke, args)
			for _, m := range recv {
				if m.Type == MsgData && m.Seq == invoke.Seq {
					data, _, err := m.GetTable(AttrData)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					indent := 0
					if r.simple {
						indent = -1
					}
					stdout.WriteString(FormatJSON(data, indent) + "\n")
				}
			}
		case "listen", "subscribe":
			for _, m := range recv {
				if m.Type != MsgInvoke {
					continue
				}
				method, _ := m.GetString(AttrMethod)
				data, _, err := m.GetTable(AttrData)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				stdout.WriteString(`{ "` + method + `": ` + FormatJSON(data, -1) + " }\n")
			}
		case "send":
			data := Table{}
			if len(r.args) == 2 {
				var err error
				if data, err = ParseJSON([]byte(r.args[1])); err != nil {
					if *r.step.ExitCode != 12 || len(sent) != 0 {
						t.Errorf("%s: %v", name, err)
					}
					continue
				}
			}
			checkEncoded(t, name, sent[0], Table{{"id", r.args[0]}, {"data", data}})
		default:
			continue
		}
		if r.step.Stdout != stdout.String() {
			t.Errorf("%s: printed\n%s\nwant\n%s", name, stdout.String(), r.step.Stdout)
		}
		checked++
	}
	if checked < 30 {
		t.Errorf("only %d CLI runs checked", checked)
	}
	t.Logf("%d CLI runs checked", checked)
}

func checkEncoded(t *testing.T, name string, m *Message, args Table) {
	t.Helper()
	want, _ := m.Get(AttrData)
	got, err := AppendTable(nil, args)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: arguments encoded as\n%x\nthe CLI sent\n%x", name, got, want)
	}
}

func TestParseJSONTyping(t *testing.T) {
	tests := []struct {
		in   string
		want Table
	}{
		{`{}`, Table{}},
		{`{"a":1,"b":-2147483648,"c":2147483648,"d":-2147483649}`,
			Table{{"a", int32(1)}, {"b", int32(math.MinInt32)}, {"c", int64(2147483648)}, {"d", int64(-2147483649)}}},
		{`{"big":18446744073709551615,"small":-9223372036854775809}`,
			Table{{"big", int64(math.MaxInt64)}, {"small", int64(math.MinInt64)}}},
		{`{"d":2.0,"e":1e3,"f":-0.5E-1}`, Table{{"d", 2.0}, {"e", 1000.0}, {"f", -0.05}}},
		{`{"t":true,"f":false,"n":null}`, Table{{"t", true}, {"f", false}, {"n", nil}}},
		{`{"dup":1,"x":"y","dup":"two"}`, Table{{"dup", "two"}, {"x", "y"}}},
		{` {"s":"\u00e9\ud83d\ude00\n\"\\\/"} `, Table{{"s", "é😀\n\"\\/"}}},
		{`{"a":[1,[],{"k":[null]}]}`, Table{{"a", []any{int32(1), []any{}, Table{{"k", []any{nil}}}}}}},
	}
	for _, tc := range tests {
		got, err := ParseJSON([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseJSON(%s): %v", tc.in, err)
			continue
		}
		if FormatJSON(got, -1) != FormatJSON(tc.want, -1) || !sameTypes(got, tc.want) {
			t.Errorf("ParseJSON(%s) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{``, `[1]`, `"s"`, `{bad`, `{"a":1`, `{"a":1}x`, `{"a":01.}`, `{"a":tru}`,
		`{"a":"` + "\x01" + `"}`, strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%q) accepted", bad)
		}
	}
	if _, err := ParseJSON([]byte(strings.Repeat(`{"a":`, 32) + "1" + strings.Repeat("}", 32))); err != nil {
		t.Errorf("32 levels refused: %v", err)
	}
}

func sameTypes(a, b any) bool {
	switch a := a.(type) {
	case Table:
		bt, ok := b.(Table)
		if !ok || len(a) != len(bt) {
			return false
		}
		for i := range a {
			if a[i].Name != bt[i].Name || !sameTypes(a[i].Value, bt[i].Value) {
				return false
			}
		}
		return true
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return false
		}
		for i := range a {
			if !sameTypes(a[i], ba[i]) {
				return false
			}
		}
		return true
	case Field:
		bf, ok := b.(Field)
		return ok && a.Name == bf.Name && sameTypes(a.Value, bf.Value)
	case float64:
		bf, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(bf)
	}
	return a == b
}

func TestFormatJSON(t *testing.T) {
	tests := []struct {
		v      any
		indent int
		want   string
	}{
		{Table{}, 0, "{\n\t\n}"},
		{Table{}, -1, "{}"},
		{[]any{}, -1, "[]"},
		{Table{{"a", int32(1)}, {"", int32(6)}}, -1, `{"a":1,6}`},
		{Table{{"x", []any{Field{"named", int8(0)}, int16(-2)}}}, 0, "{\n\t\"x\": [\n\t\tfalse,\n\t\t-2\n\t]\n}"},
		{Table{{"d", 3.25}, {"i", math.Inf(-1)}, {"n", math.NaN()}}, -1, `{"d":3.250000,"i":-inf,"n":nan}`},
		{"a\x00b", -1, `"a"`},
		{"\x7f/é\x1f\r\f", -1, "\"\x7f/é\\u001f\\r\\u000c\""},
		{Table{{"u", uint32(0xffffffff)}, {"b", true}, {"m", map[string]any{"z": 1, "a": "b"}}}, -1, `{"u":-1,"b":true,"m":{"a":"b","z":1}}`},
	}
	for _, tc := range tests {
		if got := FormatJSON(tc.v, tc.indent); got != tc.want {
			t.Errorf("FormatJSON(%#v, %d) = %q, want %q", tc.v, tc.indent, got, tc.want)
		}
	}
	// libubox stops indenting at 16 tabs.
	deep := any(int32(1))
	for range 20 {
		deep = []any{deep}
	}
	if got := FormatJSON(deep, 0); !strings.Contains(got, "\n"+strings.Repeat("\t", 16)+"1") ||
		strings.Contains(got, strings.Repeat("\t", 17)) {
		t.Errorf("deep indentation not capped at 16 tabs:\n%s", got)
	}
}

func TestMarshalJSON(t *testing.T) {
	tb := Table{{"up", int8(1)}, {"", int32(2)}, {"d", math.Inf(1)}, {"s", "x"}}
	b, err := tb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"up":true,"":2,"d":null,"s":"x"}`; string(b) != want {
		t.Errorf("MarshalJSON = %s, want %s", b, want)
	}
}
