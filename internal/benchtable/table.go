package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind says what a row measures and so how its values read.
type Kind int

// The kinds of figures, each with its base unit.
const (
	Duration Kind = iota // nanoseconds
	Bytes                // bytes
)

// Figure is the measured value of one row: the median of Runs values
// (with their smallest and largest), or, when there is none, a Note that
// says why ("needs root", "failed").
type Figure struct {
	Value    float64 // in the kind's base unit
	Min, Max float64
	Runs     int
	Exact    bool // a deterministic measurement (a file's size): Runs is 1
	Note     string
}

// Row is one line of the table, or with a Section title, the line that
// starts a section.
type Row struct {
	Section string
	What    string
	Kind    Kind
	Budget  float64 // in the kind's base unit; 0: no budget
	Legacy  string  // legacy mwan3's figure, free text ("" when none)
	Figure  Figure
}

// Verdicts of a row.
const (
	Met      = "met"
	Missed   = "missed"
	NoBudget = "—"
	NoFigure = "n/a"
)

// Verdict compares a row's figure with its budget.
func (r Row) Verdict() string {
	switch {
	case r.Figure.Runs == 0:
		return NoFigure
	case r.Budget == 0:
		return NoBudget
	case r.Figure.Value <= r.Budget:
		return Met
	}
	return Missed
}

// MedianOf returns the figure of a set of values: their median (the mean
// of the two middle ones for an even count), or a figure with note when
// there are none.
func MedianOf(values []float64, note string) Figure {
	if len(values) == 0 {
		return Figure{Note: note}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return Figure{Value: m, Min: s[0], Max: s[len(s)-1], Runs: len(s)}
}

// Format writes v, in the base unit of k, with three significant digits
// and a unit that keeps the number short: 702 µs, 13.4 ms, 61.2 s, 7.43 MB.
func Format(k Kind, v float64) string { return format(k, v, false) }

// FormatBudget writes a budget as short as it is: 1 ms, 62 s, 8 MB.
func FormatBudget(k Kind, v float64) string { return format(k, v, true) }

func format(k Kind, v float64, short bool) string {
	type unit struct {
		size float64
		name string
	}
	var units []unit
	switch k {
	case Duration:
		units = []unit{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}, {1, "ns"}}
	case Bytes:
		units = []unit{{1 << 20, "MB"}, {1 << 10, "kB"}, {1, "B"}}
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	u := units[len(units)-1]
	for _, c := range units {
		if v >= c.size {
			u = c
			break
		}
	}
	x := v / u.size
	prec := 2
	switch {
	case short:
		prec = -1
	case x >= 99.95:
		prec = 0
	case x >= 9.995:
		prec = 1
	}
	return strconv.FormatFloat(x, 'f', prec, 64) + " " + u.name
}

// cells returns a row's columns: what, ours, runs, range, budget, legacy,
// verdict.
func (r Row) cells() []string {
	ours, runs, spread := r.Figure.Note, "", ""
	switch f := r.Figure; {
	case f.Exact:
		ours, runs = Format(r.Kind, f.Value), "exact"
	case f.Runs > 0:
		ours, runs = Format(r.Kind, f.Value), strconv.Itoa(f.Runs)
		if f.Runs > 1 {
			spread = Format(r.Kind, f.Min) + " – " + Format(r.Kind, f.Max)
		}
	}
	budget := "—"
	if r.Budget > 0 {
		budget = "≤ " + FormatBudget(r.Kind, r.Budget)
	}
	legacy := r.Legacy
	if legacy == "" {
		legacy = "—"
	}
	return []string{r.What, ours, runs, spread, budget, legacy, r.Verdict()}
}

// tableHeader names the columns of Render.
var tableHeader = []string{"what", "ours (median)", "runs", "min – max", "budget", "legacy mwan3", "verdict"}

// Render writes rows as one table with aligned columns.
func Render(w io.Writer, rows []Row) error {
	lines := [][]string{tableHeader}
	for _, r := range rows {
		if r.Section != "" {
			lines = append(lines, []string{r.Section})
			continue
		}
		lines = append(lines, r.cells())
	}
	widths := make([]int, len(tableHeader))
	for _, l := range lines {
		if len(l) == 1 {
			continue
		}
		for i, c := range l {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for n, l := range lines {
		if len(l) == 1 {
			if n > 1 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%s\n", l[0])
			continue
		}
		for i, c := range l {
			b.WriteString(c)
			if i < len(l)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteString("\n")
		if n == 0 {
			total := 2 * (len(widths) - 1)
			for _, wd := range widths {
				total += wd
			}
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
