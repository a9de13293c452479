//go:build !linux

package daemon

import "errors"

// cgroupID fails: cgroup v2 is Linux's.
func cgroupID(string) (uint64, error) {
	return 0, errors.New("cgroup v2 needs Linux")
}
