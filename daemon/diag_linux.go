package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/mwan3d/mwan3d/nft"
)

// kernelInspector is the Inspector of the daemon's network namespace.
type kernelInspector struct{}

func nlFamily(fam nft.Family) int {
	if fam == nft.IPv6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// RulePriorities implements Inspector.
func (kernelInspector) RulePriorities(fam nft.Family) (map[int]bool, error) {
	rules, err := netlink.RuleList(nlFamily(fam))
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	out := make(map[int]bool, len(rules))
	for _, r := range rules {
		out[r.Priority] = true
	}
	return out, nil
}

// DefaultRoute implements Inspector.
func (kernelInspector) DefaultRoute(fam nft.Family, table int, dev string) (bool, error) {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("device %s: %w", dev, err)
	}
	idx := link.Attrs().Index
	routes, err := netlink.RouteListFiltered(nlFamily(fam), &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, err
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if r.LinkIndex == idx {
			return true, nil
		}
		for _, nh := range r.MultiPath {
			if nh.LinkIndex == idx {
				return true, nil
			}
		}
	}
	return false, nil
}

// Chains implements Inspector.
func (kernelInspector) Chains() (map[string]bool, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == nft.TableName {
			out[ch.Name] = true
		}
	}
	return out, nil
}

// rulesetTimeout bounds one run of nft.
const rulesetTimeout = 10 * time.Second

// Ruleset implements Inspector with the nft tool: only it prints a table
// with the kernel's counters and set contents in nft's syntax.
func (kernelInspector) Ruleset(ctx context.Context) (string, error) {
	path, err := exec.LookPath("nft")
	if err != nil {
		return "", fmt.Errorf("list table inet %s: %w", nft.TableName, err)
	}
	ctx, cancel := context.WithTimeout(ctx, rulesetTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "list", "table", "inet", nft.TableName)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(stderr.String(), "No such file or directory") {
			return "", nil
		}
		return "", fmt.Errorf("nft list table inet %s: %w: %s", nft.TableName, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
