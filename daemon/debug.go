package daemon

import (
	"context"
	"os"
	"runtime"

	"github.com/mwan3d/mwan3d/ubus"
)

// fdDir lists the open file descriptors of the process (Linux).
const fdDir = "/proc/self/fd"

// debugReply is the answer of `debug {}`: the process's own resources, for
// leak checks from outside (the end-to-end suite compares them before and
// after an interface flapping storm).
type debugReply struct {
	// Goroutines is runtime.NumGoroutine.
	Goroutines int64 `ubus:"goroutines"`
	// FDs counts the open file descriptors (-1 where /proc/self/fd is
	// missing).
	FDs int64 `ubus:"fds"`
	// HeapAlloc and HeapObjects are the live heap (runtime.MemStats).
	HeapAlloc   int64 `ubus:"heap_alloc"`
	HeapObjects int64 `ubus:"heap_objects"`
}

// processDebug measures the process's resources.
func processDebug() debugReply {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return debugReply{
		Goroutines:  int64(runtime.NumGoroutine()),
		FDs:         openFDs(),
		HeapAlloc:   int64(ms.HeapAlloc),
		HeapObjects: int64(ms.HeapObjects),
	}
}

// openFDs counts the entries of fdDir, less the descriptor used to read
// it; -1 when it cannot be read.
func openFDs() int64 {
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return -1
	}
	return int64(len(entries) - 1)
}

// handleDebug answers `debug {}` with processDebug. It reads no daemon
// state, so it never waits for the loop.
func (d *daemon) handleDebug(_ context.Context, req *ubus.Request) error {
	return req.Reply(processDebug())
}
