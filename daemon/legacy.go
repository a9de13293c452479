package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LegacyTools are the programs the one-time sweep of legacy mwan3's
// leftovers runs (spec §4.9 "Migration", §9.4). Each is a path or a name
// looked up in PATH; empty means the default, "-" skips that kind of
// state. A program that is not installed means that its state cannot
// exist.
type LegacyTools struct {
	Iptables  string // DefaultIptables
	Ip6tables string // DefaultIp6tables
	Ipset     string // DefaultIpset
}

// Defaults of LegacyTools.
const (
	DefaultIptables  = "iptables"
	DefaultIp6tables = "ip6tables"
	DefaultIpset     = "ipset"
)

// withDefaults fills in the default programs.
func (t LegacyTools) withDefaults() LegacyTools {
	for _, p := range []struct {
		v   *string
		def string
	}{{&t.Iptables, DefaultIptables}, {&t.Ip6tables, DefaultIp6tables}, {&t.Ipset, DefaultIpset}} {
		if *p.v == "" {
			*p.v = p.def
		}
	}
	return t
}

// ErrNoTool is returned by a LegacyState whose program is not installed
// (or disabled with "-").
var ErrNoTool = errors.New("program not installed")

// LegacyState reads and removes what legacy mwan3 leaves in the kernel:
// its iptables mangle chains, its ipsets and its ip rules. The Linux
// implementation runs the LegacyTools and reads the rules over netlink.
type LegacyState interface {
	// Iptables runs iptables (ip6tables when ipv6) with args and returns
	// its standard output; ErrNoTool when it is not installed.
	Iptables(ctx context.Context, ipv6 bool, args ...string) (string, error)
	// Ipset runs ipset with args and returns its standard output;
	// ErrNoTool when it is not installed.
	Ipset(ctx context.Context, args ...string) (string, error)
	// DeleteRules deletes the ip rules of both families whose priority
	// del approves and returns how many it deleted.
	DeleteRules(del func(priority int) bool) (int, error)
}

// legacyPrefix starts the names of legacy's chains and sets.
const legacyPrefix = "mwan3_"

// legacySweepTimeout bounds the whole sweep (iptables waits for the
// xtables lock).
const legacySweepTimeout = 30 * time.Second

// mangleState is what `iptables -t mangle -S` shows of legacy mwan3.
type mangleState struct {
	// chains are the mwan3_* chains, in listing order.
	chains []string
	// jumps are the rules of other chains that jump (or go) to an
	// mwan3_* chain: chain → rule numbers (1-based), highest first so
	// that deleting them in order keeps the others' numbers valid.
	jumps map[string][]int
	// order lists the chains of jumps in listing order.
	order []string
}

// found tells whether legacy mwan3 left anything in this table.
func (m mangleState) found() bool { return len(m.chains) > 0 || len(m.jumps) > 0 }

// parseMangle reads `iptables -t mangle -S`: "-N <chain>" declares a
// chain, "-A <chain> <match...> -j|-g <target>" is the next rule of that
// chain.
func parseMangle(out string) mangleState {
	m := mangleState{jumps: map[string][]int{}}
	count := map[string]int{}
	for line := range strings.Lines(out) {
		f := splitArgs(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "-N":
			if strings.HasPrefix(f[1], legacyPrefix) {
				m.chains = append(m.chains, f[1])
			}
		case "-A":
			chain := f[1]
			count[chain]++
			if strings.HasPrefix(chain, legacyPrefix) {
				continue // goes with its chain
			}
			for i := 2; i+1 < len(f); i++ {
				if (f[i] == "-j" || f[i] == "-g" || f[i] == "--jump" || f[i] == "--goto") && strings.HasPrefix(f[i+1], legacyPrefix) {
					if _, seen := m.jumps[chain]; !seen {
						m.order = append(m.order, chain)
					}
					m.jumps[chain] = append(m.jumps[chain], count[chain])
					break
				}
			}
		}
	}
	for _, c := range m.order {
		slices.Reverse(m.jumps[c])
	}
	return m
}

// splitArgs splits one line of `iptables -S` into its arguments: words
// separated by blanks, where "double quotes" (with \" and \\ inside)
// group a comment into one argument.
func splitArgs(line string) []string {
	var out []string
	var cur strings.Builder
	in, quoted, esc := false, false, false
	for _, r := range line {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case quoted && r == '\\':
			esc = true
		case r == '"':
			quoted, in = !quoted, true
		case !quoted && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// legacySets picks legacy's sets from `ipset list -n`.
func legacySets(out string) []string {
	var sets []string
	for line := range strings.Lines(out) {
		if name := strings.TrimSpace(line); strings.HasPrefix(name, legacyPrefix) {
			sets = append(sets, name)
		}
	}
	return sets
}

// ownRulePriority reports whether prio is one of the daemon's rule slots
// for mask (spec §3.4): 1000+id, 2000+id and 3000+id for every possible
// id, and the global blackhole and unreachable rules. rtsync reconciles
// these itself, deleting legacy's rules in them.
func ownRulePriority(mask uint32, prio int) bool {
	all := 1<<bits.OnesCount32(mask) - 1
	maxID := all - 3
	for _, base := range []int{1000, 2000, 3000} {
		if prio > base && prio <= base+maxID {
			return true
		}
	}
	return prio == 2000+all-2 || prio == 2000+all-1
}

// legacyRule reports whether the sweep removes an ip rule: legacy's range
// 1000–3999, outside the daemon's own slots.
func legacyRule(mask uint32, prio int) bool {
	return prio >= 1000 && prio <= 3999 && !ownRulePriority(mask, prio)
}

// sweepLegacy removes, once at start, what legacy mwan3 left behind: the
// jumps to its mangle chains and the chains (both families), then its
// ipsets (unused once the iptables rules are gone), and, only when one of
// those was found, the ip rules of its range 1000–3999 that are not in the
// daemon's slots (mask). Nothing else is touched. It logs one line per
// kind of state removed, nothing when there was none.
func sweepLegacy(ctx context.Context, k LegacyState, mask uint32, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, legacySweepTimeout)
	defer cancel()
	found := false
	var tables [2]mangleState
	for i, ipv6 := range []bool{false, true} {
		out, err := k.Iptables(ctx, ipv6, "-w", "-t", "mangle", "-S")
		if err != nil {
			if !errors.Is(err, ErrNoTool) {
				log.Warn("cannot list the mangle table for legacy mwan3 leftovers", "ipv6", ipv6, "err", err)
			}
			continue
		}
		tables[i] = parseMangle(out)
		found = found || tables[i].found()
	}
	var sets []string
	out, err := k.Ipset(ctx, "list", "-n")
	switch {
	case err == nil:
		sets = legacySets(out)
	case !errors.Is(err, ErrNoTool):
		log.Warn("cannot list the ipsets for legacy mwan3 leftovers", "err", err)
	}
	if !found && len(sets) == 0 {
		return
	}
	for i, ipv6 := range []bool{false, true} {
		if tables[i].found() {
			removeMangle(ctx, k, ipv6, tables[i], log)
		}
	}
	if len(sets) > 0 {
		removeSets(ctx, k, sets, log)
	}
	n, err := k.DeleteRules(func(prio int) bool { return legacyRule(mask, prio) })
	if err != nil {
		log.Warn("removing legacy mwan3 ip rules", "err", err)
	}
	if n > 0 || err != nil {
		log.Info("removed legacy mwan3 ip rules (priorities 1000-3999 outside mwan3d's own)", "rules", n)
	}
}

// removeMangle deletes the jumps to legacy's chains, then flushes and
// deletes the chains (flushing first drops their references to each
// other).
func removeMangle(ctx context.Context, k LegacyState, ipv6 bool, m mangleState, log *slog.Logger) {
	var errs []error
	jumps := 0
	run := func(args ...string) bool {
		_, err := k.Iptables(ctx, ipv6, append([]string{"-w", "-t", "mangle"}, args...)...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", strings.Join(args, " "), err))
		}
		return err == nil
	}
	for _, chain := range m.order {
		for _, n := range m.jumps[chain] {
			if run("-D", chain, strconv.Itoa(n)) {
				jumps++
			}
		}
	}
	for _, c := range m.chains {
		run("-F", c)
	}
	chains := 0
	for _, c := range m.chains {
		if run("-X", c) {
			chains++
		}
	}
	prog := "iptables"
	if ipv6 {
		prog = "ip6tables"
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("removing legacy mwan3 "+prog+" state", "err", err)
	}
	log.Info("removed legacy mwan3 "+prog+" mangle chains", "chains", chains, "jumps", jumps)
}

// removeSets flushes legacy's sets, which empties its list:sets so that
// their members are free, then destroys them.
func removeSets(ctx context.Context, k LegacyState, sets []string, log *slog.Logger) {
	var errs []error
	for _, s := range sets {
		if _, err := k.Ipset(ctx, "flush", s); err != nil {
			errs = append(errs, fmt.Errorf("flush %s: %w", s, err))
		}
	}
	destroyed := 0
	for _, s := range sets {
		if _, err := k.Ipset(ctx, "destroy", s); err != nil {
			errs = append(errs, fmt.Errorf("destroy %s: %w", s, err))
			continue
		}
		destroyed++
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("removing legacy mwan3 ipsets", "err", err)
	}
	log.Info("removed legacy mwan3 ipsets", "sets", destroyed)
}
