package daemon

import (
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/config"
)

// Mount tables of a hybrid host (this development machine), OpenWrt, and
// a container whose cgroup2 mount is a subtree.
const (
	hybridMounts = `23 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	openwrtMounts = `13 1 0:13 / / ro,noatime - squashfs /dev/root ro
14 13 0:4 / /proc rw,nosuid,nodev,noexec,noatime shared:1 - proc proc rw
15 13 0:14 / /sys rw,nosuid,nodev,noexec,noatime - sysfs sysfs rw
16 15 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
`
	nestedMounts = `100 99 0:40 /lxc/router /sys/fs/cgroup rw,nosuid - cgroup2 cgroup rw
101 99 0:50 / /mnt/my\040cgroups rw shared:7 master:1 - cgroup2 none rw
102 99 0:51 / /sys/fs/cgroup/hidden rw - tmpfs tmpfs rw
`
)

func TestParseMountinfo(t *testing.T) {
	got := parseMountinfo(nestedMounts + "garbage\n1 2 3 4 5 6 -\n\n")
	want := []mountEntry{
		{root: "/lxc/router", point: "/sys/fs/cgroup", fsType: "cgroup2"},
		{root: "/", point: "/mnt/my cgroups", fsType: "cgroup2"},
		{root: "/", point: "/sys/fs/cgroup/hidden", fsType: "tmpfs"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMountinfo:\n got %+v\nwant %+v", got, want)
	}
	for in, want := range map[string]string{`a\040b`: "a b", `\134`: `\`, `x\04`: `x\04`, `\999`: `\999`, `plain`: "plain"} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCgroupBase(t *testing.T) {
	tests := []struct {
		mounts, dir string
		base        string
		level       uint32
		err         string
	}{
		{hybridMounts, CgroupAuto, "/sys/fs/cgroup/unified/mwan3", 1, ""},
		{openwrtMounts, CgroupAuto, "/sys/fs/cgroup/mwan3", 1, ""},
		{nestedMounts, CgroupAuto, "/sys/fs/cgroup/mwan3", 3, ""},
		{hybridMounts, "/sys/fs/cgroup/unified/mwan3-test/x/", "/sys/fs/cgroup/unified/mwan3-test/x", 2, ""},
		{openwrtMounts, "/sys/fs/cgroup/services/mwan3", "/sys/fs/cgroup/services/mwan3", 2, ""},
		{nestedMounts, "/mnt/my cgroups/mwan3", "/mnt/my cgroups/mwan3", 1, ""},
		{nestedMounts, "/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a/b", 4, ""},
		{hybridMounts, "/sys/fs/cgroup/mwan3", "", 0, "/sys/fs/cgroup/mwan3 is not on a cgroup2 file system"},
		{nestedMounts, "/sys/fs/cgroup/hidden/mwan3", "", 0, "is not on a cgroup2 file system"},
		{hybridMounts, "/tmp/x", "", 0, "is not on a cgroup2 file system"},
		{openwrtMounts, "/sys/fs/cgroup", "", 0, "is the root of a cgroup2 mount"},
		{openwrtMounts, "relative/dir", "", 0, "is not an absolute path"},
		{"31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", CgroupAuto, "", 0, "no cgroup2 file system is mounted"},
	}
	for _, tt := range tests {
		base, level, err := cgroupBase(parseMountinfo(tt.mounts), tt.dir)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("cgroupBase(%q) error %v, want %q", tt.dir, err, tt.err)
			}
			continue
		}
		if err != nil || base != tt.base || level != tt.level {
			t.Errorf("cgroupBase(%q) = %s, %d, %v; want %s, %d", tt.dir, base, level, err, tt.base, tt.level)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMounts)
	f.Add(openwrtMounts)
	f.Add(nestedMounts)
	f.Add("1 2 3 4 5 6 - \\0\n- - - - - - - -")
	f.Fuzz(func(t *testing.T, data string) {
		ms := parseMountinfo(data)
		if len(ms) > strings.Count(data, "\n")+1 {
			t.Fatalf("%d entries from %d lines", len(ms), strings.Count(data, "\n")+1)
		}
		for _, m := range ms {
			if m.fsType == "" {
				t.Fatalf("entry without a type: %+v", m)
			}
		}
		_, _, _ = cgroupBase(ms, CgroupAuto)
		_, _, _ = cgroupBase(ms, "/sys/fs/cgroup/x")
	})
}

// testCgroups is a cgroups manager on a plain directory, with ids from a
// hash of the path (mkdir and rmdir behave the same outside cgroupfs).
func testCgroups(t *testing.T, base string) *cgroups {
	return &cgroups{log: testLogger(t), base: base, level: 1, dirs: map[string]cgroupDir{},
		id: func(path string) (uint64, error) {
			if _, err := os.Stat(path); err != nil {
				return 0, err
			}
			h := fnv.New64()
			h.Write([]byte(path))
			return h.Sum64(), nil
		}}
}

func mustConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, diags := config.Load("mwan3", []byte(text))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func TestCgroupsLifecycle(t *testing.T) {
	base := filepath.Join(t.TempDir(), "mwan3")
	c := testCgroups(t, base)
	cfg := mustConfig(t, testConfig)
	uses := c.sync(cfg)
	var names []string
	for _, u := range uses {
		names = append(names, u.Interface)
		if u.Level != 2 || u.Cgroup == 0 {
			t.Errorf("use %+v: want level 2 and an id", u)
		}
		if id, _ := c.id(filepath.Join(base, u.Interface)); id != u.Cgroup {
			t.Errorf("use %+v: id of its directory is %d", u, id)
		}
	}
	if want := []string{"wan", "wanb", "wanc"}; !slices.Equal(names, want) {
		t.Errorf("uses of %v, want %v (enabled interfaces)", names, want)
	}
	if dir, err := c.dir("wanb"); err != nil || dir != filepath.Join(base, "wanb") {
		t.Errorf("dir(wanb) = %s, %v", dir, err)
	}
	if _, err := c.dir("wand"); err == nil || !strings.Contains(err.Error(), "no cgroup for interface wand") {
		t.Errorf("dir(wand) error %v", err)
	}
	// Stable across syncs; a "process" (a file here) keeps wanc's
	// directory when wanc goes from the configuration.
	if again := c.sync(cfg); !slices.Equal(again, uses) {
		t.Errorf("second sync %+v, want %+v", again, uses)
	}
	if err := os.WriteFile(filepath.Join(base, "wanc", "busy"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg2 := mustConfig(t, strings.ReplaceAll(testConfig, "config interface 'wanc'\n\toption enabled '1'", "config interface 'wanc'\n\toption enabled '0'"))
	if got := c.sync(cfg2); len(got) != 2 {
		t.Errorf("after disabling wanc: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(base, "wanc")); err != nil {
		t.Errorf("wanc's busy directory was removed: %v", err)
	}
	if _, err := c.dir("wanc"); err == nil {
		t.Error("dir(wanc) of a disabled interface succeeded")
	}
	os.Remove(filepath.Join(base, "wanc", "busy"))
	os.Remove(filepath.Join(base, "wanc"))
	c.close()
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("base directory left after close: %v", err)
	}
}

// TestCgroupsExistingBase keeps a base directory it did not create.
func TestCgroupsExistingBase(t *testing.T) {
	base := t.TempDir()
	c := testCgroups(t, base)
	c.sync(mustConfig(t, testConfig))
	c.close()
	entries, err := os.ReadDir(base)
	if err != nil || len(entries) != 0 {
		t.Errorf("base after close: %v, %v; want it empty and present", entries, err)
	}
}

func TestCgroupsUnavailable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testCgroups(t, filepath.Join(file, "mwan3"))
	if uses := c.sync(mustConfig(t, testConfig)); uses != nil {
		t.Errorf("uses %+v without a base directory", uses)
	}
	if _, err := c.dir("wan"); err == nil || !strings.HasPrefix(err.Error(), "cgroup v2 is not available: create the cgroup directory: mkdir ") {
		t.Errorf("dir error %v", err)
	}
	c.close()

	off := openCgroups("", testLogger(t))
	if _, err := off.dir("wan"); err == nil || !strings.Contains(err.Error(), "--cgroup") {
		t.Errorf("dir without a cgroup directory: %v", err)
	}
	if uses := off.sync(mustConfig(t, testConfig)); uses != nil {
		t.Errorf("uses %+v without cgroups", uses)
	}
	off.close()
}
