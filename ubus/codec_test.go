package ubus

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
)

// decodedFrame is the vectors' structured decode of a frame.
type decodedFrame struct {
	Version    int           `json:"version"`
	Type       int           `json:"type"`
	Seq        int           `json:"seq"`
	Peer       uint32        `json:"peer"`
	BodyRawLen int           `json:"body_raw_len"`
	Attrs      []decodedAttr `json:"attrs"`
}

type decodedAttr struct {
	ID               int             `json:"id"`
	Name             string          `json:"name"`
	RawLen           int             `json:"raw_len"`
	Value            json.RawMessage `json:"value"`
	NotNULTerminated bool            `json:"not_nul_terminated"`
	Blobmsg          []bmItem        `json:"blobmsg"`
	Methods          []struct {
		Method   string `json:"method"`
		BlobType string `json:"blob_type"`
		Args     map[string]struct {
			TypeID int `json:"type_id"`
		} `json:"args"`
	} `json:"methods"`
	IDs   []string      `json:"ids"`
	Attrs []decodedAttr `json:"attrs"`
}

type bmItem struct {
	Name     *string         `json:"name"`
	TypeID   int             `json:"type_id"`
	Value    json.RawMessage `json:"value"`
	Extended *bool           `json:"extended"`
}

// TestVectorFrames decodes every recorded frame, checks the result against
// the recording's own decode, and re-encodes it: the frame, every DATA
// table and every SIGNATURE must come out byte for byte identical.
func TestVectorFrames(t *testing.T) {
	names, err := vectors.Names()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, name := range names {
		v, err := vectors.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			for _, f := range v.Frames {
				total++
				b, err := f.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				var m Message
				err = m.UnmarshalBinary(b)
				if f.Malformed || f.Partial {
					if err == nil {
						t.Errorf("frame %d: malformed frame accepted", f.I)
					}
					continue
				}
				if err != nil {
					t.Errorf("frame %d: %v", f.I, err)
					continue
				}
				out, err := m.MarshalBinary()
				if err != nil || !bytes.Equal(out, b) {
					t.Errorf("frame %d: re-encoded %x (err %v)\nwant %x", f.I, out, err, b)
				}
				var d decodedFrame
				if err := json.Unmarshal(f.Decoded, &d); err != nil {
					t.Fatal(err)
				}
				if int(m.Version) != d.Version || int(m.Type) != d.Type || int(m.Seq) != d.Seq || m.Peer != d.Peer ||
					len(b)-HeaderLen != d.BodyRawLen {
					t.Errorf("frame %d: header %+v, want %+v", f.I, m.Header, d)
				}
				if f.HexTruncated {
					continue // the recording keeps only the header's decode
				}
				if err := checkAttrs(m.Attrs, d.Attrs); err != nil {
					t.Errorf("frame %d (%.200s): %v", f.I, f.Summary, err)
				}
			}
		})
	}
	t.Logf("%d frames checked", total)
}

func checkAttrs(got []Attr, want []decodedAttr) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d attributes, want %d", len(got), len(want))
	}
	for i, w := range want {
		a := got[i]
		if int(a.ID) != w.ID || len(a.Data)+blob.HeaderLen != w.RawLen {
			return fmt.Errorf("attribute %d: id %d len %d, want %+v", i, a.ID, len(a.Data)+4, w)
		}
		if err := checkAttr(a, w); err != nil {
			return fmt.Errorf("attribute %s: %w", w.Name, err)
		}
	}
	return nil
}

func checkAttr(a Attr, w decodedAttr) error {
	switch {
	case w.Blobmsg != nil:
		return checkData(a.Data, w.Blobmsg)
	case w.Methods != nil:
		return checkSignature(a.Data, w)
	case w.IDs != nil || w.Name == "SUBSCRIBERS":
		ids := []string{}
		for s := range blob.All(a.Data) {
			ids = append(ids, fmt.Sprintf("%08x", binary.BigEndian.Uint32(s.Data)))
		}
		if fmt.Sprint(ids) != fmt.Sprint(w.IDs) {
			return fmt.Errorf("subscribers %v, want %v", ids, w.IDs)
		}
	case w.Attrs != nil:
		var nested []Attr
		for s := range blob.All(a.Data) {
			nested = append(nested, Attr{ID: AttrID(s.ID), Data: s.Data})
		}
		return checkAttrs(nested, w.Attrs)
	case w.Value != nil:
		var want any
		if err := json.Unmarshal(w.Value, &want); err != nil {
			return err
		}
		switch want := want.(type) {
		case string:
			s := a.Data
			if !w.NotNULTerminated {
				s = s[:len(s)-1]
			}
			if string(s) != want {
				return fmt.Errorf("string %q, want %q", s, want)
			}
		case float64:
			var got uint64
			switch len(a.Data) {
			case 4:
				got = uint64(binary.BigEndian.Uint32(a.Data))
			case 1:
				got = uint64(a.Data[0])
			default:
				return fmt.Errorf("integer of %d bytes", len(a.Data))
			}
			if float64(got) != want {
				return fmt.Errorf("value %d, want %v", got, want)
			}
		}
	}
	return nil
}

// checkData decodes a DATA payload, compares it with the recorded tree and
// re-encodes it. Payloads holding non-blobmsg attributes (libubus's monitor
// request) must be refused.
func checkData(data []byte, want []bmItem) error {
	tb, err := DecodeTable(data)
	if hasPlainAttr(want) {
		if err == nil {
			return errors.New("non-blobmsg attributes accepted")
		}
		return nil
	}
	if err != nil {
		return err
	}
	fields := make([]any, len(tb))
	for i, f := range tb {
		fields[i] = f
	}
	if err := compareItems(fields, want, true); err != nil {
		return err
	}
	out, err := AppendTable(nil, tb)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, data) {
		return fmt.Errorf("table re-encoded as %x\nwant %x", out, data)
	}
	return nil
}

func hasPlainAttr(items []bmItem) bool {
	for _, it := range items {
		if it.Extended != nil && !*it.Extended {
			return true
		}
	}
	return false
}

func compareItems(got []any, want []bmItem, table bool) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d members, want %d", len(got), len(want))
	}
	for i, w := range want {
		name, v := "", got[i]
		if f, ok := v.(Field); ok {
			name, v = f.Name, f.Value
		}
		if w.Name != nil && name != *w.Name {
			return fmt.Errorf("member %d: name %q, want %q", i, name, *w.Name)
		}
		if tt := valueType(v); int(tt) != w.TypeID {
			return fmt.Errorf("member %q: type %s, want %d", name, tt, w.TypeID)
		}
		switch v := v.(type) {
		case Table, []any:
			var items []bmItem
			if err := json.Unmarshal(w.Value, &items); err != nil {
				return err
			}
			var elems []any
			if t, ok := v.(Table); ok {
				for _, f := range t {
					elems = append(elems, f)
				}
			} else {
				elems = v.([]any)
			}
			if err := compareItems(elems, items, !table); err != nil {
				return fmt.Errorf("%q: %w", name, err)
			}
		default:
			var want any
			d := json.NewDecoder(bytes.NewReader(w.Value))
			d.UseNumber()
			if err := d.Decode(&want); err != nil {
				return err
			}
			if !sameScalar(v, want) {
				return fmt.Errorf("member %q: %#v, want %v", name, v, want)
			}
		}
	}
	return nil
}

func sameScalar(v, want any) bool {
	switch v := v.(type) {
	case nil:
		return want == nil
	case string:
		return v == want
	case float64:
		n, ok := want.(json.Number)
		f, err := n.Float64()
		return ok && err == nil && f == v
	}
	n, ok := want.(json.Number)
	i, _ := toInt64(v)
	w, err := n.Int64()
	return ok && err == nil && i == w
}

func checkSignature(data []byte, w decodedAttr) error {
	tb, err := DecodeTable(data)
	if err != nil {
		return err
	}
	if len(tb) != len(w.Methods) {
		return fmt.Errorf("%d methods, want %d", len(tb), len(w.Methods))
	}
	for i, m := range w.Methods {
		f := tb[i]
		if f.Name != m.Method || valueType(f.Value).String() != m.BlobType {
			return fmt.Errorf("method %d: %q %s, want %q %s", i, f.Name, valueType(f.Value), m.Method, m.BlobType)
		}
		args, _ := f.Value.(Table)
		if len(args) != len(m.Args) {
			return fmt.Errorf("method %q: %d arguments, want %d", f.Name, len(args), len(m.Args))
		}
		for _, a := range args {
			n, _ := toInt64(a.Value)
			if wa, ok := m.Args[a.Name]; !ok || int64(wa.TypeID) != n {
				return fmt.Errorf("method %q argument %q: type %d, want %+v", f.Name, a.Name, n, wa)
			}
		}
	}
	out, err := AppendTable(nil, tb)
	if err != nil {
		return err
	}
	if !bytes.Equal(out, data) {
		return fmt.Errorf("signature re-encoded as %x\nwant %x", out, data)
	}
	return nil
}
