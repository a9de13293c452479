package vectors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Script is a fake ubusd that plays the ubusd side of one recorded
// connection: it sends the recorded ubusd→client frames and checks that
// every frame the client sends is byte for byte the recorded
// client→ubusd frame. Ids need no mapping: the client only learns the
// recorded ones.
type Script struct {
	t      testing.TB
	path   string
	ln     *net.UnixListener
	frames []Frame

	mu       sync.Mutex
	cond     *sync.Cond
	handled  int // frames played so far
	finished bool
	conn     net.Conn
	wg       sync.WaitGroup
}

// NewScript serves connection conn of v on a socket in a temporary
// directory. It accepts one client. Failures are reported with t.Errorf;
// the script stops at the first one.
func NewScript(t testing.TB, v *File, conn int) *Script {
	t.Helper()
	dir, err := os.MkdirTemp("", "ubusscript")
	if err != nil {
		t.Fatal(err)
	}
	s := &Script{t: t, path: filepath.Join(dir, "ubus.sock"), frames: v.FramesOf(conn)}
	s.cond = sync.NewCond(&s.mu)
	s.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: s.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Go(s.serve)
	t.Cleanup(func() {
		s.ln.Close()
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.finished = true
		s.cond.Broadcast()
		s.mu.Unlock()
		s.wg.Wait()
		os.RemoveAll(dir)
	})
	return s
}

// Path returns the socket path.
func (s *Script) Path() string { return s.path }

// Wait blocks until the frame with global index i (Frame.I) has been
// played, or the script ended.
func (s *Script) Wait(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.finished && (s.handled == 0 || s.frames[s.handled-1].I < i) {
		s.cond.Wait()
	}
}

// Done blocks until every frame has been played (or the script failed) and
// reports whether it completed.
func (s *Script) Done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.finished && s.handled < len(s.frames) {
		s.cond.Wait()
	}
	return s.handled == len(s.frames)
}

func (s *Script) serve() {
	defer func() {
		s.mu.Lock()
		s.finished = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	c, err := s.ln.Accept()
	s.ln.Close()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
	defer c.Close()
	for _, f := range s.frames {
		rec, err := f.Bytes()
		if err != nil {
			s.t.Errorf("frame %d: %v", f.I, err)
			return
		}
		if f.Dir == FromBus {
			if _, err := c.Write(rec); err != nil {
				s.t.Errorf("frame %d: write: %v", f.I, err)
				return
			}
		} else {
			got, err := readFrame(c, 10*time.Second)
			if err != nil {
				s.t.Errorf("frame %d: client sent nothing (%v), want %.200s", f.I, err, f.Summary)
				return
			}
			if !bytes.Equal(got, rec) {
				s.t.Errorf("frame %d: client sent\n%x\nwant %.200s\n%x", f.I, got, f.Summary, rec)
				return
			}
		}
		s.mu.Lock()
		s.handled++
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	// The conversation is over: the client must not send anything else.
	if got, err := readFrame(c, 10*time.Second); err == nil {
		s.t.Errorf("client sent an unexpected frame %x after the recorded conversation", got)
	}
}

// readFrame reads one ubus frame.
func readFrame(c net.Conn, timeout time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	hdr := make([]byte, 12)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint32(hdr[8:]) & 0xffffff)
	if l < 4 {
		return nil, errors.New("bad frame length")
	}
	f := make([]byte, 8+l)
	copy(f, hdr)
	if _, err := io.ReadFull(c, f[12:]); err != nil {
		return nil, fmt.Errorf("truncated frame: %w", err)
	}
	return f, nil
}
