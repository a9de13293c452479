package ubuscli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

func TestArgumentsAndErrors(t *testing.T) {
	b := ubustest.New(t)
	srv, err := ubus.Dial(t.Context(), b.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	obj := &ubus.Object{Name: "obj", Methods: []ubus.Method{
		{Name: "echo", Policy: []ubus.Arg{{Name: "n", Type: ubus.TypeInt32}},
			Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(r.Args) }},
		{Name: "slow", Handler: func(ctx context.Context, r *ubus.Request) error {
			<-ctx.Done()
			return nil
		}},
	}}
	if err := srv.AddObject(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
	sock := b.Path()
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string // prefix
	}{
		{nil, 1, "", "Usage: ubus [<options>]"},
		{[]string{"-x", "list"}, 1, "", "Usage: "},
		{[]string{"-s"}, 1, "", "Usage: "},
		{[]string{"-s", missing, "list"}, 255, "", "Failed to connect to ubus\n"},
		{[]string{"-S", "-s", missing, "list"}, 255, "", ""},
		{[]string{"-s", sock, "frobnicate"}, 254, "", "Usage: "},
		{[]string{"-s", sock, "call", "obj"}, 254, "", "Usage: "},
		{[]string{"-s", sock, "list", "a", "b"}, 254, "", "Usage: "},
		{[]string{"-s", sock, "list"}, 0, "obj\n", ""},
		{[]string{"-s" + sock, "list", "-v", "obj"}, 0, "'obj' @%08x\n\t\"echo\":{\"n\":\"Integer\"}\n\t\"slow\":{}\n", ""},
		{[]string{"-vs", sock, "-S", "list"}, 0, "obj\n", ""},
		{[]string{"-s", sock, "call", "obj", "echo", `{"n":7}`}, 0, "{\n\t\"n\": 7\n}\n", ""},
		{[]string{"-S", "-s", sock, "call", "obj", "echo", `{"n":7}`}, 0, "{\"n\":7}\n", ""},
		{[]string{"-s", sock, "call", "obj", "nosuch"}, 253, "", "Command failed: ubus call obj nosuch (Method not found)\n"},
		{[]string{"-S", "-s", sock, "call", "obj", "nosuch"}, 3, "", ""},
		{[]string{"-s", sock, "call", "obj", "echo", "[1]"}, 244, "", "Command failed: ubus call obj echo [1] (Parsing message data failed)\n"},
		{[]string{"-s", sock, "-t", "1", "call", "obj", "slow"}, 249, "", "Command failed: ubus call obj slow (Request timed out)\n"},
		{[]string{"-s", sock, "send", "x", "{bad"}, 12, "", "Command failed: Parsing message data failed\n"},
		{[]string{"-s", sock, "send", "x", `{"a":1}`}, 0, "", ""},
		{[]string{"-s", sock, "-t", "1", "wait_for", "obj"}, 0, "", ""},
		{[]string{"-s", sock, "-t1", "wait_for", "obj", "not.there"}, 7, "", "Command failed: Request timed out\n"},
		{[]string{"-s", sock, "-t", "1", "listen", ""}, 255, "", "Error while registering for event '': Permission denied\n"},
		{[]string{"-s", sock, "subscribe", "not.there"}, 4, "", "Command failed: Not found\n"},
	}
	for _, tc := range tests {
		var stdout, stderr buffer
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		code := Run(ctx, "ubus", tc.args, &stdout, &stderr)
		cancel()
		want := strings.ReplaceAll(tc.stdout, "%08x", fmt.Sprintf("%08x", obj.ID()))
		if code != tc.code || stdout.String() != want || !strings.HasPrefix(stderr.String(), tc.stderr) ||
			tc.stderr == "" && stderr.String() != "" {
			t.Errorf("ubus %q: exit %d, stdout %q, stderr %q; want %d, %q, %q…",
				tc.args, code, stdout.String(), stderr.String(), tc.code, want, tc.stderr)
		}
	}
}

// TestListenLifetime: -t bounds listen, and events arriving meanwhile are
// printed.
func TestListenLifetime(t *testing.T) {
	b := ubustest.New(t)
	sender, err := ubus.Dial(t.Context(), b.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	var stdout, stderr buffer
	c := &cli{prog: "ubus", timeout: 30, stdout: &stdout, stderr: &stderr, ready: make(chan struct{})}
	done := make(chan int, 1)
	go func() { done <- c.run(t.Context(), []string{"-s", b.Path(), "-t", "1", "listen", "test.*", "other"}) }()
	<-c.ready
	if err := sender.Send(t.Context(), "test.one", ubus.Table{{"n", 1}}); err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(t.Context(), "other", nil); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
	if want := "{ \"test.one\": {\"n\":1} }\n{ \"other\": {} }\n"; stdout.String() != want {
		t.Errorf("printed %q, want %q", stdout.String(), want)
	}
}
