//go:build !linux

package cli

import "errors"

var errLinuxOnly = errors.New("this needs Linux")

// gatherNet fails: rtnetlink is Linux's.
func gatherNet(bool) (*netState, error) { return nil, errLinuxOnly }

// ipv6Supported is false off Linux.
func ipv6Supported() bool { return false }

// execCommand fails: cgroup v2 is Linux's.
func execCommand(string, []string, []string) error { return errLinuxOnly }
