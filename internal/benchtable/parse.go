package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Result is one result line of Go's benchmark output: the benchmark ran N
// iterations and measured Values.
type Result struct {
	Pkg   string // import path from the last "pkg:" line ("" before any)
	Name  string // full name without the GOMAXPROCS suffix: "BenchmarkApply/default/cold"
	Procs int    // the GOMAXPROCS suffix ("-2"), 1 when there is none
	N     int64
	// Values in the order printed: ns/op, B/op, allocs/op and the
	// benchmark's own metrics (ReportMetric units such as "p99-µs").
	Values []Value
}

// Value is one measurement of a result line.
type Value struct {
	Value float64
	Unit  string
}

// Metric returns the value of unit in r.
func (r Result) Metric(unit string) (float64, bool) {
	for _, v := range r.Values {
		if v.Unit == unit {
			return v.Value, true
		}
	}
	return 0, false
}

// Failure is a benchmark that failed ("--- FAIL: name") with the lines of
// its log that followed.
type Failure struct {
	Pkg, Name string
	Log       []string
}

// Output is what Parse found in a benchmark run's output.
type Output struct {
	Results  []Result
	Failures []Failure
}

// Limits of Parse: longer lines are an error, longer failure logs are cut.
const (
	maxLineBytes   = 1 << 20
	maxFailureLogs = 20
)

// Parse reads the output of `go test -bench` (or of a test binary run with
// -test.bench) and returns its result lines and failures; any other line
// is ignored. It follows the format of golang.org/x/perf's benchfmt: a
// result line is the benchmark's name, the iteration count and pairs of
// value and unit. Output written by the benchmark itself can come between
// the name, which Go prints before the run, and the figures, which it
// prints after: a name followed by something else waits for a line of
// figures alone.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLineBytes)
	var pkg, pending string // pending: a name whose figures did not follow it
	var failure *Failure    // the failure whose log lines are being read
	for sc.Scan() {
		line := sc.Text()
		if failure != nil {
			if strings.HasPrefix(line, "    ") {
				if len(failure.Log) < maxFailureLogs {
					failure.Log = append(failure.Log, strings.TrimSpace(line))
				}
				continue
			}
			failure = nil
		}
		if v, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg, pending = strings.TrimSpace(v), ""
			continue
		}
		if _, name, ok := strings.Cut(line, "--- FAIL: "); ok {
			name, _, _ = strings.Cut(strings.TrimSpace(name), " ")
			base, _ := splitProcs(name)
			out.Failures = append(out.Failures, Failure{Pkg: pkg, Name: base})
			failure = &out.Failures[len(out.Failures)-1]
			pending = ""
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if isBenchmarkName(fields[0]) {
			if res, ok := parseFigures(fields[1:]); ok {
				res.Pkg = pkg
				res.Name, res.Procs = splitProcs(fields[0])
				out.Results = append(out.Results, res)
				pending = ""
			} else {
				pending = fields[0]
			}
			continue
		}
		if pending != "" {
			if res, ok := parseFigures(fields); ok {
				res.Pkg = pkg
				res.Name, res.Procs = splitProcs(pending)
				out.Results = append(out.Results, res)
				pending = ""
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return out, fmt.Errorf("parse benchmark output: a line longer than %d bytes", maxLineBytes)
		}
		return out, fmt.Errorf("parse benchmark output: %w", err)
	}
	return out, nil
}

// isBenchmarkName reports whether s names a benchmark: "Benchmark" alone
// or followed by a character that is not a lower-case letter.
func isBenchmarkName(s string) bool {
	rest, ok := strings.CutPrefix(s, "Benchmark")
	return ok && (rest == "" || rest[0] < 'a' || rest[0] > 'z')
}

// splitProcs splits the "-N" GOMAXPROCS suffix off a benchmark name.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	procs, err := strconv.Atoi(name[i+1:])
	if err != nil || procs <= 0 || name[i+1] == '+' {
		return name, 1
	}
	return name[:i], procs
}

// parseFigures parses "N value unit value unit …".
func parseFigures(f []string) (Result, bool) {
	if len(f) < 3 || len(f)%2 != 1 {
		return Result{}, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n <= 0 {
		return Result{}, false
	}
	res := Result{N: n, Values: make([]Value, 0, len(f)/2)}
	for i := 1; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Result{}, false
		}
		res.Values = append(res.Values, Value{Value: v, Unit: f[i+1]})
	}
	return res, true
}
