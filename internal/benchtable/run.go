package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runner builds and runs benchmarks in the module at root, with scratch
// files in dir.
type runner struct {
	gobin   string // the go command
	root    string // module root directory
	dir     string // scratch directory for test binaries and builds
	verbose io.Writer
	built   map[string]string // package → test binary
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context, gobin string) (string, error) {
	out, err := exec.CommandContext(ctx, gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the mwan3d repository")
	}
	return filepath.Dir(mod), nil
}

// testBinary builds the test binary of pkg once.
func (r *runner) testBinary(ctx context.Context, pkg string) (string, error) {
	if bin, ok := r.built[pkg]; ok {
		return bin, nil
	}
	bin := filepath.Join(r.dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg)+".test")
	cmd := exec.CommandContext(ctx, r.gobin, "test", "-c", "-o", bin, pkg)
	cmd.Dir = r.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c %s: %w\n%s", pkg, err, out)
	}
	r.built[pkg] = bin
	return bin, nil
}

// run runs job's benchmarks: the test binary of its package with
// -test.bench, j.procs copies at the same time, each in the package's
// directory as `go test` does. It returns the parsed output of all of
// them together with an error for each failed process.
func (r *runner) run(ctx context.Context, j job) (*Output, error) {
	bin, err := r.testBinary(ctx, j.pkg)
	if err != nil {
		return nil, err
	}
	args := []string{"-test.run=^$", "-test.bench=" + j.bench, "-test.count=" + strconv.Itoa(j.count), "-test.timeout=15m"}
	if j.benchtime != "" {
		args = append(args, "-test.benchtime="+j.benchtime)
	}
	args = append(args, j.args...)
	procs := max(j.procs, 1)
	outs := make([]*Output, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() { outs[i], errs[i] = r.runOne(ctx, bin, filepath.Join(r.root, j.pkg), args) })
	}
	wg.Wait()
	merged := &Output{}
	for _, o := range outs {
		if o != nil {
			merged.Results = append(merged.Results, o.Results...)
			merged.Failures = append(merged.Failures, o.Failures...)
		}
	}
	return merged, errors.Join(errs...)
}

// maxStderr bounds the stderr kept of a benchmark process for its error.
const maxStderr = 4 << 10

// runOne runs one benchmark process and parses its standard output.
func (r *runner) runOne(ctx context.Context, bin, dir string, args []string) (*Output, error) {
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxStderr}
	cmd := exec.CommandContext(ctx, bin, args...)
	// On Ctrl-C the process gets the same signal first: the testbed
	// reaps what a dead benchmark left at its next start.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if r.verbose != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, r.verbose), io.MultiWriter(stderr, r.verbose)
	}
	runErr := cmd.Run()
	out, err := Parse(&stdout)
	if runErr != nil {
		err = errors.Join(fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), runErr, stderr.String()), err)
	}
	return out, err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// binarySize builds ./cmd/mwan3d for t as a router gets it and returns its
// size in bytes.
func (r *runner) binarySize(ctx context.Context, t target) (int64, error) {
	out := filepath.Join(r.dir, "mwan3d-"+strings.NewReplacer(" ", "", "(", "-", ")", "").Replace(t.name))
	cmd := exec.CommandContext(ctx, r.gobin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/mwan3d")
	cmd.Dir = r.root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), t.env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build %s: %w\n%s", t.name, err, msg)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("build %s: %w", t.name, err)
	}
	return fi.Size(), nil
}
