package config

import (
	"strings"
	"testing"
)

// flat renders a parsed file compactly: "type name{opt=v;list=[a,b]}" per
// section, so table tests can state the whole result in one string.
func flat(f *UCIFile) string {
	var b strings.Builder
	for i, s := range f.Sections {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Type + " " + s.Name + "{")
		for j, o := range s.Options {
			if j > 0 {
				b.WriteByte(';')
			}
			b.WriteString(o.Name + "=")
			vals := make([]string, len(o.Values))
			for k, v := range o.Values {
				vals[k] = v.Text
			}
			if o.IsList {
				b.WriteString("[" + strings.Join(vals, ",") + "]")
			} else {
				b.WriteString(vals[0])
			}
		}
		b.WriteByte('}')
	}
	return b.String()
}

func TestParseUCI(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "config interface 'wan'\n\toption enabled '1'\n", "interface wan{enabled=1}"},
		{"unquoted and double quoted", "config interface wan\noption a b\noption c \"d e\"\n", "interface wan{a=b;c=d e}"},
		{"quoted keywords' arguments", "config 'interface' 'wan'\n\toption 'enabled' '1'\n", "interface wan{enabled=1}"},
		{"abbreviated keywords", "c interface wan\no enabled 1\nl track_ip 1.1.1.1\n", "interface wan{enabled=1;track_ip=[1.1.1.1]}"},
		{"concatenation", "config a x\noption v 'ab'\"cd\"ef\n", "a x{v=abcdef}"},
		{"backslash escapes outside single quotes", `config a x` + "\n" + `option v "a\"b\\c"` + "\n" + `option w a\ b` + "\n", `a x{v=a"b\c;w=a b}`},
		{"no escapes in single quotes", `config a x` + "\noption v 'a\\b'\n", `a x{v=a\b}`},
		{"line continuation", "config a x\noption v abc\\\ndef\n", "a x{v=abcdef}"},
		{"quoted value spans lines", "config a x\noption v 'one\ntwo'\noption w z\n", "a x{v=one\ntwo;w=z}"},
		{"comments", "# top\nconfig a x # trailing\n\t# indented\noption v 1#glued\n", "a x{v=1}"},
		{"hash inside quotes is text", "config a x\noption v '#1'\n", "a x{v=#1}"},
		{"semicolons separate statements", "config a x; option v 1; option w 2\n", "a x{v=1;w=2}"},
		{"CRLF line ends", "config a 'x'\r\n\toption v '1'\r\n\toption w 2\r\n", "a x{v=1;w=2}"},
		{"no final newline", "config a x\noption v 1", "a x{v=1}"},
		{"list after option makes a list", "config a x\noption v 1\nlist v 2\n", "a x{v=[1,2]}"},
		{"option after list replaces it", "config a x\nlist v 1\nlist v 2\noption v 3\n", "a x{v=3}"},
		{"empty option value deletes", "config a x\noption v 1\noption v ''\n", "a x{}"},
		{"empty list item kept", "config a x\nlist v ''\n", "a x{v=[]}"},
		{"same-type duplicate merges", "config a x\noption v 1\nconfig a y\nconfig a x\noption w 2\n", "a x{v=1;w=2} a y{}"},
		{"anonymous names", "config the_type\nconfig a x\nconfig rule\n", "the_type cfg023b47{} a x{} rule cfg05" + hex4(djbHash("rule")) + "{}"},
		{"package line", "package mwan3\nconfig a x\n", "a x{}"},
		{"type with punctuation", "config wifi-iface x\n", "wifi-iface x{}"},
		{"blank and whitespace-only lines", "\n   \n\t\nconfig a x\n   \n", "a x{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := ParseUCI("t", []byte(tt.in))
			if diags.HasErrors() {
				t.Fatalf("errors: %v", diags)
			}
			if got := flat(f); got != tt.want {
				t.Errorf("got  %q\nwant %q", flat(f), tt.want)
			}
		})
	}
}

func hex4(h uint32) string {
	const digits = "0123456789abcdef"
	h %= 1 << 16
	return string([]byte{digits[h>>12&15], digits[h>>8&15], digits[h>>4&15], digits[h&15]})
}

func TestUCILookupAndRef(t *testing.T) {
	f, _ := ParseUCI("t", []byte("config rule\nconfig rule named\nconfig rule\nconfig policy p\n"))
	for ref, want := range map[string]string{
		"@rule[0]": f.Sections[0].Name, "@rule[1]": "named", "@rule[-1]": f.Sections[2].Name,
		"named": "named", "p": "p", "@policy[0]": "p", "@[3]": "p",
	} {
		s := f.Lookup(ref)
		if s == nil || s.Name != want {
			t.Errorf("Lookup(%q) = %v, want %s", ref, s, want)
		}
	}
	for _, ref := range []string{"@rule[3]", "@rule[x]", "@rule", "nope", "@rule[-4]"} {
		if s := f.Lookup(ref); s != nil {
			t.Errorf("Lookup(%q) = %s, want nil", ref, s.Name)
		}
	}
	if got := f.Sections[2].Ref(); got != "@rule[2]" {
		t.Errorf("Ref = %q", got)
	}
}

// TestExportRoundTrip: export then parse gives the same sections.
func TestExportRoundTrip(t *testing.T) {
	in := "package mwan3\nconfig a x\noption v \"it's\"\nlist l 'a b'\nlist l c\nconfig b\noption q '\\'\n"
	f, diags := ParseUCI("t", []byte(in))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	g, diags := ParseUCI("t", []byte(f.Export()))
	if diags.HasErrors() {
		t.Fatalf("%v in:\n%s", diags, f.Export())
	}
	if flat(f) != flat(g) || g.Package != "mwan3" {
		t.Errorf("round trip:\n%s\n%s", flat(f), flat(g))
	}
}

func TestDJBHash(t *testing.T) {
	// `uci add test_section the_type` answers cfg013b47 on a device.
	if got := djbHash("the_type") % (1 << 16); got != 0x3b47 {
		t.Errorf("djbHash(the_type) = %#x, want 0x3b47", got)
	}
}
