//go:build linux

package track

import (
	"time"

	"golang.org/x/sys/unix"
)

// systemUptime reads CLOCK_BOOTTIME, the clock behind /proc/uptime.
func systemUptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Since(processStart)
	}
	return time.Duration(ts.Nano())
}

var processStart = time.Now()
