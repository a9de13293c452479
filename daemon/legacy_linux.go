package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// execLegacy is the LegacyState of a Linux system: it runs the programs
// and reads the ip rules through a netlink handle (of the daemon's own
// namespace, or of a test's).
type execLegacy struct {
	tools LegacyTools
	h     *netlink.Handle
}

// NewLegacyState returns the LegacyState that runs tools (defaults filled
// in) and deletes ip rules through h (nil: the current network namespace).
func NewLegacyState(tools LegacyTools, h *netlink.Handle) LegacyState {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &execLegacy{tools: tools.withDefaults(), h: h}
}

func (e *execLegacy) Iptables(ctx context.Context, ipv6 bool, args ...string) (string, error) {
	prog := e.tools.Iptables
	if ipv6 {
		prog = e.tools.Ip6tables
	}
	return run(ctx, prog, args...)
}

func (e *execLegacy) Ipset(ctx context.Context, args ...string) (string, error) {
	return run(ctx, e.tools.Ipset, args...)
}

// run runs prog and returns its standard output, or an error with its
// standard error; ErrNoTool when prog is "-" or not installed.
func run(ctx context.Context, prog string, args ...string) (string, error) {
	if prog == "-" {
		return "", ErrNoTool
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return "", fmt.Errorf("%s: %w", prog, ErrNoTool)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		return "", fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

func (e *execLegacy) DeleteRules(del func(priority int) bool) (int, error) {
	n := 0
	var errs []error
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := e.h.RuleList(fam)
		if err != nil {
			if fam == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // a kernel without IPv6
			}
			errs = append(errs, fmt.Errorf("list rules: %w", err))
			continue
		}
		for i := range rules {
			r := &rules[i]
			if !del(r.Priority) {
				continue
			}
			if err := e.h.RuleDel(r); err != nil {
				errs = append(errs, fmt.Errorf("delete rule %d: %w", r.Priority, err))
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}
