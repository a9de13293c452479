package daemon

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// cgroupID returns the id the kernel gives a cgroup v2 directory, the
// number nft's `socket cgroupv2` compares: its kernfs node id, which a
// file handle of the directory carries. On 64-bit kernels it is also the
// inode number, the fallback when file handles are not supported.
func cgroupID(path string) (uint64, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err == nil && len(h.Bytes()) == 8 {
		return binary.NativeEndian.Uint64(h.Bytes()), nil
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", path, err)
	}
	return uint64(st.Ino), nil
}
