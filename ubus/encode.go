package ubus

import (
	"cmp"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// maxDepth bounds the nesting of tables and arrays the codec accepts, so
// that hostile input cannot drive it into unbounded recursion.
const maxDepth = 1024

var errTooDeep = errors.New("ubus: tables and arrays nested too deeply")

// AppendTable appends v to b encoded as the members of a blobmsg table: the
// bare sequence of named attributes that ubus carries in a DATA attribute.
//
// v may be nil (no members), a [Table], a map with string keys (encoded in
// sorted key order), or a struct (fields in declaration order; see below), or
// a pointer to one of these. Member values are encoded with these blobmsg
// types:
//
//	nil, nil pointer         unspec
//	bool                     int8 (0 or 1): the wire form of booleans
//	int8, uint8              int8
//	int16, uint16            int16
//	int32, uint32            int32 (a uint32 keeps its bits: ubus ids)
//	int64, uint64            int64
//	int, uint, json.Number   int32 if the value fits in int32, else int64,
//	                         as the ubus CLI types JSON integers
//	float32, float64         double (a json.Number with a fraction or an
//	                         exponent too)
//	string                   string
//	encoding.TextMarshaler   string (netip.Addr, ...)
//	Table, maps, structs     table
//	slices and arrays        array ([]byte is refused)
//
// An element of a []any that is a [Field] keeps its name.
//
// Struct fields are named by a `ubus:"name"` tag, or by the Go field name
// when there is none; `ubus:"-"` skips a field and `ubus:"name,omitempty"`
// leaves out zero values. Unexported fields are ignored and embedded structs
// without a tag are inlined.
//
// An [Encoded] value is copied as it is: as v, it is the members; as a
// member's value, it is that table's members.
func AppendTable(b []byte, v any) ([]byte, error) {
	e := encoder{b: b}
	if err := e.members(v, 0); err != nil {
		return b, err
	}
	return e.b, nil
}

// Encoded is a table already encoded by [AppendTable]: the members of a
// blobmsg table, without a header. [AppendTable] and [Request.Reply] copy
// it without looking into it, so it must come from AppendTable (or
// [Message] data checked by [DecodeTable]). A reply that changes rarely is
// encoded once and sent many times this way, or assembled from encoded
// parts.
type Encoded []byte

type encoder struct {
	b []byte
}

// raw copies encoded members.
func (e *encoder) raw(v Encoded) error {
	if len(v) > blob.MaxLen {
		return fmt.Errorf("ubus: encoded table of %d bytes is too long", len(v))
	}
	e.b = append(e.b, v...)
	return nil
}

// members encodes the members of a table-like value.
func (e *encoder) members(v any, depth int) error {
	switch v := v.(type) {
	case nil:
		return nil
	case Encoded:
		return e.raw(v)
	case Table:
		for _, f := range v {
			if err := e.value(f.Name, f.Value, depth); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, k := range slices.Sorted(mapKeys(v)) {
			if err := e.value(k, v[k], depth); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("ubus: cannot encode %s as a table: keys are not strings", rv.Type())
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if err := e.reflectValue(k.String(), rv.MapIndex(k), depth); err != nil {
				return err
			}
		}
		return nil
	case reflect.Struct:
		for _, f := range structFields(rv.Type()) {
			fv, ok := fieldByIndex(rv, f.index)
			if !ok || (f.omitEmpty && isEmpty(fv)) {
				continue
			}
			if err := e.reflectValue(f.name, fv, depth); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if rv.Type().ConvertibleTo(tableType) {
			return e.members(rv.Convert(tableType).Interface(), depth)
		}
	}
	return fmt.Errorf("ubus: cannot encode %T as a table", v)
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var tableType = reflect.TypeFor[Table]()

// value encodes one named value.
func (e *encoder) value(name string, val any, depth int) error {
	switch v := val.(type) {
	case nil:
		return e.leaf(TypeUnspec, name, nil)
	case bool:
		var b byte
		if v {
			b = 1
		}
		return e.leaf(TypeInt8, name, []byte{b})
	case int8:
		return e.leaf(TypeInt8, name, []byte{byte(v)})
	case uint8:
		return e.leaf(TypeInt8, name, []byte{v})
	case int16:
		return e.u16(name, uint16(v))
	case uint16:
		return e.u16(name, v)
	case int32:
		return e.u32(name, uint32(v))
	case uint32:
		return e.u32(name, v)
	case int64:
		return e.u64(TypeInt64, name, uint64(v))
	case uint64:
		return e.u64(TypeInt64, name, v)
	case int:
		return e.int(name, int64(v))
	case uint:
		if uint64(v) <= math.MaxInt32 {
			return e.u32(name, uint32(v))
		}
		return e.u64(TypeInt64, name, uint64(v))
	case float64:
		return e.u64(TypeDouble, name, math.Float64bits(v))
	case float32:
		return e.u64(TypeDouble, name, math.Float64bits(float64(v)))
	case string:
		return e.str(name, v)
	case json.Number:
		return e.number(name, string(v))
	case Table, Encoded:
		return e.table(name, val, depth) // val: no boxing again
	case []any:
		off, err := e.open(name, depth)
		if err != nil {
			return err
		}
		for _, el := range v {
			if err := e.element(el, depth+1); err != nil {
				return err
			}
		}
		return e.close(TypeArray, name, off)
	case map[string]any:
		return e.table(name, val, depth)
	case Field:
		return fmt.Errorf("ubus: field %q: a Field is only allowed as an array element", name)
	case encoding.TextMarshaler:
		return e.text(name, v)
	}
	return e.reflectValue(name, reflect.ValueOf(val), depth)
}

func (e *encoder) element(v any, depth int) error {
	if f, ok := v.(Field); ok {
		return e.value(f.Name, f.Value, depth)
	}
	return e.value("", v, depth)
}

func (e *encoder) reflectValue(name string, rv reflect.Value, depth int) error {
	if !rv.IsValid() {
		return e.leaf(TypeUnspec, name, nil)
	}
	if rv.CanInterface() {
		switch x := rv.Interface().(type) {
		case Table, []any, map[string]any, json.Number, Field, Encoded:
			return e.value(name, x, depth)
		case encoding.TextMarshaler:
			if rv.Kind() != reflect.Pointer || !rv.IsNil() {
				return e.text(name, x)
			}
		}
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return e.leaf(TypeUnspec, name, nil)
		}
		return e.reflectValue(name, rv.Elem(), depth)
	case reflect.Bool:
		return e.value(name, rv.Bool(), depth)
	case reflect.Int8:
		return e.leaf(TypeInt8, name, []byte{byte(rv.Int())})
	case reflect.Int16:
		return e.u16(name, uint16(rv.Int()))
	case reflect.Int32:
		return e.u32(name, uint32(rv.Int()))
	case reflect.Int64:
		return e.u64(TypeInt64, name, uint64(rv.Int()))
	case reflect.Int:
		return e.int(name, rv.Int())
	case reflect.Uint8:
		return e.leaf(TypeInt8, name, []byte{byte(rv.Uint())})
	case reflect.Uint16:
		return e.u16(name, uint16(rv.Uint()))
	case reflect.Uint32:
		return e.u32(name, uint32(rv.Uint()))
	case reflect.Uint64:
		return e.u64(TypeInt64, name, rv.Uint())
	case reflect.Uint:
		return e.value(name, uint(rv.Uint()), depth)
	case reflect.Float32, reflect.Float64:
		return e.u64(TypeDouble, name, math.Float64bits(rv.Float()))
	case reflect.String:
		return e.str(name, rv.String())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().ConvertibleTo(tableType) {
			return e.table(name, rv.Convert(tableType).Interface(), depth)
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return fmt.Errorf("ubus: field %q: cannot encode %s (blobmsg has no binary type)", name, rv.Type())
		}
		return e.array(name, rv.Len(), depth, func(i int) error { return e.reflectElement(rv.Index(i), depth+1) })
	case reflect.Map, reflect.Struct:
		return e.table(name, rv.Interface(), depth)
	}
	return fmt.Errorf("ubus: field %q: cannot encode %s", name, rv.Type())
}

func (e *encoder) reflectElement(rv reflect.Value, depth int) error {
	if rv.CanInterface() {
		if f, ok := rv.Interface().(Field); ok {
			return e.value(f.Name, f.Value, depth)
		}
	}
	return e.reflectValue("", rv, depth)
}

func (e *encoder) int(name string, v int64) error {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		return e.u32(name, uint32(v))
	}
	return e.u64(TypeInt64, name, uint64(v))
}

func (e *encoder) number(name, s string) error {
	v, err := parseNumber(s)
	if err != nil {
		return fmt.Errorf("ubus: field %q: %w", name, err)
	}
	return e.value(name, v, 0)
}

func (e *encoder) text(name string, m encoding.TextMarshaler) error {
	t, err := m.MarshalText()
	if err != nil {
		return fmt.Errorf("ubus: field %q: %w", name, err)
	}
	return e.str(name, string(t))
}

func (e *encoder) checkName(name string) error {
	if len(name) > math.MaxUint16 {
		return fmt.Errorf("ubus: field name of %d bytes is too long", len(name))
	}
	return nil
}

func (e *encoder) leaf(t Type, name string, payload []byte) error {
	if err := e.checkName(name); err != nil {
		return err
	}
	e.b = blob.AppendMsg(e.b, uint8(t), name, payload)
	return nil
}

func (e *encoder) u16(name string, v uint16) error {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], v)
	return e.leaf(TypeInt16, name, p[:])
}

func (e *encoder) u32(name string, v uint32) error {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], v)
	return e.leaf(TypeInt32, name, p[:])
}

func (e *encoder) u64(t Type, name string, v uint64) error {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], v)
	return e.leaf(t, name, p[:])
}

func (e *encoder) str(name, s string) error {
	if err := e.checkName(name); err != nil {
		return err
	}
	if len(s) >= blob.MaxLen {
		return fmt.Errorf("ubus: field %q: string of %d bytes is too long", name, len(s))
	}
	b, off := blob.BeginMsg(e.b, name)
	b = append(b, s...)
	b = append(b, 0)
	e.b = blob.End(b, off, uint8(TypeString), true)
	return nil
}

// open starts a table or array attribute; close finishes it.
func (e *encoder) open(name string, depth int) (int, error) {
	if depth >= maxDepth {
		return 0, errTooDeep
	}
	if err := e.checkName(name); err != nil {
		return 0, err
	}
	var off int
	e.b, off = blob.BeginMsg(e.b, name)
	return off, nil
}

func (e *encoder) close(t Type, name string, off int) error {
	if len(e.b)-off > blob.MaxLen {
		return fmt.Errorf("ubus: field %q: %s of %d bytes is too long", name, t, len(e.b)-off)
	}
	e.b = blob.End(e.b, off, uint8(t), true)
	return nil
}

// table encodes a table-like value as a named table attribute.
func (e *encoder) table(name string, v any, depth int) error {
	off, err := e.open(name, depth)
	if err != nil {
		return err
	}
	if err := e.members(v, depth+1); err != nil {
		return err
	}
	return e.close(TypeTable, name, off)
}

// array encodes n elements as a named array attribute.
func (e *encoder) array(name string, n int, depth int, elem func(int) error) error {
	off, err := e.open(name, depth)
	if err != nil {
		return err
	}
	for i := range n {
		if err := elem(i); err != nil {
			return err
		}
	}
	return e.close(TypeArray, name, off)
}

// fieldInfo describes one encoded struct field.
type fieldInfo struct {
	name      string
	index     []int
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

func structFields(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var out []fieldInfo
	collectFields(t, nil, &out, 0)
	f, _ := fieldCache.LoadOrStore(t, out)
	return f.([]fieldInfo)
}

func collectFields(t reflect.Type, index []int, out *[]fieldInfo, depth int) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("ubus")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(slices.Clone(index), i)
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && (!hasTag || name == "") && ft.Kind() == reflect.Struct && depth < 16 {
			collectFields(ft, idx, out, depth+1)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		*out = append(*out, fieldInfo{name: name, index: idx, omitEmpty: opts == "omitempty"})
	}
}

// fieldByIndex follows index through embedded pointers; ok is false when a
// nil embedded pointer is in the way.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		return v.Len() == 0
	}
	return v.IsZero()
}
