package ubuscli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// The end-to-end test runs helpers in processes of their own by starting
// the test binary again with UBUSCLI_E2E_ROLE set.
func TestMain(m *testing.M) {
	switch os.Getenv("UBUSCLI_E2E_ROLE") {
	case "broker":
		os.Exit(runBroker(os.Getenv("UBUSCLI_E2E_SOCK")))
	case "server":
		os.Exit(runServer(os.Getenv("UBUSCLI_E2E_SOCK")))
	}
	os.Exit(m.Run())
}

// runBroker serves a ubustest broker until stdin closes.
func runBroker(path string) int {
	b, err := ubustest.Start(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.Close()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// runServer publishes an object until stdin closes.
func runServer(path string) int {
	ctx := context.Background()
	c, err := ubus.Dial(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	obj := &ubus.Object{Name: "e2e", Methods: []ubus.Method{
		{Name: "echo", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(r.Args) }},
		{Name: "status", Policy: []ubus.Arg{{Name: "section", Type: ubus.TypeString}},
			Handler: func(_ context.Context, r *ubus.Request) error {
				r.Defer()
				go func() {
					r.Reply(ubus.Table{{"interfaces", ubus.Table{{"wan", ubus.Table{
						{"status", "online"}, {"running", true}, {"uptime", int64(1 << 33)}, {"score", 0.5}}}}}})
					r.Complete(nil)
				}()
				return nil
			}},
		{Name: "fail", Handler: func(context.Context, *ubus.Request) error { return ubus.StatusNotSupported }},
	}}
	if err := c.AddObject(ctx, obj); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// helper is a process started from the test binary.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startHelper(t *testing.T, role, sock string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "UBUSCLI_E2E_ROLE="+role, "UBUSCLI_E2E_SOCK="+sock)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("%s helper: %q %v", role, line, err)
	}
}

// buildCLI builds the mwan3d binary.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mwan3d")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mwan3d/mwan3d/cmd/mwan3d")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type result struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"ubus"}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// TestTwoProcesses: an object served by one process (package ubus,
// AddObject) is called by another (`mwan3d ubus call`, built with go
// build), through the broker in the test process and through a broker
// running in a third process; both give the expected, identical results.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the mwan3d binary")
	}
	bin := buildCLI(t)
	calls := []struct {
		args []string
		want result
	}{
		{[]string{"call", "e2e", "echo", `{"a":1,"b":[true,null],"c":3000000000,"d":2.0}`},
			result{stdout: "{\n\t\"a\": 1,\n\t\"b\": [\n\t\ttrue,\n\t\tnull\n\t],\n\t\"c\": 3000000000,\n\t\"d\": 2.000000\n}\n"}},
		{[]string{"-S", "call", "e2e", "status", `{"section":"interfaces"}`},
			result{stdout: `{"interfaces":{"wan":{"status":"online","running":true,"uptime":8589934592,"score":0.500000}}}` + "\n"}},
		{[]string{"call", "e2e", "fail"},
			result{stderr: "Command failed: ubus call e2e fail (Operation not supported)\n", code: 248}},
		{[]string{"call", "e2e", "nosuch"},
			result{stderr: "Command failed: ubus call e2e nosuch (Method not found)\n", code: 253}},
		{[]string{"call", "e2e", "status", `{"section":1}`}, // policy mismatch
			result{stderr: "Command failed: ubus call e2e status {\"section\":1} (Invalid argument)\n", code: 254}},
		{[]string{"call", "gone", "echo"}, result{stderr: "Command failed: Not found\n", code: 4}},
		{[]string{"list"}, result{stdout: "e2e\n"}},
		{[]string{"send", "ubus.x", "{}"}, result{stderr: "Command failed: Permission denied\n", code: 6}},
	}
	var runs [2][]result
	for i, where := range []string{"in-process", "separate-process"} {
		t.Run(where, func(t *testing.T) {
			var sock string
			if where == "in-process" {
				sock = ubustest.New(t).Path()
			} else {
				sock = filepath.Join(t.TempDir(), "ubus.sock")
				startHelper(t, "broker", sock)
			}
			startHelper(t, "server", sock)
			for _, c := range calls {
				got := runCLI(t, bin, append([]string{"-s", sock}, c.args...)...)
				if c.want.code == 254 {
					// INVALID_ARGUMENT: the tool also prints its usage.
					got.stderr, _, _ = strings.Cut(got.stderr, "Usage:")
				}
				if got != c.want {
					t.Errorf("ubus %s:\ngot  %+v\nwant %+v", strings.Join(c.args, " "), got, c.want)
				}
				runs[i] = append(runs[i], got)
			}
		})
	}
	if fmt.Sprint(runs[0]) != fmt.Sprint(runs[1]) {
		t.Errorf("results differ:\n%v\n%v", runs[0], runs[1])
	}
}
