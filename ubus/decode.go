package ubus

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// DecodeTable decodes the members of a blobmsg table (the payload of a DATA
// attribute, or of a table attribute) into a [Table]. Decoding is strict and
// lossless: encoding the result with [AppendTable] gives the same bytes. It
// fails on truncated or overlong attributes, non-blobmsg attributes, unknown
// types, integers of the wrong size, strings without their NUL, and nesting
// deeper than 1024 levels.
func DecodeTable(b []byte) (Table, error) {
	d := decoder{root: b, src: string(b)}
	return d.table(b, 0)
}

// decoder decodes one payload. Names and strings are cut from src, one
// string copy of the whole payload, instead of being copied one by one.
type decoder struct {
	root []byte
	src  string
}

// str returns the part of src that p (a sub-slice of root) covers.
func (d *decoder) str(p []byte) string {
	off := cap(d.root) - cap(p)
	return d.src[off : off+len(p)]
}

func (d *decoder) table(b []byte, depth int) (Table, error) {
	t := make(Table, 0, countAttrs(b))
	err := d.walk(b, depth, func(name string, v any) {
		t = append(t, Field{Name: name, Value: v})
	})
	return t, err
}

func (d *decoder) array(b []byte, depth int) ([]any, error) {
	a := make([]any, 0, countAttrs(b))
	err := d.walk(b, depth, func(name string, v any) {
		if name != "" {
			v = Field{Name: name, Value: v}
		}
		a = append(a, v)
	})
	return a, err
}

func countAttrs(b []byte) int {
	n := 0
	for range blob.All(b) {
		n++
	}
	return n
}

func (d *decoder) walk(b []byte, depth int, add func(string, any)) error {
	off := 0
	for off < len(b) {
		a, n, ok := blob.Next(b[off:])
		if !ok {
			return fmt.Errorf("ubus: malformed attribute at offset %d", off)
		}
		if !a.Ext {
			return fmt.Errorf("ubus: attribute at offset %d is not a blobmsg attribute", off)
		}
		nb, val, ok := blob.MsgSplit(a)
		if !ok {
			return fmt.Errorf("ubus: attribute at offset %d: bad name header", off)
		}
		name := d.str(nb)
		v, err := d.value(Type(a.ID), val, depth)
		if err != nil {
			return fmt.Errorf("ubus: field %q: %w", name, err)
		}
		add(name, v)
		off += n
	}
	return nil
}

func (d *decoder) value(t Type, p []byte, depth int) (any, error) {
	switch t {
	case TypeTable, TypeArray:
		if depth >= maxDepth {
			return nil, errTooDeep
		}
		if t == TypeTable {
			return d.table(p, depth+1)
		}
		return d.array(p, depth+1)
	case TypeString:
		if len(p) == 0 || p[len(p)-1] != 0 {
			return nil, fmt.Errorf("string without terminating NUL")
		}
		return d.str(p[:len(p)-1]), nil
	case TypeUnspec:
		if len(p) != 0 {
			return nil, fmt.Errorf("unspec value with %d bytes of payload", len(p))
		}
		return nil, nil
	}
	if t > TypeDouble {
		return nil, fmt.Errorf("unknown blobmsg type %d", t)
	}
	size := [...]int{TypeInt64: 8, TypeInt32: 4, TypeInt16: 2, TypeInt8: 1, TypeDouble: 8}[t]
	if len(p) != size {
		return nil, fmt.Errorf("%s value of %d bytes", t, len(p))
	}
	switch t {
	case TypeInt64:
		return int64(binary.BigEndian.Uint64(p)), nil
	case TypeInt32:
		return int32(binary.BigEndian.Uint32(p)), nil
	case TypeInt16:
		return int16(binary.BigEndian.Uint16(p)), nil
	case TypeInt8:
		return int8(p[0]), nil
	}
	return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
}

// Decode stores the table into v, which must be a non-nil pointer to a
// struct (fields matched by their `ubus:"name"` tag or Go name), a map with
// string keys, a Table or an interface. Conversions are lenient where ubus
// senders differ: integers of any width fill any integer field that can hold
// the value (a negative int32 fills a uint32 with the same bits, as ubus ids
// are stored), int8 or any integer fills a bool, integers fill float fields,
// strings fill encoding.TextUnmarshaler fields. Members without a matching
// field are ignored; for duplicate names the first one wins.
func (t Table) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("ubus: Decode needs a non-nil pointer, not %T", v)
	}
	return assign(rv.Elem(), t, "")
}

func assign(dst reflect.Value, src any, path string) error {
	if f, ok := src.(Field); ok {
		src = f.Value
	}
	if dst.Kind() == reflect.Pointer {
		if src == nil {
			dst.SetZero()
			return nil
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return assign(dst.Elem(), src, path)
	}
	if dst.Kind() == reflect.Interface && dst.NumMethod() == 0 {
		if src == nil {
			dst.SetZero()
		} else {
			dst.Set(reflect.ValueOf(src))
		}
		return nil
	}
	if s, ok := src.(string); ok && dst.CanAddr() {
		if u, ok := dst.Addr().Interface().(encoding.TextUnmarshaler); ok {
			if err := u.UnmarshalText([]byte(s)); err != nil {
				return fmt.Errorf("ubus: %s: %w", pathName(path), err)
			}
			return nil
		}
	}
	if src == nil {
		dst.SetZero()
		return nil
	}
	if sv := reflect.ValueOf(src); sv.Type().AssignableTo(dst.Type()) {
		dst.Set(sv)
		return nil
	}
	switch dst.Kind() {
	case reflect.Bool:
		switch s := src.(type) {
		case bool:
			dst.SetBool(s)
			return nil
		default:
			if i, ok := toInt64(src); ok {
				dst.SetBool(i != 0)
				return nil
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i, ok := toInt64(src); ok && !dst.OverflowInt(i) {
			dst.SetInt(i)
			return nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u, ok := toUint64(src, dst.Type().Bits()); ok && !dst.OverflowUint(u) {
			dst.SetUint(u)
			return nil
		}
	case reflect.Float32, reflect.Float64:
		if f, ok := toFloat64(src); ok {
			dst.SetFloat(f)
			return nil
		}
	case reflect.String:
		if s, ok := src.(string); ok {
			dst.SetString(s)
			return nil
		}
	case reflect.Struct:
		if t, ok := src.(Table); ok {
			return assignStruct(dst, t, path)
		}
	case reflect.Map:
		if t, ok := src.(Table); ok && dst.Type().Key().Kind() == reflect.String {
			return assignMap(dst, t, path)
		}
	case reflect.Slice:
		if a, ok := src.([]any); ok {
			s := reflect.MakeSlice(dst.Type(), len(a), len(a))
			for i, el := range a {
				if err := assign(s.Index(i), el, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			dst.Set(s)
			return nil
		}
	}
	return fmt.Errorf("ubus: %s: cannot store %T in %s", pathName(path), src, dst.Type())
}

func pathName(path string) string {
	if path == "" {
		return "value"
	}
	return "field " + path
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func assignStruct(dst reflect.Value, t Table, path string) error {
	for _, f := range structFields(dst.Type()) {
		v, ok := t.Get(f.name)
		if !ok {
			continue
		}
		fv, err := fieldForSet(dst, f.index)
		if err != nil {
			return err
		}
		if err := assign(fv, v, join(path, f.name)); err != nil {
			return err
		}
	}
	return nil
}

// fieldForSet follows index, allocating nil embedded pointers.
func fieldForSet(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, fmt.Errorf("ubus: cannot set embedded pointer to unexported struct %s", v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}

func assignMap(dst reflect.Value, t Table, path string) error {
	if dst.IsNil() {
		dst.Set(reflect.MakeMapWithSize(dst.Type(), len(t)))
	}
	for _, f := range t {
		k := reflect.ValueOf(f.Name).Convert(dst.Type().Key())
		if dst.MapIndex(k).IsValid() {
			continue
		}
		ev := reflect.New(dst.Type().Elem()).Elem()
		if err := assign(ev, f.Value, join(path, f.Name)); err != nil {
			return err
		}
		dst.SetMapIndex(k, ev)
	}
	return nil
}

// toUint64 converts an integer to an unsigned value of the given width. A
// negative value of a signed type no wider than the target keeps its bits
// (an int32 object id read into a uint32).
func toUint64(v any, bits int) (uint64, bool) {
	var i int64
	var width int
	switch x := v.(type) {
	case int8:
		i, width = int64(x), 8
	case int16:
		i, width = int64(x), 16
	case int32:
		i, width = int64(x), 32
	case int64:
		i, width = x, 64
	case int:
		i, width = int64(x), 64
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint:
		return uint64(x), true
	case uint64:
		return x, true
	default:
		return 0, false
	}
	if i >= 0 {
		return uint64(i), true
	}
	if width > bits {
		return 0, false
	}
	return uint64(i) & (1<<uint(width) - 1), true
}
