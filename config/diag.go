package config

import (
	"fmt"
	"sort"
	"strings"
)

// Severity tells whether a problem refuses the configuration.
type Severity int

const (
	// Warning: the offending option or section was defaulted or skipped,
	// as legacy mwan3 does, and the configuration still runs.
	Warning Severity = iota
	// Error: the file cannot be read or the policy cannot work; a daemon
	// refuses the configuration and keeps its last good one.
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Diag is one problem found in a configuration, with its position.
type Diag struct {
	File     string
	Line     int
	Severity Severity
	Section  string // section name (or @type[n]); empty for file-level problems
	Option   string // option name, when the problem is one option's
	Msg      string // what is wrong (what was done instead)
}

// Error formats the problem as "file:line: section 'name': message".
func (d Diag) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: ", d.File, d.Line)
	if d.Section != "" {
		fmt.Fprintf(&b, "section '%s': ", d.Section)
	}
	b.WriteString(printable(d.Msg))
	return b.String()
}

// printable escapes control bytes so a message stays one readable line.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Diags is a list of problems, in the order they were found.
type Diags []Diag

// Errors returns only the problems of severity Error.
func (ds Diags) Errors() Diags { return ds.filter(Error) }

// Warnings returns only the problems of severity Warning.
func (ds Diags) Warnings() Diags { return ds.filter(Warning) }

func (ds Diags) filter(s Severity) Diags {
	var out Diags
	for _, d := range ds {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// HasErrors reports whether any problem refuses the configuration.
func (ds Diags) HasErrors() bool { return len(ds.Errors()) > 0 }

// Sorted returns the problems ordered by line (stable for equal lines).
func (ds Diags) Sorted() Diags {
	out := append(Diags(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// Err returns the errors joined as one error value, or nil when there are
// none; warnings are not errors.
func (ds Diags) Err() error {
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Error joins the messages, one per line.
func (ds Diags) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}
