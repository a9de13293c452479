package ubustest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
	"github.com/mwan3d/mwan3d/ubus/ubuscli"
)

// waitProcessed blocks until the broker has handled n frames from client
// id, or dropped it; false after 10 s.
func (b *Broker) waitProcessed(id uint32, n int) bool {
	return b.waitFor(func() bool {
		c := b.clients[id]
		return c == nil || c.gone || c.processed >= n
	})
}

// waitGone blocks until client id has been cleaned up; false after 10 s.
func (b *Broker) waitGone(id uint32) bool {
	return b.waitFor(func() bool { return b.clients[id] == nil })
}

// waitFor waits until cond (called with b.mu held) holds; false after 10 s.
func (b *Broker) waitFor(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	wake := time.AfterFunc(10*time.Second, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer wake.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		b.cond.Wait()
	}
	return true
}

// waitFlushed blocks until everything queued for client id has been
// written to its socket.
func (b *Broker) waitFlushed(id uint32) {
	b.mu.Lock()
	c := b.clients[id]
	b.mu.Unlock()
	if c == nil {
		return
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	for c.qbytes > 0 && !c.qdone {
		c.qcond.Wait()
	}
}

// replayConn is one recorded connection replayed against the broker, or
// played live by the ubus CLI of this module.
type replayConn struct {
	rec     *vectors.Conn
	conn    *net.UnixConn // nil for the live connection
	live    *liveRun
	id      uint32 // live client id
	written int
	closed  bool
}

// liveRun is a run of package ubuscli standing in for a recorded run of
// the ubus tool.
type liveRun struct {
	step           *vectors.Step
	args           []string
	long           bool // listen and subscribe run until stopped
	stdout, stderr lockedBuffer
	cancel         context.CancelFunc
	result         chan int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReplay drives the broker with the client frames of every recording,
// in the recorded order, and checks that it answers each connection with
// exactly the frames the real ubusd sent, ids aside: client, object and
// type ids are random, so they are mapped from the recording to this run as
// they appear.
func TestReplay(t *testing.T) {
	names, err := vectors.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			v, err := vectors.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			replay(t, v, 0)
		})
	}
}

// TestReplayCLI replays every recording with one run of the ubus tool
// played live by package ubuscli against the broker, the other connections
// replayed: the CLI must print what the real tool printed and exit with
// its status, and the broker must answer the others as ubusd did.
func TestReplayCLI(t *testing.T) {
	names, err := vectors.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		v, err := vectors.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range v.Connections {
			words := vectors.Args(c.Command)
			if len(words) == 0 || words[0] != "ubus" || strings.Contains(c.Command, " monitor") {
				continue
			}
			t.Run(name+"/"+c.Label, func(t *testing.T) {
				t.Parallel()
				v, err := vectors.Load(name)
				if err != nil {
					t.Fatal(err)
				}
				replay(t, v, c.Conn)
			})
		}
	}
}

// replay replays v against a new broker; connection live (if not 0) is a
// run of the ubus tool, played by package ubuscli.
func replay(t *testing.T, v *vectors.File, live int) {
	b := New(t, WithIdentity("root", "root"))
	m := vectors.NewMapper(v.IDs())
	conns := map[int]*replayConn{}
	last := map[int]int{} // index of each connection's last frame
	for _, f := range v.Frames {
		last[f.Conn] = f.I
	}
	dialed := 0 // connections made so far
	open := func(rc *vectors.Conn) *replayConn {
		c := &replayConn{rec: rc}
		if rc.Conn != live {
			conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: b.Path(), Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			c.conn = conn
			dialed++
			return c
		}
		// Wait until the broker accepted every connection we made, so that
		// the next one is the CLI's.
		if !b.waitFor(func() bool { return len(b.accepted) == dialed }) {
			t.Fatal("connections not accepted")
		}
		c.live = startLive(t, v, rc, b.Path(), m)
		if !b.waitFor(func() bool { return len(b.accepted) > dialed }) {
			t.Fatal("the CLI did not connect")
		}
		b.mu.Lock()
		c.id = b.accepted[dialed]
		b.mu.Unlock()
		dialed++
		rec, _ := strconv.ParseUint(rc.ClientID, 16, 32)
		if err := m.Map(uint32(rec), c.id); err != nil {
			t.Fatal(err)
		}
		return c
	}
	closeConn := func(c *replayConn) {
		if c.closed {
			return
		}
		c.closed = true
		if c.live != nil {
			c.live.finish(t, m)
		} else {
			checkDrained(t, b, c)
			c.conn.Close()
		}
		if !b.waitGone(c.id) {
			t.Fatalf("%s: not disconnected", c.rec.Label)
		}
	}
	defer func() {
		for _, c := range conns {
			if c.conn != nil {
				c.conn.Close()
			}
			if c.live != nil {
				c.live.cancel()
			}
		}
	}()
	for _, f := range v.Frames {
		// Close the connections the recording shows closed by then, and
		// open those it shows opened.
		for _, c := range conns {
			if !c.closed && c.rec.ClosedBy == "client" && c.rec.ClosedT <= f.T && last[c.rec.Conn] < f.I {
				closeConn(c)
			}
		}
		for i := range v.Connections {
			rc := &v.Connections[i]
			if conns[rc.Conn] == nil && (rc.OpenedT <= f.T || rc.Conn == f.Conn) {
				conns[rc.Conn] = open(rc)
			}
		}
		c := conns[f.Conn]
		if c.live != nil {
			// The CLI reads what the broker sends it; what it sends is
			// checked by its effects on the others and by its output.
			if f.Dir == vectors.ToBus {
				c.written++
				if !b.waitProcessed(c.id, c.written) {
					t.Fatalf("frame %d: the CLI did not send %.200s", f.I, f.Summary)
				}
			}
			continue
		}
		rec, err := f.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if f.Dir == vectors.FromBus {
			got := readFrame(t, c.conn, 5*time.Second)
			if got == nil {
				t.Fatalf("frame %d on %s: connection closed, want %s", f.I, c.rec.Label, f.Summary)
			}
			if err := m.Match(rec, got); err != nil {
				t.Fatalf("frame %d on %s: %v\n got %s\nwant %.300s", f.I, c.rec.Label, err, summary(got), f.Summary)
			}
			if got[1] == byte(ubus.MsgHello) {
				c.id = binary.BigEndian.Uint32(got[4:])
			}
			continue
		}
		if _, err := c.conn.Write(m.Rewrite(rec)); err != nil {
			t.Fatalf("frame %d: %v", f.I, err)
		}
		if f.Malformed || f.Partial {
			// ubusd drops the connection without a word.
			if got := readFrame(t, c.conn, 5*time.Second); got != nil {
				t.Fatalf("frame %d: got %s after a malformed frame, want the connection closed", f.I, summary(got))
			}
			b.waitGone(c.id)
			c.closed = true
			continue
		}
		c.written++
		if !b.waitProcessed(c.id, c.written) {
			t.Fatalf("frame %d: not processed", f.I)
		}
	}
	for _, c := range conns {
		if c.live != nil {
			closeConn(c)
		} else if !c.closed {
			checkDrained(t, b, c)
		}
	}
}

func startLive(t *testing.T, v *vectors.File, rc *vectors.Conn, sock string, m *vectors.Mapper) *liveRun {
	l := &liveRun{step: v.Step(rc.Label), result: make(chan int, 1)}
	for _, a := range vectors.Args(rc.Command)[1:] {
		if a == "$SOCK" {
			a = sock
		}
		l.long = l.long || a == "listen" || a == "subscribe"
		l.args = append(l.args, m.Apply(a))
	}
	ctx, cancel := context.WithCancel(t.Context())
	l.cancel = cancel
	go func() { l.result <- ubuscli.Run(ctx, "ubus", l.args, &l.stdout, &l.stderr) }()
	return l
}

// finish ends the run (stopping listen and subscribe once they printed
// what the recording shows) and checks its output and exit status.
func (l *liveRun) finish(t *testing.T, m *vectors.Mapper) {
	t.Helper()
	if l.long {
		for start := time.Now(); m.Restore(l.stdout.String()) != l.step.Stdout && time.Since(start) < 5*time.Second; {
			time.Sleep(time.Millisecond)
		}
		l.cancel()
	}
	var code int
	select {
	case code = <-l.result:
	case <-time.After(60 * time.Second):
		t.Fatal("the CLI did not end")
	}
	l.cancel()
	if want := *l.step.ExitCode & 0xff; code != want {
		t.Errorf("exit status %d, want %d (stderr %q)", code, want, l.stderr.String())
	}
	if got := m.Restore(l.stdout.String()); got != l.step.Stdout {
		t.Errorf("stdout\n%s\nwant\n%s", got, l.step.Stdout)
	}
	got, want := l.stderr.String(), l.step.Stderr
	if line, _, ok := strings.Cut(want, "\nUsage:"); ok {
		if !strings.HasPrefix(got, line+"\nUsage: ubus ") {
			t.Errorf("stderr\n%s\nwant %s and the usage", got, line)
		}
	} else if got != want {
		t.Errorf("stderr\n%s\nwant\n%s", got, want)
	}
}

// checkDrained fails when the broker sent c more than the recording shows.
func checkDrained(t *testing.T, b *Broker, c *replayConn) {
	t.Helper()
	b.waitFlushed(c.id)
	if live := readFrame(t, c.conn, time.Millisecond); live != nil {
		t.Errorf("%s: unexpected frame %s", c.rec.Label, summary(live))
	}
}

// readFrame reads one frame; nil on EOF or when nothing comes in time.
func readFrame(t *testing.T, c *net.UnixConn, timeout time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	hdr := make([]byte, 12)
	if _, err := io.ReadFull(c, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		var op *net.OpError
		if errors.As(err, &op) {
			return nil
		}
		t.Fatal(err)
	}
	l := int(binary.BigEndian.Uint32(hdr[8:]) & 0xffffff)
	if l < 4 {
		t.Fatalf("frame with body length %d", l)
	}
	f := make([]byte, 8+l)
	copy(f, hdr)
	if _, err := io.ReadFull(c, f[12:]); err != nil {
		t.Fatal(err)
	}
	return f
}

func summary(f []byte) string {
	var m ubus.Message
	if err := m.UnmarshalBinary(f); err != nil {
		return err.Error()
	}
	s := m.String()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
