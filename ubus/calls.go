package ubus

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// ObjectInfo describes an object found by [Conn.Lookup].
type ObjectInfo struct {
	Path   string
	ID     uint32
	TypeID uint32
	// Signature has one member per method, normally a table mapping each
	// argument name to its blobmsg type number (an int32).
	Signature Table
}

// Lookup resolves a path to objects, as `ubus list` does: an exact path, a
// prefix followed by '*' ("network.interface.*"), or "" for every object.
// Objects registered without a signature are never listed. A path that
// matches nothing gives StatusNotFound.
func (c *Conn) Lookup(ctx context.Context, path string) ([]ObjectInfo, error) {
	op := "lookup"
	if path != "" {
		op = "lookup " + strconv.Quote(path)
	}
	resp, err := c.do(ctx, op, MsgLookup, 0, func(f []byte) []byte {
		if path != "" {
			f = blob.AppendString(f, uint8(AttrObjPath), path)
		}
		return f
	}, reqOpts{})
	if err != nil {
		return nil, err
	}
	out := make([]ObjectInfo, 0, len(resp.data))
	for _, m := range resp.data {
		var info ObjectInfo
		info.Path, _ = m.GetString(AttrObjPath)
		info.ID, _ = m.GetU32(AttrObjID)
		info.TypeID, _ = m.GetU32(AttrObjType)
		if sig, ok := m.Get(AttrSignature); ok {
			if info.Signature, err = DecodeTable(sig); err != nil {
				return nil, fmt.Errorf("ubus: %s: signature of %q: %w", op, info.Path, err)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// LookupID returns the id of the object at an exact path. An existing path
// without a signature is not callable and gives StatusNotFound, unlike in
// libubus.
func (c *Conn) LookupID(ctx context.Context, path string) (uint32, error) {
	objs, err := c.Lookup(ctx, path)
	if err != nil {
		return 0, err
	}
	if len(objs) == 0 || objs[0].ID == 0 {
		return 0, &StatusError{Op: "lookup " + strconv.Quote(path), Status: StatusNotFound}
	}
	c.mu.Lock()
	c.ids[path] = objs[0].ID
	c.mu.Unlock()
	return objs[0].ID, nil
}

// Invoke calls a method on the object with the given id and returns the
// table of each DATA message of the answer, in order (none, one or
// several), also when an error status follows them. args is encoded with
// [AppendTable]; nil sends an empty table.
// The call waits until the object answers, ctx ends (StatusTimeout) or the
// connection is lost (StatusConnectionFailed). An error status from the
// object or from ubusd is returned as a *StatusError.
func (c *Conn) Invoke(ctx context.Context, id uint32, method string, args any) ([]Table, error) {
	tables, _, err := c.invoke(ctx, fmt.Sprintf("invoke %08x %q", id, method), id, method, args)
	return tables, err
}

func (c *Conn) invoke(ctx context.Context, op string, id uint32, method string, args any) ([]Table, *response, error) {
	data, err := AppendTable(nil, args)
	if err != nil {
		return nil, nil, &StatusError{Op: op, Status: StatusInvalidArgument, Err: err}
	}
	resp, err := c.do(ctx, op, MsgInvoke, id, func(f []byte) []byte {
		f = blob.AppendU32(f, uint8(AttrObjID), id)
		f = blob.AppendString(f, uint8(AttrMethod), method)
		return blob.AppendAttr(f, uint8(AttrData), data)
	}, reqOpts{})
	if resp == nil {
		return nil, nil, err
	}
	tables := make([]Table, 0, len(resp.data))
	for _, m := range resp.data {
		t, ok, derr := m.GetTable(AttrData)
		if derr != nil {
			return nil, nil, &StatusError{Op: op, Status: StatusInvalidArgument, Err: derr}
		}
		if ok {
			tables = append(tables, t)
		}
	}
	return tables, resp, err
}

// Call looks up path (caching the id) and calls method on it with args,
// like `ubus call`. When the answer has several DATA messages their members
// are concatenated into one table, as LuCI's ubus gateway merges them; with
// no DATA the table is empty. If ubusd reports the cached id unknown, the
// path is looked up again and the call retried once: the object was
// re-registered with a new id.
//
// A call answered with an error status returns a *StatusError and, when
// the object sent DATA before its status (a daemon explaining why it
// refused, such as {"error": "..."}), that data merged as above; the table
// is nil when there was none:
//
//	data, err := c.Call(ctx, "mwan3", "ifup", args)
//	if err != nil {
//		msg, _ := data.GetString("error") // "" when the object sent none
//		...
//	}
func (c *Conn) Call(ctx context.Context, path, method string, args any) (Table, error) {
	op := fmt.Sprintf("call %q %q", path, method)
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		id, ok := c.ids[path]
		c.mu.Unlock()
		if !ok {
			var err error
			if id, err = c.LookupID(ctx, path); err != nil {
				return nil, err
			}
		}
		tables, _, err := c.invoke(ctx, op, id, method, args)
		if se, ok := err.(*StatusError); ok && se.Status == StatusNotFound && attempt == 0 && !ownerAnswered(err) {
			c.mu.Lock()
			if c.ids[path] == id {
				delete(c.ids, path)
			}
			c.mu.Unlock()
			continue
		}
		if err != nil {
			if len(tables) == 0 {
				return nil, err
			}
			return merge(tables), err
		}
		return merge(tables), nil
	}
}

// ownerAnswered tells a NOT_FOUND from the object's owner (its STATUS
// carries OBJID) from ubusd's own "no such object".
func ownerAnswered(err error) bool {
	se, ok := err.(*StatusError)
	return ok && se.fromOwner
}

func merge(tables []Table) Table {
	if len(tables) == 1 {
		return tables[0]
	}
	out := Table{}
	for _, t := range tables {
		out = append(out, t...)
	}
	return out
}

// Send sends an event to the listeners whose patterns match name (never
// to this connection's own listeners). data is encoded with [AppendTable];
// nil sends an empty table. Names starting with "ubus." are reserved to
// ubusd (StatusPermissionDenied).
func (c *Conn) Send(ctx context.Context, name string, data any) error {
	if data == nil {
		data = Table{}
	}
	_, err := c.Invoke(ctx, 1, "send", Table{{"id", name}, {"data", data}})
	if se, ok := err.(*StatusError); ok {
		se.Op = "send " + strconv.Quote(name)
	}
	return err
}

// Ping checks that ubusd answers.
func (c *Conn) Ping(ctx context.Context) error {
	_, err := c.do(ctx, "ping", MsgPing, 0, func(f []byte) []byte { return f }, reqOpts{})
	return err
}

// quotePatterns renders patterns for errors and logs.
func quotePatterns(p []string) string {
	q := make([]string, len(p))
	for i, s := range p {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ",")
}
