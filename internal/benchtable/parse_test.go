package main

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// sampleOutput is real `go test -bench` output (go1.26) with every case
// the parser meets: a result line with metrics, a benchmark's log after
// its line, a failed top-level and sub-benchmark, output written to stdout
// by a benchmark between its name and its figures, and a second package.
const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/mwan3d/mwan3d/daemon
cpu: AMD EPYC
BenchmarkStatus/handler-2         	   61174	     27157 ns/op	   29936 B/op	     195 allocs/op
BenchmarkStatus/100-callers-2     	     166	   6869926 ns/op	      4332 p50-µs	     11453 p99-µs	 6872533 B/op	   41040 allocs/op
--- BENCH: BenchmarkStatus/100-callers-2
    bench_test.go:99: a figure
--- FAIL: BenchmarkFail
    s_test.go:10: boom
    s_test.go:11: more
BenchmarkStdout-2   	junk on stdout
     100	         2.200 ns/op
--- FAIL: BenchmarkSub/failed
    s_test.go:16: bad
--- FAIL: BenchmarkSub
FAIL
exit status 1
FAIL	github.com/mwan3d/mwan3d/daemon	0.015s
pkg: github.com/mwan3d/mwan3d/nft
BenchmarkApply/60x1000/cold   	       4	 358280445 ns/op
BenchmarkDetection/interval1-down3-2         	       1	16252828752 ns/op	     14373 detect-ms
PASS
`

func TestParseSample(t *testing.T) {
	out, err := Parse(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	const d, n = "github.com/mwan3d/mwan3d/daemon", "github.com/mwan3d/mwan3d/nft"
	want := &Output{
		Results: []Result{
			{Pkg: d, Name: "BenchmarkStatus/handler", Procs: 2, N: 61174,
				Values: []Value{{27157, "ns/op"}, {29936, "B/op"}, {195, "allocs/op"}}},
			{Pkg: d, Name: "BenchmarkStatus/100-callers", Procs: 2, N: 166,
				Values: []Value{{6869926, "ns/op"}, {4332, "p50-µs"}, {11453, "p99-µs"}, {6872533, "B/op"}, {41040, "allocs/op"}}},
			{Pkg: d, Name: "BenchmarkStdout", Procs: 2, N: 100, Values: []Value{{2.2, "ns/op"}}},
			{Pkg: n, Name: "BenchmarkApply/60x1000/cold", Procs: 1, N: 4, Values: []Value{{358280445, "ns/op"}}},
			{Pkg: n, Name: "BenchmarkDetection/interval1-down3", Procs: 2, N: 1, Values: []Value{{16252828752, "ns/op"}, {14373, "detect-ms"}}},
		},
		Failures: []Failure{
			{Pkg: d, Name: "BenchmarkFail", Log: []string{"s_test.go:10: boom", "s_test.go:11: more"}},
			{Pkg: d, Name: "BenchmarkSub/failed", Log: []string{"s_test.go:16: bad"}},
			{Pkg: d, Name: "BenchmarkSub"},
		},
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("got\n%+v\nwant\n%+v", out, want)
	}
	if v, ok := out.Results[1].Metric("p99-µs"); !ok || v != 11453 {
		t.Errorf("Metric(p99-µs) = %v, %v", v, ok)
	}
	if _, ok := out.Results[1].Metric("none"); ok {
		t.Error("Metric(none) found")
	}
}

func TestParseLines(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []Result // nil: no result
	}{
		{"plain", "BenchmarkX-8 10 5 ns/op", []Result{{Name: "BenchmarkX", Procs: 8, N: 10, Values: []Value{{5, "ns/op"}}}}},
		{"no procs suffix", "BenchmarkX 10 5 ns/op", []Result{{Name: "BenchmarkX", Procs: 1, N: 10, Values: []Value{{5, "ns/op"}}}}},
		{"bare Benchmark", "Benchmark 1 2 ns/op", []Result{{Name: "Benchmark", Procs: 1, N: 1, Values: []Value{{2, "ns/op"}}}}},
		{"name with dashes", "BenchmarkX/a-b-c-4 1 2 x", []Result{{Name: "BenchmarkX/a-b-c", Procs: 4, N: 1, Values: []Value{{2, "x"}}}}},
		{"non-numeric suffix kept", "BenchmarkX/a-b 1 2 x", []Result{{Name: "BenchmarkX/a-b", Procs: 1, N: 1, Values: []Value{{2, "x"}}}}},
		{"plus suffix kept", "BenchmarkX-+3 1 2 x", []Result{{Name: "BenchmarkX-+3", Procs: 1, N: 1, Values: []Value{{2, "x"}}}}},
		{"zero suffix kept", "BenchmarkX-0 1 2 x", []Result{{Name: "BenchmarkX-0", Procs: 1, N: 1, Values: []Value{{2, "x"}}}}},
		{"float and exponent", "BenchmarkX 3 1.5e3 ns/op 0.25 MB/s", []Result{{Name: "BenchmarkX", Procs: 1, N: 3, Values: []Value{{1500, "ns/op"}, {0.25, "MB/s"}}}}},
		{"lower-case after Benchmark", "Benchmarks 1 2 ns/op", nil},
		{"not a benchmark", "Testing 1 2 ns/op", nil},
		{"odd fields", "BenchmarkX 1 2 ns/op 3", nil},
		{"no values", "BenchmarkX 1", nil},
		{"zero iterations", "BenchmarkX 0 2 ns/op", nil},
		{"negative iterations", "BenchmarkX -1 2 ns/op", nil},
		{"bad number", "BenchmarkX 1 abc ns/op", nil},
		{"NaN", "BenchmarkX 1 NaN ns/op", nil},
		{"Inf", "BenchmarkX 1 +Inf ns/op", nil},
		{"figures without a name", "     100	  2.2 ns/op", nil},
		{"name then junk then figures", "BenchmarkX-2 \tjunk\nmore junk\n 7 1 ns/op", []Result{{Name: "BenchmarkX", Procs: 2, N: 7, Values: []Value{{1, "ns/op"}}}}},
		{"pending name dropped by pkg line", "BenchmarkX-2 \tjunk\npkg: p\n 7 1 ns/op", nil},
		{"pending name dropped by failure", "BenchmarkX-2 \t--- FAIL: BenchmarkX-2\n 7 1 ns/op", nil},
		{"empty", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Parse(strings.NewReader(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Results, c.want) {
				t.Errorf("results %+v, want %+v", out.Results, c.want)
			}
		})
	}
}

func TestParseFailureOnNameLine(t *testing.T) {
	out, err := Parse(strings.NewReader("pkg: p\nBenchmarkX-2   \t--- FAIL: BenchmarkX-2\n    x_test.go:1: no\nBenchmarkY-2 1 2 ns/op\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Failure{{Pkg: "p", Name: "BenchmarkX", Log: []string{"x_test.go:1: no"}}}
	if !reflect.DeepEqual(out.Failures, want) || len(out.Results) != 1 || out.Results[0].Name != "BenchmarkY" {
		t.Errorf("got %+v", out)
	}
}

func TestParseLimits(t *testing.T) {
	long := "BenchmarkX 1 2 " + strings.Repeat("u", maxLineBytes) + "\n"
	if _, err := Parse(strings.NewReader(long)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a line over the limit: err %v", err)
	}
	var logs strings.Builder
	logs.WriteString("--- FAIL: BenchmarkX\n")
	for range 3 * maxFailureLogs {
		logs.WriteString("    x_test.go:1: again\n")
	}
	out, err := Parse(strings.NewReader(logs.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Failures) != 1 || len(out.Failures[0].Log) != maxFailureLogs {
		t.Errorf("failure log kept %d lines, want %d", len(out.Failures[0].Log), maxFailureLogs)
	}
}

// FuzzParse: any input parses without a panic, and every result it finds
// is well formed and prints back to a line that parses to the same result.
func FuzzParse(f *testing.F) {
	f.Add(sampleOutput)
	f.Add("BenchmarkX-2 \tjunk\n 7 1 ns/op\n")
	f.Add("--- FAIL: BenchmarkX\n    log\n")
	f.Add("BenchmarkX 1 NaN ns/op")
	f.Add("pkg: \x00\nBenchmark\t9\t1e308 x")
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, r := range out.Results {
			if !isBenchmarkName(r.Name) || r.N <= 0 || r.Procs <= 0 || len(r.Values) == 0 {
				t.Fatalf("malformed result %+v", r)
			}
			line := r.Name
			if r.Procs != 1 {
				line += "-" + strconv.Itoa(r.Procs)
			}
			line += " " + strconv.FormatInt(r.N, 10)
			for _, v := range r.Values {
				line += " " + strconv.FormatFloat(v.Value, 'g', -1, 64) + " " + v.Unit
			}
			again, err := Parse(strings.NewReader("pkg: " + r.Pkg + "\n" + line))
			if err != nil || len(again.Results) != 1 {
				t.Fatalf("%q → %+v → %q → %+v, %v", in, r, line, again, err)
			}
			if got := again.Results[0]; got.N != r.N || len(got.Values) != len(r.Values) {
				t.Fatalf("%q → %+v → %q → %+v", in, r, line, got)
			}
		}
		for _, fl := range out.Failures {
			if len(fl.Log) > maxFailureLogs {
				t.Fatalf("failure log of %d lines", len(fl.Log))
			}
		}
	})
}
