package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/internal/testbed"
)

// TestCgroupsOnCgroupfs creates real cgroups under the cgroup2 mount and
// checks their ids against the kernel's inode numbers (equal on 64-bit).
func TestCgroupsOnCgroupfs(t *testing.T) {
	testbed.RequireRoot(t)
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	auto, _, err := cgroupBase(parseMountinfo(string(data)), CgroupAuto)
	if err != nil {
		t.Skipf("no cgroup2 here: %v", err)
	}
	dir := fmt.Sprintf("%s-test-%d", auto, os.Getpid())
	c := openCgroups(dir, testLogger(t))
	defer c.close()
	uses := c.sync(mustConfig(t, testConfig))
	if len(uses) != 3 {
		t.Fatalf("uses %+v (err %v)", uses, c.err)
	}
	for _, u := range uses {
		path := filepath.Join(dir, u.Interface)
		if _, err := os.Stat(filepath.Join(path, "cgroup.procs")); err != nil {
			t.Errorf("%s is not a cgroup: %v", path, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if unix.SizeofPtr == 8 && u.Cgroup != uint64(st.Ino) {
			t.Errorf("%s: id %d, inode %d", path, u.Cgroup, st.Ino)
		}
	}
	c.close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after close", dir)
	}
}
