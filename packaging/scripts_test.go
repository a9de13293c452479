package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// allScripts lists every shell script of the package and its tooling: the
// shipped files, build.sh, the maintainer scripts and the test doubles.
func allScripts(t *testing.T) []string {
	t.Helper()
	var list []string
	for _, s := range shippedScripts {
		list = append(list, abs(t, filepath.Join(filesDir, s)))
	}
	list = append(list, abs(t, buildScript),
		abs(t, filepath.Join(fakeRoot, "etc/rc.common")),
		abs(t, filepath.Join(fakeRoot, "lib/functions.sh")),
		abs(t, filepath.Join(fakeRoot, "lib/functions/procd.sh")))
	dir := controlScripts(t)
	for _, s := range []string{"postinst", "prerm", "postinst-pkg"} {
		list = append(list, filepath.Join(dir, s))
	}
	return list
}

func TestShellSyntax(t *testing.T) {
	shells := [][]string{{"sh", "-n"}}
	if _, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, []string{"busybox", "sh", "-n"})
	} else {
		t.Log("busybox not installed: checking with sh (dash) only")
	}
	for _, script := range allScripts(t) {
		for _, sh := range shells {
			if out, code := run(t, ".", nil, sh[0], append(sh[1:], script)...); code != 0 {
				t.Errorf("%s %s: exit %d\n%s", strings.Join(sh, " "), script, code, out)
			}
		}
	}
}

// shellcheck returns the path of shellcheck, installing it with apt-get
// when it is missing and the test runs as root.
func shellcheck(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("shellcheck"); err == nil {
		return path
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		install := exec.CommandContext(ctx, "apt-get", "install", "-y", "-qq", "shellcheck")
		install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := install.CombinedOutput(); err != nil {
			t.Logf("apt-get install shellcheck: %v\n%s", err, out)
		}
		if path, err := exec.LookPath("shellcheck"); err == nil {
			return path
		}
	}
	msg := "shellcheck is not installed and could not be installed (make deps installs it as root)"
	if os.Getenv("MWAN3D_REQUIRE_ROOT_TESTS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestShellcheck(t *testing.T) {
	sc := shellcheck(t)
	args := append([]string{"-s", "sh"}, allScripts(t)...)
	if out, code := run(t, ".", nil, sc, args...); code != 0 {
		t.Errorf("shellcheck: exit %d\n%s", code, out)
	}
}

// fakeInstroot copies the test doubles of OpenWrt's libraries into a new
// directory used as IPKG_INSTROOT, and returns it with the log they write.
func fakeInstroot(t *testing.T) (root, log string) {
	t.Helper()
	root = t.TempDir()
	if err := os.CopyFS(root, os.DirFS(fakeRoot)); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(root, "calls.log")
	writeFile(t, log, "", 0o644)
	return root, log
}

// lines returns the log's lines.
func lines(t *testing.T, log string) []string {
	t.Helper()
	s := strings.TrimSuffix(readFile(t, log), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestMigrateFlushConntrack(t *testing.T) {
	script := abs(t, filepath.Join(filesDir, "etc/uci-defaults/mwan3-migrate-flush_conntrack"))
	tests := []struct {
		name     string
		sections string
		opts     []string
		want     []string
	}{
		{"always", "interface:wan", []string{"FAKE_OPT_wan_flush_conntrack=always"}, []string{
			"uci_remove [mwan3] [wan] [flush_conntrack]",
			"uci_add_list [mwan3] [wan] [flush_conntrack] [ifup]",
			"uci_add_list [mwan3] [wan] [flush_conntrack] [ifdown]",
		}},
		{"never", "interface:wan", []string{"FAKE_OPT_wan_flush_conntrack=never"}, []string{
			"uci_remove [mwan3] [wan] [flush_conntrack]",
		}},
		{"list form kept", "interface:wan", []string{"FAKE_OPT_wan_flush_conntrack=ifup disconnected"}, nil},
		{"unset", "interface:wan", nil, nil},
		{"only interfaces", "member:m1 interface:wanb rule:r1", []string{
			"FAKE_OPT_m1_flush_conntrack=always", "FAKE_OPT_r1_flush_conntrack=never", "FAKE_OPT_wanb_flush_conntrack=never",
		}, []string{
			"uci_remove [mwan3] [wanb] [flush_conntrack]",
		}},
		{"several", "interface:wan interface:wanb interface:lte", []string{
			"FAKE_OPT_wan_flush_conntrack=always", "FAKE_OPT_lte_flush_conntrack=never",
		}, []string{
			"uci_remove [mwan3] [wan] [flush_conntrack]",
			"uci_add_list [mwan3] [wan] [flush_conntrack] [ifup]",
			"uci_add_list [mwan3] [wan] [flush_conntrack] [ifdown]",
			"uci_remove [mwan3] [lte] [flush_conntrack]",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, log := fakeInstroot(t)
			env := append([]string{"IPKG_INSTROOT=" + root, "FAKE_LOG=" + log, "FAKE_SECTIONS=" + tc.sections}, tc.opts...)
			if out, code := run(t, root, env, "sh", script); code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			want := append(append([]string{"config_load [mwan3]"}, tc.want...), "uci_commit [mwan3]")
			if got := lines(t, log); !slices.Equal(got, want) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestControlWrappers(t *testing.T) {
	dir := controlScripts(t)
	root, log := fakeInstroot(t)
	for _, tc := range []struct {
		script string
		env    []string
		want   []string
	}{
		{"postinst", nil, []string{"default_postinst [" + dir + "/postinst] [configure] [x y]"}},
		{"postinst", []string{"IPKG_NO_SCRIPT=1"}, nil},
		{"prerm", nil, []string{"default_prerm [" + dir + "/prerm] [configure] [x y]"}},
	} {
		writeFile(t, log, "", 0o644)
		env := append([]string{"IPKG_INSTROOT=" + root, "FAKE_LOG=" + log}, tc.env...)
		if out, code := run(t, dir, env, "sh", filepath.Join(dir, tc.script), "configure", "x y"); code != 0 {
			t.Fatalf("%s %q: exit %d\n%s", tc.script, tc.env, code, out)
		}
		if got := lines(t, log); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: calls %q, want %q", tc.script, tc.env, got, tc.want)
		}
	}
	// Without OpenWrt's library (a foreign root) the scripts do nothing.
	for _, s := range []string{"postinst", "prerm"} {
		if out, code := run(t, dir, []string{"IPKG_INSTROOT=" + t.TempDir()}, "sh", filepath.Join(dir, s)); code != 0 {
			t.Errorf("%s without /lib/functions.sh: exit %d\n%s", s, code, out)
		}
	}
}

// legacyFiles are what legacy mwan3 may leave behind that postinst removes.
var (
	legacyPlugins = []string{"/usr/share/rpcd/ucode/mwan3", "/usr/libexec/rpcd/mwan3"}
	legacyHotplug = []string{"/etc/hotplug.d/iface/15-mwan3", "/etc/hotplug.d/iface/16-mwan3-user"}
)

// fakeCommands writes a ubus stand-in (FAKE_UBUS_MWAN3=1: the object exists)
// into a new directory for PATH; every call is appended to log.
func fakeCommands(t *testing.T, log string) string {
	t.Helper()
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "ubus"), `#!/bin/sh
echo "ubus $*" >>"`+log+`"
[ "$1 $2" = "list mwan3" ] && [ "${FAKE_UBUS_MWAN3:-0}" = 1 ] && echo mwan3 && exit 0
exit 4
`, 0o755)
	return bin
}

func TestPostinstImageBuild(t *testing.T) {
	script := filepath.Join(controlScripts(t), "postinst-pkg")
	root := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls.log")
	keep := filepath.Join(root, "etc/hotplug.d/iface/20-other")
	for _, f := range append(slices.Clone(legacyPlugins), legacyHotplug...) {
		writeFile(t, filepath.Join(root, f), "legacy\n", 0o755)
	}
	writeFile(t, keep, "other\n", 0o755)
	env := []string{"IPKG_INSTROOT=" + root, "PATH=" + fakeCommands(t, log) + ":" + os.Getenv("PATH"), "FAKE_UBUS_MWAN3=1"}
	if out, code := run(t, root, env, "sh", script); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, f := range append(slices.Clone(legacyPlugins), legacyHotplug...) {
		if exists(filepath.Join(root, f)) {
			t.Errorf("%s left in the image", f)
		}
	}
	if !exists(keep) {
		t.Error("postinst removed another package's hotplug script")
	}
	if exists(log) {
		t.Errorf("postinst talked to the build host's ubus: %s", readFile(t, log))
	}
	// Nothing to remove is fine too.
	if out, code := run(t, root, env, "sh", script); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
}

// TestPostinstOnDevice runs postinst-pkg with an empty IPKG_INSTROOT, as
// opkg does on a router, inside a private mount namespace whose /etc and /usr
// are overlays, so that the legacy files and a stand-in /etc/init.d/rpcd can
// live at their real paths without touching the host.
func TestPostinstOnDevice(t *testing.T) {
	requireRoot(t, "mount namespace with overlays on /etc and /usr")
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed")
	}
	script := filepath.Join(controlScripts(t), "postinst-pkg")
	tests := []struct {
		name        string
		plugins     bool
		hotplug     bool
		ubusHas     bool
		wantRestart bool
	}{
		{"legacy plugins", true, true, false, true},
		{"object still registered", false, false, true, true},
		{"hotplug leftovers only", false, true, false, false},
		{"clean system", false, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			log := filepath.Join(work, "calls.log")
			bin := fakeCommands(t, log)
			var setup strings.Builder
			setup.WriteString(`set -e
mount -t tmpfs tmpfs "$W/ovl"
for d in etc usr; do
	mkdir -p "$W/ovl/$d.upper" "$W/ovl/$d.work"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$W/ovl/$d.upper,workdir=$W/ovl/$d.work" "/$d"
done
mkdir -p /etc/init.d
printf '#!/bin/sh\necho "rpcd $*" >>"%s"\n' "$LOG" >/etc/init.d/rpcd
chmod 0755 /etc/init.d/rpcd
`)
			var files []string
			if tc.plugins {
				files = append(files, legacyPlugins...)
			}
			if tc.hotplug {
				files = append(files, legacyHotplug...)
			}
			for _, f := range files {
				setup.WriteString("mkdir -p " + filepath.Dir(f) + " && echo legacy >" + f + "\n")
			}
			setup.WriteString(`set +e
sh "$SCRIPT"
echo "exit $?" >>"$LOG"
for f in ` + strings.Join(append(slices.Clone(legacyPlugins), legacyHotplug...), " ") + `; do
	[ ! -e "$f" ] || echo "left $f" >>"$LOG"
done
`)
			if err := os.Mkdir(filepath.Join(work, "ovl"), 0o755); err != nil {
				t.Fatal(err)
			}
			ubus := "0"
			if tc.ubusHas {
				ubus = "1"
			}
			env := []string{"W=" + work, "LOG=" + log, "SCRIPT=" + script, "FAKE_UBUS_MWAN3=" + ubus,
				"PATH=" + bin + ":" + os.Getenv("PATH")}
			out, code := run(t, work, env, "unshare", "--mount", "--propagation", "private", "sh", "-c", setup.String())
			if code != 0 {
				t.Fatalf("namespace setup: exit %d\n%s", code, out)
			}
			got := lines(t, log)
			if !slices.Contains(got, "exit 0") {
				t.Fatalf("postinst-pkg did not exit 0: %q\n%s", got, out)
			}
			for _, l := range got {
				if strings.HasPrefix(l, "left ") {
					t.Errorf("%s", l)
				}
			}
			if restarted := slices.Contains(got, "rpcd restart"); restarted != tc.wantRestart {
				t.Errorf("rpcd restarted: %v, want %v (calls %q)", restarted, tc.wantRestart, got)
			}
		})
	}
}
