package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ibed "github.com/mwan3d/mwan3d/internal/bed"
)

// recorder writes a hook script that appends one line per run to a log:
// the script's name, then its whole environment sorted.
func recorder(t testing.TB, dir, name, extra string) (script, log string) {
	t.Helper()
	log = filepath.Join(dir, "log")
	script = filepath.Join(dir, name)
	if err := ibed.WriteRecorder(script, log, extra); err != nil {
		t.Fatal(err)
	}
	return script, log
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestHooksEnvironmentAndOrder(t *testing.T) {
	dir := t.TempDir()
	user, log := recorder(t, dir, "mwan3.user", "")
	hotplug, _ := recorder(t, dir, "hotplug-call", `[ "$1" = iface ] || exit 9`)
	h := &Hooks{UserScript: user, HotplugCall: hotplug, Log: testLogger(t)}
	h.Deliver(HookEvent{Action: "ifup", Interface: "wan", Device: "eth1"})
	h.Deliver(HookEvent{Action: "connected", Interface: "wan", Device: "eth1", FirstConnect: true})
	h.Deliver(HookEvent{Action: "disconnecting", Interface: "wan", Device: "eth1"})
	h.Deliver(HookEvent{Action: "disconnected", Interface: "wan", Device: "eth1"})
	h.Deliver(HookEvent{Action: "connected", Interface: "wan", Device: "eth1"})
	h.Deliver(HookEvent{Action: "disconnected", Interface: "wan", Shutdown: true})
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mwan3.user ACTION=ifup DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=connected DEVICE=eth1 FIRSTCONNECT=1 INTERFACE=wan",
		"mwan3.user ACTION=connected DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=disconnecting DEVICE=eth1 INTERFACE=wan",
		"mwan3.user ACTION=disconnecting DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=disconnected DEVICE=eth1 INTERFACE=wan",
		"mwan3.user ACTION=disconnected DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=connected DEVICE=eth1 FIRSTCONNECT= INTERFACE=wan",
		"mwan3.user ACTION=connected DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=disconnected DEVICE= INTERFACE=wan MWAN3_SHUTDOWN=1",
		"mwan3.user ACTION=disconnected DEVICE= INTERFACE=wan",
	}
	got := readLines(t, log)
	for i := range got {
		got[i] = strings.TrimSpace(got[i])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hook runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.Deliver(HookEvent{Action: "ifup", Interface: "wan"}) // after Close: dropped
	if n := len(readLines(t, log)); n != len(want) {
		t.Errorf("event after Close ran: %d lines", n)
	}
}

// TestHooksTimeout: a hanging hook is killed with its children after the
// timeout, and later events of the same interface still run.
func TestHooksTimeout(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "child-survived")
	user, log := recorder(t, dir, "mwan3.user",
		fmt.Sprintf(`[ "$ACTION" = ifup ] && { (sleep 2; touch %s) & sleep 30; }`, marker))
	h := &Hooks{UserScript: user, Timeout: 200 * time.Millisecond, Log: testLogger(t)}
	h.Deliver(HookEvent{Action: "ifup", Interface: "wan", Device: "eth1"})
	h.Deliver(HookEvent{Action: "ifdown", Interface: "wan"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, log); len(got) != 1 || !strings.Contains(got[0], "ACTION=ifdown") {
		t.Errorf("runs after a hung hook: %q", got)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hung hook's background child survived the kill")
	}
}

// TestHooksMissingAndFailing: missing scripts are skipped; a failing script
// does not stop the queue; interfaces run independently.
func TestHooksMissingAndFailing(t *testing.T) {
	dir := t.TempDir()
	user, log := recorder(t, dir, "mwan3.user", `[ "$INTERFACE" = bad ] && exit 3`)
	h := &Hooks{UserScript: user, HotplugCall: filepath.Join(dir, "none"), Log: testLogger(t)}
	for i := 0; i < 3; i++ {
		h.Deliver(HookEvent{Action: "connected", Interface: "bad"})
		h.Deliver(HookEvent{Action: "connected", Interface: "good"})
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, log); len(got) != 3 {
		t.Errorf("good interface ran %d times: %q", len(got), got)
	}
	none := &Hooks{UserScript: filepath.Join(dir, "missing")}
	none.Deliver(HookEvent{Action: "ifup", Interface: "wan"})
	if err := none.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
