package ubuscli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus/internal/vectors"
)

// buffer is a bytes.Buffer safe for a writer and a reader on different
// goroutines.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestRecordedRuns replays every recorded run of the ubus tool (list,
// call, listen, send, subscribe, wait_for) with this package instead: a
// fake ubusd plays the recorded ubusd side of the connection and checks
// that every frame sent is the one the real tool sent, and the output,
// error messages and exit status must be the recorded ones.
func TestRecordedRuns(t *testing.T) {
	names, err := vectors.Names()
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, name := range names {
		v, err := vectors.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, conn := range v.Connections {
			words := vectors.Args(conn.Command)
			if len(words) == 0 || words[0] != "ubus" || strings.Contains(conn.Command, " monitor") {
				continue
			}
			runs++
			t.Run(name+"/"+conn.Label, func(t *testing.T) {
				t.Parallel()
				replayRun(t, v, conn, words[1:])
			})
		}
	}
	if runs < 40 {
		t.Errorf("only %d runs found", runs)
	}
}

func replayRun(t *testing.T, v *vectors.File, conn vectors.Conn, args []string) {
	step := v.Step(conn.Label)
	script := vectors.NewScript(t, v, conn.Conn)
	long := false // listen and subscribe run until stopped
	for i, a := range args {
		if a == "$SOCK" {
			args[i] = script.Path()
		}
		if a == "listen" || a == "subscribe" {
			long = true
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr buffer
	result := make(chan int, 1)
	c := &cli{prog: "ubus", timeout: 30, stdout: &stdout, stderr: &stderr, ready: make(chan struct{})}
	go func() { result <- c.run(ctx, args) }()
	if long {
		if !script.Done() {
			t.Fatal("conversation incomplete")
		}
		select {
		case <-c.ready:
		case code := <-result:
			t.Fatalf("ended with status %d: %s", code, stderr.String())
		}
		for start := time.Now(); stdout.String() != step.Stdout && time.Since(start) < 5*time.Second; {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}
	var code int
	select {
	case code = <-result:
	case <-time.After(60 * time.Second):
		t.Fatal("command did not end")
	}
	if !long && !script.Done() {
		t.Error("conversation incomplete")
	}
	if want := *step.ExitCode & 0xff; code != want {
		t.Errorf("exit status %d, want %d", code, want)
	}
	if got := stdout.String(); got != step.Stdout {
		t.Errorf("stdout\n%s\nwant\n%s", got, step.Stdout)
	}
	got, want := stderr.String(), step.Stderr
	if strings.Contains(want, "\nUsage:") {
		// Our usage text names our program and leaves out monitor.
		line, _, _ := strings.Cut(want, "\n")
		if !strings.HasPrefix(got, line+"\nUsage: ubus [<options>] <command>") {
			t.Errorf("stderr\n%s\nwant %s and the usage", got, line)
		}
	} else if got != want {
		t.Errorf("stderr\n%s\nwant\n%s", got, want)
	}
}
