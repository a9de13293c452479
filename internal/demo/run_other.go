//go:build !linux

package main

import (
	"fmt"
	"io"
)

// play needs Linux network namespaces.
func play(_ options, _ *demoConfig, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "demo: needs Linux (network namespaces, nftables); -print-config works anywhere")
	return 1
}
