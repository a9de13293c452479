package ubustest

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/internal/blob"
	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
)

// rawClient speaks the protocol by hand, to be able to stop reading.
type rawClient struct {
	t    *testing.T
	conn *net.UnixConn
	id   uint32
	seq  uint16
}

func dialRaw(t *testing.T, b *Broker) *rawClient {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: b.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hello := readFrame(t, conn, 5*time.Second)
	return &rawClient{t: t, conn: conn, id: binary.BigEndian.Uint32(hello[4:])}
}

// request sends a request and returns the answers up to the STATUS.
func (r *rawClient) request(typ ubus.MsgType, peer uint32, attrs func([]byte) []byte) []*ubus.Message {
	r.t.Helper()
	r.seq++
	if _, err := r.conn.Write(blob.Finish(attrs(blob.Frame(uint8(typ), r.seq, peer)))); err != nil {
		r.t.Fatal(err)
	}
	var out []*ubus.Message
	for {
		f := readFrame(r.t, r.conn, 5*time.Second)
		if f == nil {
			r.t.Fatal("no answer")
		}
		m := new(ubus.Message)
		if err := m.UnmarshalBinary(f); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, m)
		if m.Type == ubus.MsgStatus && m.Seq == r.seq {
			return out
		}
	}
}

// listen registers an anonymous object for all events.
func (r *rawClient) listen() {
	ans := r.request(ubus.MsgAddObject, 0, func(f []byte) []byte { return f })
	id, _ := ans[0].GetU32(ubus.AttrObjID)
	ans = r.request(ubus.MsgInvoke, 1, func(f []byte) []byte {
		f = blob.AppendU32(f, uint8(ubus.AttrObjID), 1)
		f = blob.AppendString(f, uint8(ubus.AttrMethod), "register")
		d, _ := ubus.AppendTable(nil, ubus.Table{{"object", id}, {"pattern", "*"}})
		return blob.AppendAttr(f, uint8(ubus.AttrData), d)
	})
	if st, _ := ans[len(ans)-1].GetU32(ubus.AttrStatus); st != 0 {
		r.t.Fatalf("register: status %d", st)
	}
}

// TestStalledReader: a client that stops reading does not block the bus,
// and the broker keeps at most about 1 MiB for it, dropping the rest as
// ubusd does.
func TestStalledReader(t *testing.T) {
	b := New(t)
	stalled := dialRaw(t, b)
	stalled.listen()
	sender, err := ubus.Dial(t.Context(), b.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	payload := ubus.Table{{"s", strings.Repeat("x", 16<<10)}}
	for range 300 { // about 5 MiB of events
		if err := sender.Send(ctx, "flood", payload); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	c := b.clients[stalled.id]
	b.mu.Unlock()
	c.qmu.Lock()
	queued := c.qbytes
	c.qmu.Unlock()
	if queued > maxTxQueue {
		t.Errorf("%d bytes queued for a stalled client", queued)
	}
	t.Logf("%d bytes queued for the stalled client", queued)
	// The stalled client still works once it reads again: what was
	// queued arrives, in order, whole.
	stalled.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 3 {
		if f := readFrame(t, stalled.conn, 5*time.Second); f == nil || f[1] != byte(ubus.MsgInvoke) {
			t.Fatalf("got %v", f)
		}
	}
}

func TestRestart(t *testing.T) {
	b := New(t)
	c1 := dialRaw(t, b)
	ans := c1.request(ubus.MsgAddObject, 0, func(f []byte) []byte {
		f = blob.AppendString(f, uint8(ubus.AttrObjPath), "obj")
		return blob.AppendAttr(f, uint8(ubus.AttrSignature), nil)
	})
	if len(ans) != 2 || len(b.Paths()) != 1 || b.Clients() != 1 {
		t.Fatalf("registration: %v, paths %v", ans, b.Paths())
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, c1.conn, 5*time.Second); f != nil {
		t.Errorf("frame %x after restart, want EOF", f)
	}
	if len(b.Paths()) != 0 || b.Clients() != 0 {
		t.Errorf("state survived the restart: %v", b.Paths())
	}
	c2 := dialRaw(t, b)
	if c2.id == c1.id {
		t.Error("same client id after restart")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- b.WaitObject(ctx, "obj") }()
	c2.request(ubus.MsgAddObject, 0, func(f []byte) []byte {
		return blob.AppendString(f, uint8(ubus.AttrObjPath), "obj")
	})
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

// FuzzBroker feeds arbitrary frames to the broker's protocol handling, with
// a second client owning objects and listening. Property: no panic, and the
// bytes queued for any client stay bounded.
func FuzzBroker(f *testing.F) {
	names, err := vectors.Names()
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		v, err := vectors.Load(name)
		if err != nil {
			f.Fatal(err)
		}
		var seed []byte
		for _, fr := range v.Frames {
			if b, err := fr.Bytes(); err == nil && fr.Dir == vectors.ToBus && len(b) < 4096 {
				seed = append(seed, b...)
			}
		}
		f.Add(seed)
	}
	b, err := Start(f.TempDir()+"/ubus.sock", WithSeed(1), WithIdentity("root", "root"))
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, in []byte) {
		mu.Lock()
		defer mu.Unlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.reset()
		fuzzer := b.fakeClient()
		other := b.fakeClient()
		for len(in) >= 12 {
			l := int(binary.BigEndian.Uint32(in[8:]) & blob.MaxLen)
			if l < 4 || 8+l > len(in) {
				break
			}
			frame := bytes.Clone(in[:8+l])
			in = in[8+l:]
			// Answers meant for the other client come from it.
			c := fuzzer
			if frame[1] == byte(ubus.MsgStatus) || frame[1] == byte(ubus.MsgData) {
				c = other
			}
			b.handle(c, frame)
		}
		for _, c := range []*client{fuzzer, other} {
			if c.qbytes > maxTxQueue+ubus.MaxBodyLen+ubus.HeaderLen {
				t.Fatalf("%d bytes queued", c.qbytes)
			}
		}
	})
}

// fakeClient adds a client without a connection (its output is only
// queued). Called with b.mu held.
func (b *Broker) fakeClient() *client {
	c := &client{id: b.allocID(func(id uint32) bool { return b.clients[id] != nil }), user: "root", group: "root", root: true}
	c.qcond = sync.NewCond(&c.qmu)
	b.clients[c.id] = c
	return c
}
