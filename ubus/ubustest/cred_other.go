//go:build !linux

package ubustest

import (
	"net"
	"os"
)

// peerCred returns the broker's own uid and gid: peer credentials are only
// read on Linux.
func peerCred(*net.UnixConn) (uid, gid int) { return os.Getuid(), os.Getgid() }
