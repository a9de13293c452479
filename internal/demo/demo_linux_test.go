//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/testbed"
)

// demoMainEnv makes the test binary run the demo itself: the tests start
// it as a child process, as `make demo` would, with its own pid (the
// testbed names its namespaces after it) and temporary directory.
const demoMainEnv = "MWAN3D_DEMO_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(demoMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(bed.Main(m))
}

// syncBuffer is an output buffer safe to read while the child writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child is a demo run in a child process.
type child struct {
	cmd            *exec.Cmd
	tmp            string
	stdout, stderr syncBuffer
}

// startDemo starts the demo with args (and the daemon binary) in a child
// whose temporary directory is a fresh one of the test's; its output goes
// to stdout when not nil, else to c.stdout.
func startDemo(t *testing.T, stdout *os.File, args ...string) *child {
	t.Helper()
	testbed.RequireRoot(t)
	bin, err := bed.Binary()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{tmp: t.TempDir()}
	c.cmd = exec.Command(os.Args[0], append([]string{"-binary", bin}, args...)...)
	c.cmd.Env = append(os.Environ(), demoMainEnv+"=1", "TMPDIR="+c.tmp)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if stdout != nil {
		c.cmd.Stdout = stdout
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// wait waits for the child's exit (killing it after timeout) and returns
// its exit code.
func (c *child) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-done
		t.Fatalf("the demo did not end within %v; stdout:\n%s\nstderr:\n%s", timeout, c.stdout.String(), c.stderr.String())
	}
	return c.cmd.ProcessState.ExitCode()
}

// leftovers lists what the child left: namespaces named after its pid,
// files in its temporary directory, processes whose command line names
// that directory (the daemon's does).
func (c *child) leftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	marker := "-open-" + strconv.Itoa(c.cmd.Process.Pid) + "-"
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "mwtb-") && strings.Contains(e.Name(), marker) {
			left = append(left, "namespace "+e.Name())
		}
	}
	files, err := os.ReadDir(c.tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		left = append(left, "temporary "+filepath.Join(c.tmp, f.Name()))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, []byte(c.tmp)) {
			left = append(left, "process "+p+": "+string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})))
		}
	}
	return left
}

// TestDemoEndToEnd runs the demo on fast tracking in non-terminal mode:
// the output shows failover and failback, and nothing is left.
func TestDemoEndToEnd(t *testing.T) {
	c := startDemo(t, nil, "-interval", "1", "-cut-after", "3s", "-outage", "5s", "-duration", "21s")
	code := c.wait(t, 80*time.Second)
	out := c.stdout.String()
	if code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, c.stderr.String())
	}
	t.Logf("demo output:\n%s", out)
	if strings.Contains(out, "\x1b[") {
		t.Error("ANSI sequences in the output to a pipe")
	}
	for _, want := range []string{
		"timeline, from the moment every interface is online:",
		"cut wan's carrier",
		"mwan3d  wan disconnected (eth1): status offline, out of the policies",
		"mwan3d  wan6 disconnected (eth1): status offline, out of the policies",
		"FAILOVER: wan offline, new connections go to wanb",
		"restored wan",
		"mwan3d  wan connected (eth1): status online, in the policies",
		"FAILBACK: wan online again",
		"failover wan   ok:", "failback wan   ok:", "failover wan6  ok:", "failback wan6  ok:",
		"teardown: 5 network namespaces and 2 directories removed, mwan3d (pid ",
		"; nothing left",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	// A snapshot in which wan carried none of the window's new
	// connections (wanb carried them), and a later one in which wan,
	// online, carried some again.
	none := regexp.MustCompile(`(?m)^wan +eth1 +offline .* 0 +0% \.{20}$`).FindStringIndex(out)
	back := regexp.MustCompile(`(?m)^wan +eth1 +online .* [1-9][0-9]?% #+\.*$`).FindAllStringIndex(out, -1)
	if none == nil {
		t.Error("no snapshot shows wan offline and carrying no new connections")
	} else if len(back) == 0 || back[len(back)-1][0] < none[0] {
		t.Error("no snapshot after the failover shows wan online carrying new connections again")
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// TestDemoSIGTERM stops the demo early with SIGTERM, with the demo's own
// quality probe: it ends with status 0 and leaves nothing.
func TestDemoSIGTERM(t *testing.T) {
	c := startDemo(t, nil, "-quality", "demo")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for !strings.Contains(c.stdout.String(), "NEW CONNECTIONS, LAST") {
		select {
		case <-ctx.Done():
			_ = c.cmd.Process.Kill()
			t.Fatalf("no snapshot within 60s; stdout:\n%s\nstderr:\n%s", c.stdout.String(), c.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := c.wait(t, 60*time.Second)
	out := c.stdout.String()
	if code != 0 {
		t.Fatalf("exit %d after SIGTERM; stdout:\n%s\nstderr:\n%s", code, out, c.stderr.String())
	}
	for _, want := range []string{
		"LATENCY, JITTER, LOSS: the demo's own pings from the router to each WAN's gateway",
		"demo    interrupted",
		"failover wan   not tried: the demo ended before the cut",
		"; nothing left",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}

// TestDemoBrokenPipe closes the demo's output early, as `make demo | head`
// does: the demo stops, tears everything down and ends with status 0.
func TestDemoBrokenPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := startDemo(t, w)
	w.Close() // the child has its own copy
	seen := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		var got []byte
		for !bytes.Contains(got, []byte("NEW CONNECTIONS, LAST")) {
			n, err := r.Read(buf)
			if err != nil {
				seen <- fmt.Errorf("output ended before the first snapshot: %w: %s", err, got)
				return
			}
			got = append(got, buf[:n]...)
		}
		seen <- nil
	}()
	select {
	case err := <-seen:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(60 * time.Second):
		t.Error("no snapshot within 60s")
	}
	r.Close()
	if code := c.wait(t, 60*time.Second); code != 0 {
		t.Errorf("exit %d after its output closed; stderr:\n%s", code, c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), "demo: output: ") {
		t.Errorf("stderr does not say why it stopped:\n%s", c.stderr.String())
	}
	if left := c.leftovers(t); len(left) > 0 {
		t.Errorf("left behind: %q", left)
	}
}
