//go:build !linux

package daemon

import (
	"errors"
	"log/slog"
)

// openKernel fails: mwan3d needs Linux's nftables and rtnetlink.
func openKernel(string, LegacyTools, *slog.Logger) (*Kernel, error) {
	return nil, errors.New("mwan3d runs on Linux only")
}
