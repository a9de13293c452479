package ubus

import (
	"math"
	"strconv"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// Type is a blobmsg value type (libubox enum blobmsg_type).
type Type uint8

// blobmsg types. There is no separate boolean type on the wire: booleans
// are TypeInt8.
const (
	TypeUnspec Type = blob.TypeUnspec // null
	TypeArray  Type = blob.TypeArray
	TypeTable  Type = blob.TypeTable
	TypeString Type = blob.TypeString
	TypeInt64  Type = blob.TypeInt64
	TypeInt32  Type = blob.TypeInt32
	TypeInt16  Type = blob.TypeInt16
	TypeInt8   Type = blob.TypeInt8
	TypeBool   Type = TypeInt8
	TypeDouble Type = blob.TypeDouble
)

var typeNames = [...]string{"unspec", "array", "table", "string", "int64", "int32", "int16", "int8", "double"}

// String returns the type's name ("int32", "table", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Field is one named member of a [Table]. Inside an array a Field keeps the
// name of an element that carries one (unusual, but legal on the wire).
//
// Field is an alias of an unnamed struct type so that table literals stay
// short in every package (go vet accepts ubus.Table{{"up", true}}).
type Field = struct {
	Name  string
	Value any
}

// Table is a blobmsg table: an ordered list of named values, as they travel
// on the wire. Duplicate names are kept.
//
// [DecodeTable] produces these Go types, one per blobmsg type, so that
// decoding and encoding again gives the same bytes:
//
//	unspec → nil         array  → []any      table → Table
//	string → string      int64  → int64      int32 → int32
//	int16  → int16       int8   → int8       double → float64
//
// int8 is also the wire form of booleans: [Table.GetBool] and [Table.Decode]
// into a bool field read it as one, and [FormatJSON] prints it as true/false
// like the ubus CLI.
type Table []Field

// Get returns the value of the first field called name, the one libubox's
// blobmsg_parse would pick.
func (t Table) Get(name string) (any, bool) {
	for _, f := range t {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// GetString returns the named field if it is a string.
func (t Table) GetString(name string) (string, bool) {
	v, _ := t.Get(name)
	s, ok := v.(string)
	return s, ok
}

// GetInt returns the named field if it holds an integer of any width.
func (t Table) GetInt(name string) (int64, bool) {
	v, _ := t.Get(name)
	return toInt64(v)
}

// GetUint32 returns the named field as a u32, the way ubus ids are stored:
// an int32 is read with the same bits, and a wider integer is accepted when
// it lies in the int32 or uint32 range (JSON clients send large ids as
// int64).
func (t Table) GetUint32(name string) (uint32, bool) {
	v, _ := t.Get(name)
	i, ok := toInt64(v)
	if !ok || i < math.MinInt32 || i > math.MaxUint32 {
		return 0, false
	}
	return uint32(i), true
}

// GetBool returns the named field as a boolean: any integer (int8 is the
// wire form of booleans), non-zero meaning true, or a Go bool.
func (t Table) GetBool(name string) (bool, bool) {
	v, _ := t.Get(name)
	if b, ok := v.(bool); ok {
		return b, true
	}
	i, ok := toInt64(v)
	return i != 0, ok
}

// GetFloat returns the named field if it is a double or an integer.
func (t Table) GetFloat(name string) (float64, bool) {
	v, _ := t.Get(name)
	return toFloat64(v)
}

// GetTable returns the named field if it is a table.
func (t Table) GetTable(name string) (Table, bool) {
	v, _ := t.Get(name)
	tt, ok := v.(Table)
	return tt, ok
}

// GetArray returns the named field if it is an array.
func (t Table) GetArray(name string) ([]any, bool) {
	v, _ := t.Get(name)
	a, ok := v.([]any)
	return a, ok
}

// Map converts t to a map, recursively (nested tables become maps, arrays
// keep their order). For duplicate names the first value wins, as in
// [Table.Get]. Use the Table itself where order matters.
func (t Table) Map() map[string]any {
	m := make(map[string]any, len(t))
	for _, f := range t {
		if _, dup := m[f.Name]; !dup {
			m[f.Name] = plain(f.Value)
		}
	}
	return m
}

// String renders t as compact JSON in the ubus CLI's format.
func (t Table) String() string { return FormatJSON(t, -1) }

// MarshalJSON renders t as JSON with its field order preserved. Values are
// printed as the ubus CLI prints them (int8 as a boolean, doubles with six
// decimals); unnamed fields get the key "" so that the output stays valid
// JSON, and non-finite doubles become null.
func (t Table) MarshalJSON() ([]byte, error) {
	f := formatter{indent: -1, strict: true}
	f.value(t, false)
	return f.b, nil
}

func plain(v any) any {
	switch v := v.(type) {
	case Table:
		return v.Map()
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	case Field:
		return plain(v.Value)
	}
	return v
}

// toInt64 converts any Go integer to int64; uint64 values above MaxInt64
// are refused.
func toInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint:
		if uint64(v) > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

func toFloat64(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	}
	i, ok := toInt64(v)
	return float64(i), ok
}
