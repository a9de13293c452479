// Command benchtable measures mwan3d on this machine and prints one table
// of the figures that matter next to their budgets (DESIGN.md "Numbers to
// beat") and legacy mwan3's figures: apply latency, `ubus call mwan3
// status` under load, detection time, CPU per probe round, memory and
// binary sizes. `make bench` runs it from the repository's root.
//
// It runs the packages' Go benchmarks (their test binaries, built with
// `go test -c`, with -test.run '^$' -test.bench … -test.count N), parses
// Go's benchmark output and prints the median of the runs. The end-to-end
// figures come from this package's own benchmarks (bed_linux_test.go),
// which run the stripped daemon on a namespace testbed; they and the nft
// and raw-socket benchmarks need root, and without it their rows read
// "needs root".
//
// Usage: go run ./internal/benchtable [-quick] [-only REGEXP] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the program: flags in args, the table on stdout, progress and
// errors on stderr; it returns the exit status (1 when a measurement
// failed, 2 on usage errors).
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "one short run of everything (checks the program, not the daemon)")
	only := fs.String("only", "", "run only the jobs whose name matches this `regexp` (apply, status, round, detect-…, daemon8x4, sizes)")
	verbose := fs.Bool("v", false, "copy the benchmarks' output to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "benchtable: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var sel *regexp.Regexp
	if *only != "" {
		var err error
		if sel, err = regexp.Compile(*only); err != nil {
			fmt.Fprintf(stderr, "benchtable: -only: %v\n", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	r := &runner{gobin: "go", built: map[string]string{}}
	if *verbose {
		r.verbose = stderr
	}
	var err error
	if r.root, err = moduleRoot(ctx, r.gobin); err != nil {
		fmt.Fprintf(stderr, "benchtable: %v\n", err)
		return 1
	}
	if r.dir, err = os.MkdirTemp("", "benchtable"); err != nil {
		fmt.Fprintf(stderr, "benchtable: %v\n", err)
		return 1
	}
	defer os.RemoveAll(r.dir)

	isRoot := os.Geteuid() == 0
	jobs, lines, notes := plan(*quick)
	selected := func(name string) bool { return sel == nil || sel.MatchString(name) }
	results := map[string]jobResult{}
	failed := false
	for i, j := range jobs {
		switch {
		case !selected(j.name):
			results[j.name] = jobResult{note: "not run"}
			continue
		case j.root && !isRoot:
			results[j.name] = jobResult{note: "needs root"}
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(stderr, "[%d/%d] %s: %s %s, %d run(s) × %d process(es) …\n", i+1, len(jobs), j.name, j.pkg, j.bench, j.count, max(j.procs, 1))
		out, err := r.run(ctx, j)
		results[j.name] = jobResult{out: out, err: err}
		if err != nil {
			failed = true
			fmt.Fprintf(stderr, "benchtable: %s: %v\n", j.name, err)
		}
		if out != nil {
			for _, f := range out.Failures {
				fmt.Fprintf(stderr, "benchtable: %s: %s failed:\n    %s\n", j.name, f.Name, strings.Join(f.Log, "\n    "))
			}
		}
		fmt.Fprintf(stderr, "      took %v\n", time.Since(t0).Round(time.Second))
	}
	for i := range lines {
		l := &lines[i]
		switch {
		case l.src != nil:
			l.row.Figure = results[l.src.job].figure(*l.src)
		case l.size != nil && !selected("sizes"):
			l.row.Figure = Figure{Note: "not run"}
		case l.size != nil:
			fmt.Fprintf(stderr, "size: building %s …\n", l.size.name)
			n, err := r.binarySize(ctx, *l.size)
			if err != nil {
				failed = true
				fmt.Fprintf(stderr, "benchtable: %v\n", err)
				l.row.Figure = Figure{Note: "build failed"}
				continue
			}
			l.row.Figure = Figure{Value: float64(n), Runs: 1, Exact: true}
		}
	}

	fmt.Fprintf(stdout, "mwan3d benchmarks — %s\n", describeMachine(ctx, r))
	if !isRoot {
		fmt.Fprintln(stdout, "not root: the rows that need namespaces or raw sockets were not measured")
	}
	fmt.Fprintln(stdout)
	rows := make([]Row, len(lines))
	for i, l := range lines {
		rows[i] = l.row
	}
	if err := Render(stdout, rows); err != nil {
		fmt.Fprintf(stderr, "benchtable: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout)
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	fmt.Fprintf(stdout, "total time %v\n", time.Since(start).Round(time.Second))
	if failed {
		return 1
	}
	return 0
}

// jobResult is what a job gave: its parsed output and error, or a note
// saying why it did not run.
type jobResult struct {
	out  *Output
	err  error
	note string
}

// figure is the median of src's values in the job's output, or a figure
// with a note: why the job did not run, or that the benchmark failed or
// gave no result.
func (jr jobResult) figure(src source) Figure {
	if jr.note != "" {
		return Figure{Note: jr.note}
	}
	if jr.out == nil {
		return Figure{Note: "failed"}
	}
	var values []float64
	for _, res := range jr.out.Results {
		if res.Name != src.bench {
			continue
		}
		if v, ok := res.Metric(src.unit); ok {
			values = append(values, v*src.scale)
		}
	}
	note := "no result"
	for _, f := range jr.out.Failures {
		if f.Name == src.bench || strings.HasPrefix(src.bench, f.Name+"/") {
			note = "failed"
		}
	}
	if len(values) > 0 && note == "failed" {
		// Some runs failed: a median of the others would hide it.
		return Figure{Note: fmt.Sprintf("failed, %d ok", len(values))}
	}
	return MedianOf(values, note)
}

// describeMachine says where the figures come from: CPU, core count, Go
// version and the commit measured.
func describeMachine(ctx context.Context, r *runner) string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	commit := "unknown"
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = r.root
	if out, err := cmd.Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%s, %d CPUs, %s %s/%s, commit %s, %s", cpu, runtime.NumCPU(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, commit, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}
