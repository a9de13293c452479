package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPlan: every line of the table reads a job that exists and that
// runs its benchmark; every job feeds a line; every benchmark function
// exists in its package's tests.
func TestPlan(t *testing.T) {
	for _, quick := range []bool{false, true} {
		jobs, lines, notes := plan(quick)
		if len(notes) == 0 {
			t.Error("no notes")
		}
		byName := map[string]job{}
		for _, j := range jobs {
			if _, dup := byName[j.name]; dup {
				t.Errorf("job %s twice", j.name)
			}
			byName[j.name] = j
			if j.count < 1 || j.procs < 0 {
				t.Errorf("job %s: count %d, procs %d", j.name, j.count, j.procs)
			}
		}
		used := map[string]bool{}
		sizes := 0
		for _, l := range lines {
			switch {
			case l.row.Section != "":
				if l.src != nil || l.size != nil || l.row.What != "" {
					t.Errorf("section line %+v with a figure", l)
				}
			case l.size != nil:
				sizes++
			case l.src == nil:
				t.Errorf("line %q measures nothing", l.row.What)
			default:
				j, ok := byName[l.src.job]
				if !ok {
					t.Errorf("line %q: no job %q", l.row.What, l.src.job)
					continue
				}
				used[j.name] = true
				if !benchMatches(t, j.bench, l.src.bench) {
					t.Errorf("line %q: job %s's pattern %q does not run %s", l.row.What, j.name, j.bench, l.src.bench)
				}
				if l.src.scale <= 0 || l.src.unit == "" {
					t.Errorf("line %q: unit %q scale %v", l.row.What, l.src.unit, l.src.scale)
				}
				checkBenchmarkExists(t, j.pkg, l.src.bench)
			}
		}
		for _, j := range jobs {
			if !used[j.name] {
				t.Errorf("job %s feeds no line", j.name)
			}
		}
		if sizes != 5 {
			t.Errorf("%d binary sizes, want 5 cross targets", sizes)
		}
	}
}

// benchMatches applies a -test.bench pattern to a benchmark's name level
// by level, as the testing package does.
func benchMatches(t *testing.T, pattern, name string) bool {
	pats, parts := strings.Split(pattern, "/"), strings.Split(name, "/")
	for i, p := range pats {
		if i >= len(parts) {
			break
		}
		re, err := regexp.Compile(p)
		if err != nil {
			t.Errorf("pattern %q: %v", pattern, err)
			return false
		}
		if !re.MatchString(parts[i]) {
			return false
		}
	}
	return true
}

// checkBenchmarkExists looks for the top-level benchmark function of name
// in the test files of the package directory pkg (relative to the module
// root, two levels up).
func checkBenchmarkExists(t *testing.T, pkg, name string) {
	t.Helper()
	top, _, _ := strings.Cut(name, "/")
	files, err := filepath.Glob(filepath.Join("..", "..", pkg, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Errorf("%s: no test files (%v)", pkg, err)
		return
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "func "+top+"(b *testing.B)") {
			return
		}
	}
	t.Errorf("%s: no func %s in %s's tests", name, top, pkg)
}

func TestJobResultFigure(t *testing.T) {
	src := source{job: "j", bench: "BenchmarkS/100-callers", unit: "p99-µs", scale: 1e3}
	res := func(name string, v float64) Result {
		return Result{Name: name, N: 1, Values: []Value{{1, "ns/op"}, {v, "p99-µs"}}}
	}
	for _, c := range []struct {
		name string
		jr   jobResult
		want Figure
	}{
		{"not run", jobResult{note: "needs root"}, Figure{Note: "needs root"}},
		{"no output", jobResult{err: errors.New("build failed")}, Figure{Note: "failed"}},
		{"median of matching lines", jobResult{out: &Output{Results: []Result{
			res("BenchmarkS/100-callers", 3), res("BenchmarkS/1-callers", 100), res("BenchmarkS/100-callers", 1),
			res("BenchmarkS/100-callers", 2), {Name: "BenchmarkS/100-callers", N: 1, Values: []Value{{5, "ns/op"}}},
		}}}, Figure{Value: 2e3, Min: 1e3, Max: 3e3, Runs: 3}},
		{"no line", jobResult{out: &Output{Results: []Result{res("BenchmarkOther", 1)}}}, Figure{Note: "no result"}},
		{"failed", jobResult{out: &Output{Failures: []Failure{{Name: "BenchmarkS/100-callers"}}}}, Figure{Note: "failed"}},
		{"parent failed", jobResult{out: &Output{Failures: []Failure{{Name: "BenchmarkS"}}}}, Figure{Note: "failed"}},
		{"other failed", jobResult{out: &Output{Results: []Result{res("BenchmarkS/100-callers", 4)},
			Failures: []Failure{{Name: "BenchmarkS/1-callers"}, {Name: "BenchmarkS/100"}}}}, Figure{Value: 4e3, Min: 4e3, Max: 4e3, Runs: 1}},
		{"some runs failed", jobResult{out: &Output{Results: []Result{res("BenchmarkS/100-callers", 4)},
			Failures: []Failure{{Name: "BenchmarkS/100-callers"}}}}, Figure{Note: "failed, 1 ok"}},
	} {
		if got := c.jr.figure(src); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{"-nosuchflag"}, {"extra"}, {"-only", "("}} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut); code != 2 || out.Len() != 0 || errOut.Len() == 0 {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", args, code, out.String(), errOut.String())
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 5}
	for _, s := range []string{"ab", "cdef", "g"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "cdefg" {
		t.Errorf("tail %q, want cdefg", got)
	}
}
