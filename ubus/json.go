package ubus

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonMaxDepth is json-c's default nesting limit (JSON_TOKENER_DEFAULT_DEPTH),
// which the ubus CLI inherits.
const jsonMaxDepth = 32

// ParseJSON converts a JSON object into a [Table] with the typing rules of
// the ubus CLI (libubox blobmsg_add_json_from_string on top of json-c):
//
//   - the top level must be an object; members keep their order, and a
//     duplicated key keeps its first position and its last value;
//   - true/false become bool (encoded as int8), null becomes nil (unspec);
//   - an integer becomes int32 when it fits, else int64; integers beyond the
//     int64 range are clamped to it, as json-c does;
//   - a number with a fraction or an exponent becomes float64 (double), even
//     2.0 or 1e3;
//   - objects become Table, arrays []any.
//
// Nesting is limited to 32 levels, json-c's default. An error here is what
// the CLI reports as "Parsing message data failed" (StatusParseError).
func ParseJSON(data []byte) (Table, error) {
	p := jsonParser{s: data}
	p.space()
	if p.peek() != '{' {
		return nil, p.errorf("top level is not a JSON object")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errorf("unexpected data after the JSON object")
	}
	return v.(Table), nil
}

type jsonParser struct {
	s []byte
	i int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("ubus: JSON offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *jsonParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	p.space()
	switch c := p.peek(); {
	case c == '{':
		if depth >= jsonMaxDepth {
			return nil, p.errorf("nested too deeply")
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= jsonMaxDepth {
			return nil, p.errorf("nested too deeply")
		}
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	for _, lit := range [...]struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if strings.HasPrefix(string(p.s[p.i:min(len(p.s), p.i+5)]), lit.s) {
			p.i += len(lit.s)
			return lit.v, nil
		}
	}
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end of input")
	}
	return nil, p.errorf("unexpected character %q", p.s[p.i])
}

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // {
	t := Table{}
	p.space()
	if p.peek() == '}' {
		p.i++
		return t, nil
	}
	for {
		p.space()
		if p.peek() != '"' {
			return nil, p.errorf("expected a member name")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.peek() != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.i++
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		if i := t.index(k); i >= 0 {
			t[i].Value = v
		} else {
			t = append(t, Field{Name: k, Value: v})
		}
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return t, nil
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

func (t Table) index(name string) int {
	for i, f := range t {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	a := []any{}
	p.space()
	if p.peek() == ']' {
		p.i++
		return a, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

func (p *jsonParser) str() (string, error) {
	p.i++ // "
	var sb strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errorf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return sb.String(), nil
		case c == '\\':
			if err := p.escape(&sb); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", p.errorf("control character in string")
		default:
			sb.WriteByte(c)
			p.i++
		}
	}
}

func (p *jsonParser) escape(sb *strings.Builder) error {
	p.i++ // backslash
	if p.i >= len(p.s) {
		return p.errorf("unterminated escape")
	}
	c := p.s[p.i]
	p.i++
	switch c {
	case '"', '\\', '/':
		sb.WriteByte(c)
	case 'b':
		sb.WriteByte('\b')
	case 'f':
		sb.WriteByte('\f')
	case 'n':
		sb.WriteByte('\n')
	case 'r':
		sb.WriteByte('\r')
	case 't':
		sb.WriteByte('\t')
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) && p.i+6 <= len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
			save := p.i
			p.i += 2
			r2, err := p.hex4()
			if err == nil {
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					sb.WriteRune(dec)
					return nil
				}
			}
			p.i = save
		}
		sb.WriteRune(r)
	default:
		return p.errorf("invalid escape \\%c", c)
	}
	return nil
}

func (p *jsonParser) hex4() (rune, error) {
	if p.i+4 > len(p.s) {
		return 0, p.errorf("short \\u escape")
	}
	v, err := strconv.ParseUint(string(p.s[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, p.errorf("invalid \\u escape")
	}
	p.i += 4
	return rune(v), nil
}

func (p *jsonParser) number() (any, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, p.errorf("invalid number")
	}
	if p.peek() == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	return parseNumber(string(p.s[start:p.i]))
}

// parseNumber types a JSON number as json-c and libubox do: integers as
// int32 or int64 (clamped to the int64 range), anything with a fraction or
// an exponent as float64.
func parseNumber(s string) (any, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("invalid number %q", s)
		}
		return f, nil
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("invalid number %q", s)
		}
		// ParseInt clamps out-of-range values, as json-c does.
	}
	if i >= math.MinInt32 && i <= math.MaxInt32 {
		return int32(i), nil
	}
	return i, nil
}

// FormatJSON renders v the way libubox's blobmsg_format_json does, which is
// what the ubus CLI prints. v is usually a [Table] (printed as an object) or
// an []any (an array); scalars are printed alone.
//
// With indent < 0 the output is compact (ubus -S, ubus listen). Otherwise it
// is indented with tabs, starting at level indent (the CLI uses 0): a newline
// and level+1 tabs after '{', '[' and each ',', `": "` after names, and the
// closing bracket on its own line; libubox stops indenting at 16 tabs.
//
// Like libubox: int8 and bool print as true/false, other integers in signed
// decimal, doubles with printf's "%lf" (six decimals), strings up to their
// first NUL byte with '"', '\\', \b, \n, \t, \r escaped and other control
// bytes as \u00XX, and everything else (including '/' and invalid UTF-8)
// copied raw. Table members without a name print without a key, which is
// not valid JSON ({6}), and names of array elements are dropped.
func FormatJSON(v any, indent int) string {
	f := formatter{indent: indent}
	f.value(v, false)
	return string(f.b)
}

type formatter struct {
	b      []byte
	indent int  // < 0: compact
	strict bool // valid JSON: "" keys for unnamed members, null for non-finite doubles
}

func (f *formatter) sep() {
	if f.indent < 0 {
		return
	}
	f.b = append(f.b, '\n')
	for range min(f.indent, 16) {
		f.b = append(f.b, '\t')
	}
}

func (f *formatter) value(v any, inArray bool) {
	switch v := v.(type) {
	case Field:
		if !inArray && (v.Name != "" || f.strict) {
			f.str(v.Name)
			if f.indent >= 0 {
				f.b = append(f.b, ':', ' ')
			} else {
				f.b = append(f.b, ':')
			}
		}
		f.value(v.Value, false)
	case Table:
		f.list('{', '}', len(v), func(i int) { f.value(v[i], false) })
	case []any:
		f.list('[', ']', len(v), func(i int) {
			if fl, ok := v[i].(Field); ok {
				f.value(fl.Value, true)
				return
			}
			f.value(v[i], true)
		})
	case map[string]any:
		f.value(tableFromMap(v), inArray)
	case nil:
		f.b = append(f.b, "null"...)
	case bool:
		f.b = strconv.AppendBool(f.b, v)
	case int8:
		f.b = strconv.AppendBool(f.b, v != 0)
	case uint8:
		f.b = strconv.AppendBool(f.b, v != 0)
	case string:
		f.str(v)
	case float64:
		f.double(v)
	case float32:
		f.double(float64(v))
	case json.Number:
		n, err := parseNumber(string(v))
		if err != nil {
			f.str(string(v))
			return
		}
		f.value(n, inArray)
	case encoding.TextMarshaler:
		t, err := v.MarshalText()
		if err != nil {
			f.b = append(f.b, "null"...)
			return
		}
		f.str(string(t))
	case uint16:
		f.b = strconv.AppendInt(f.b, int64(int16(v)), 10) // travels as int16
	case uint32:
		f.b = strconv.AppendInt(f.b, int64(int32(v)), 10) // travels as int32
	case uint64:
		f.b = strconv.AppendInt(f.b, int64(v), 10) // travels as int64
	case uint:
		f.b = strconv.AppendInt(f.b, int64(v), 10)
	default:
		if i, ok := toInt64(v); ok {
			f.b = strconv.AppendInt(f.b, i, 10)
			return
		}
		f.reflectValue(v)
	}
}

// reflectValue renders other Go values (named types, structs, slices)
// through the encoder, so that they print exactly as they would travel.
func (f *formatter) reflectValue(v any) {
	if b, err := AppendTable(nil, Table{{Value: v}}); err == nil {
		if t, err := DecodeTable(b); err == nil && len(t) == 1 {
			f.value(t[0].Value, false)
			return
		}
	}
	f.b = append(f.b, "null"...)
}

func tableFromMap(m map[string]any) Table {
	b, err := AppendTable(nil, m)
	if err != nil {
		return nil
	}
	t, _ := DecodeTable(b)
	return t
}

func (f *formatter) list(open, close byte, n int, elem func(int)) {
	f.b = append(f.b, open)
	if f.indent >= 0 {
		f.indent++
	}
	f.sep()
	for i := range n {
		if i > 0 {
			f.b = append(f.b, ',')
			f.sep()
		}
		elem(i)
	}
	if f.indent >= 0 {
		f.indent--
	}
	f.sep()
	f.b = append(f.b, close)
}

func (f *formatter) double(v float64) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		if f.strict {
			f.b = append(f.b, "null"...)
			return
		}
		switch {
		case math.IsInf(v, 1):
			f.b = append(f.b, "inf"...)
		case math.IsInf(v, -1):
			f.b = append(f.b, "-inf"...)
		case math.Signbit(v):
			f.b = append(f.b, "-nan"...)
		default:
			f.b = append(f.b, "nan"...)
		}
	default:
		f.b = strconv.AppendFloat(f.b, v, 'f', 6, 64)
	}
}

// str appends s quoted with libubox's escaping rules.
func (f *formatter) str(s string) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	f.b = append(f.b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			f.b = append(f.b, '\\', c)
		case '\b':
			f.b = append(f.b, '\\', 'b')
		case '\n':
			f.b = append(f.b, '\\', 'n')
		case '\t':
			f.b = append(f.b, '\\', 't')
		case '\r':
			f.b = append(f.b, '\\', 'r')
		default:
			if c < 0x20 {
				f.b = append(f.b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			} else {
				f.b = append(f.b, c)
			}
		}
	}
	f.b = append(f.b, '"')
}
