package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// initEnv is the init script installed in a fake root with test doubles of
// rc.common and procd (testdata/fakeroot) that log every procd call.
type initEnv struct {
	root, log, script string
	env               []string // for every action
}

func newInitEnv(t *testing.T) *initEnv {
	t.Helper()
	root, log := fakeInstroot(t)
	script := filepath.Join(root, "etc/init.d/mwan3")
	writeFile(t, script, readFile(t, filepath.Join(filesDir, "etc/init.d/mwan3")), 0o755)
	return &initEnv{root: root, log: log, script: script, env: []string{"IPKG_INSTROOT=" + root, "FAKE_LOG=" + log}}
}

// do runs `/etc/init.d/mwan3 ACTION` through the fake rc.common, with a
// fresh log.
func (e *initEnv) do(t *testing.T, action string, env ...string) (string, int) {
	t.Helper()
	writeFile(t, e.log, "", 0o644)
	return run(t, e.root, append(slices.Clone(e.env), env...), "sh", filepath.Join(e.root, "etc/rc.common"), e.script, action)
}

// redirect points the script's state directory and pidfile into the fake
// root (sourced by the fake rc.common after the init script) and returns
// them.
func (e *initEnv) redirect(t *testing.T) (statusDir, pidfile string) {
	t.Helper()
	statusDir = filepath.Join(e.root, "var/run/mwan3")
	pidfile = filepath.Join(e.root, "var/run/mwan3d.pid")
	overrides := filepath.Join(e.root, "overrides.sh")
	writeFile(t, overrides, "STATUS_DIR='"+statusDir+"'\nPIDFILE='"+pidfile+"'\n", 0o644)
	e.env = append(e.env, "FAKE_OVERRIDES="+overrides, "FAKE_PIDFILE="+pidfile)
	return statusDir, pidfile
}

// startLines is what `start` tells procd.
func (e *initEnv) startLines() []string {
	return []string{
		"procd_open_service [mwan3] [" + e.script + "]",
		"procd_open_instance [mwan3d]",
		"procd_set_param [command] [/usr/sbin/mwan3d] [run] [-c] [/etc/config/mwan3]",
		"procd_set_param [respawn]",
		"procd_set_param [stdout] [1]",
		"procd_set_param [stderr] [1]",
		"procd_set_param [term_timeout] [35]",
		"procd_set_param [pidfile] [/var/run/mwan3d.pid]",
		"procd_close_instance",
		"procd_add_reload_trigger [mwan3]",
		"procd_close_service [set]",
	}
}

func checkLog(t *testing.T, e *initEnv, want []string) {
	t.Helper()
	if got := lines(t, e.log); !slices.Equal(got, want) {
		t.Errorf("procd calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestInitScriptStart checks the one procd instance: the daemon in the
// foreground on the mwan3 config, respawned with procd's defaults, output
// to syslog, a pidfile and 35 s between SIGTERM and SIGKILL; and the only
// trigger, a reload on changes of the mwan3 UCI package.
func TestInitScriptStart(t *testing.T) {
	e := newInitEnv(t)
	if out, code := e.do(t, "start"); code != 0 {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	checkLog(t, e, e.startLines())
}

func TestInitScriptReload(t *testing.T) {
	e := newInitEnv(t)
	// A running daemon re-reads its configuration on SIGHUP: no restart.
	if out, code := e.do(t, "reload", "FAKE_PROCD_RUNNING=1"); code != 0 {
		t.Fatalf("reload: exit %d\n%s", code, out)
	}
	checkLog(t, e, []string{
		"procd_running [mwan3] [mwan3d]",
		"procd_send_signal [mwan3] [mwan3d] [HUP]",
	})
	// A stopped one is started, as legacy's reload (stop + start) did.
	if out, code := e.do(t, "reload", "FAKE_PROCD_RUNNING=0"); code != 0 {
		t.Fatalf("reload: exit %d\n%s", code, out)
	}
	checkLog(t, e, append([]string{"procd_running [mwan3] [mwan3d]"}, e.startLines()...))
}

func TestInitScriptEnable(t *testing.T) {
	e := newInitEnv(t)
	if out, code := e.do(t, "enable"); code != 0 {
		t.Fatalf("enable: exit %d\n%s", code, out)
	}
	// START=19: before netifd (network, 20), as legacy.
	link, err := os.Readlink(filepath.Join(e.root, "etc/rc.d/S19mwan3"))
	if err != nil || link != "../init.d/mwan3" {
		t.Errorf("rc.d link: %q, %v", link, err)
	}
}

// fakeDaemon starts a stand-in for mwan3d (its process name is mwan3d) that
// creates statusDir, writes its pid like procd does, and on SIGTERM takes a
// moment to clean up, removes statusDir, logs "daemon cleaned up" and exits.
// The returned channel is closed once the process is gone.
func fakeDaemon(t *testing.T, e *initEnv, statusDir, pidfile string) <-chan struct{} {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mwan3d")
	writeFile(t, bin, `#!/bin/sh
trap 'sleep 0.2; rmdir "$STATUS_DIR"; echo "daemon cleaned up" >>"$FAKE_LOG"; exit 0' TERM
mkdir -p "$STATUS_DIR"
echo $$ >"$PIDFILE"
while :; do sleep 0.05; done
`, 0o755)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "STATUS_DIR=" + statusDir, "PIDFILE=" + pidfile, "FAKE_LOG=" + e.log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() // reaps it, as procd does
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(pidfile)
		if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(cmd.Process.Pid) && exists(statusDir) {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake daemon did not start")
		}
	}
}

// TestInitScriptRunning checks legacy's "running" (the state directory
// exists) made robust: only with a live mwan3d behind the pidfile.
func TestInitScriptRunning(t *testing.T) {
	e := newInitEnv(t)
	statusDir, pidfile := e.redirect(t)
	ask := func(want int, why string) {
		t.Helper()
		if out, code := e.do(t, "running"); code != want {
			t.Errorf("running %s: exit %d, want %d\n%s", why, code, want, out)
		}
	}
	ask(1, "with nothing there")

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, pidfile, strconv.Itoa(dead.Process.Pid)+"\n", 0o644)
	if err := os.MkdirAll(statusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ask(1, "with a state directory left by a dead daemon")
	writeFile(t, pidfile, strconv.Itoa(os.Getpid())+"\n", 0o644)
	ask(1, "with a pidfile naming another program")
	if err := os.Remove(statusDir); err != nil {
		t.Fatal(err)
	}

	fakeDaemon(t, e, statusDir, pidfile)
	ask(0, "with the daemon up")
	if err := os.Remove(statusDir); err != nil {
		t.Fatal(err)
	}
	ask(1, "while the daemon has no state up")
}

// TestInitScriptStop checks that stop hands the daemon to procd's SIGTERM and
// returns only once the daemon has cleaned up and exited.
func TestInitScriptStop(t *testing.T) {
	e := newInitEnv(t)
	statusDir, pidfile := e.redirect(t)
	done := fakeDaemon(t, e, statusDir, pidfile)
	if out, code := e.do(t, "stop"); code != 0 {
		t.Fatalf("stop: exit %d\n%s", code, out)
	}
	checkLog(t, e, []string{"procd_kill [mwan3] []", "daemon cleaned up"})
	if exists(statusDir) {
		t.Error("stop returned before the daemon removed its state")
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the daemon is still running after stop")
	}

	// Nothing running: stop returns at once.
	if out, code := e.do(t, "stop"); code != 0 {
		t.Fatalf("second stop: exit %d\n%s", code, out)
	}
	checkLog(t, e, []string{"procd_kill [mwan3] []"})
}

// TestInitScriptRestart checks that restart starts the new instance only
// after the old daemon has finished its cleanup.
func TestInitScriptRestart(t *testing.T) {
	e := newInitEnv(t)
	statusDir, pidfile := e.redirect(t)
	fakeDaemon(t, e, statusDir, pidfile)
	if out, code := e.do(t, "restart"); code != 0 {
		t.Fatalf("restart: exit %d\n%s", code, out)
	}
	start := e.startLines()
	start[7] = "procd_set_param [pidfile] [" + pidfile + "]"
	checkLog(t, e, append([]string{"procd_kill [mwan3] []", "daemon cleaned up"}, start...))
}
