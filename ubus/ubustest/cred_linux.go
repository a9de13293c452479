//go:build linux

package ubustest

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// peerCred returns the uid and gid of the process at the other end of c
// (SO_PEERCRED), like ubusd; the broker's own ids when that fails.
func peerCred(c *net.UnixConn) (uid, gid int) {
	uid, gid = os.Getuid(), os.Getgid()
	raw, err := c.SyscallConn()
	if err != nil {
		return uid, gid
	}
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			uid, gid = int(cred.Uid), int(cred.Gid)
		}
	})
	return uid, gid
}
