package main

import "time"

// job is one benchmark measurement: a package's test binary run with
// -test.run '^$' -test.bench <bench> -test.count <count>, procs copies of
// it at the same time.
type job struct {
	name      string   // label for -only and the progress lines
	pkg       string   // package directory relative to the module root
	bench     string   // -test.bench pattern
	count     int      // -test.count of each process
	procs     int      // processes at once (1 when 0)
	benchtime string   // -test.benchtime ("" for Go's default)
	args      []string // more flags for the test binary
	root      bool     // needs root (namespaces, raw sockets)
}

// source is where a row's values come from: every result line of a job's
// benchmark, its value of unit, times scale to reach the kind's base unit.
type source struct {
	job   string // job name
	bench string // full benchmark name without the GOMAXPROCS suffix
	unit  string
	scale float64
}

// target is a cross-compilation target of the binary-size rows.
type target struct {
	name string   // as in the Makefile's CROSS: linux-mipsle
	env  []string // GOOS, GOARCH and the rest
}

// line is one line of the table: a section title, a figure from
// benchmark results (src) or a binary's size (size).
type line struct {
	row  Row
	src  *source
	size *target
}

// Units of the budgets.
const (
	ms = float64(time.Millisecond)
	mb = 1 << 20
)

// plan is what `make bench` measures: the jobs in the order they run, the
// lines of the table and the notes that explain it. quick makes every job
// one short run, to check the program rather than the daemon.
func plan(quick bool) ([]job, []line, []string) {
	runs, procs, long := 5, 5, 3
	nftTime, warm, win := "0.5s", "15s", "30s"
	if quick {
		runs, procs, long = 1, 1, 1
		nftTime, warm, win = "100ms", "3s", "5s"
	}
	const bt = "./internal/benchtable"
	jobs := []job{
		{name: "apply", pkg: "./nft", bench: "^BenchmarkApply$", count: runs, benchtime: nftTime, root: true},
		{name: "status", pkg: "./daemon", bench: "^BenchmarkStatus$/^(handler|100-callers)$", count: runs},
		{name: "round", pkg: "./track", bench: "^BenchmarkRoundICMP$", count: runs, root: true},
		{name: "detect-defaults", pkg: bt, bench: "^BenchmarkDetection$/^defaults$", count: 1, procs: procs, benchtime: "1x", root: true},
		{name: "detect-interval1", pkg: bt, bench: "^BenchmarkDetection$/^interval1-down3$", count: 1, procs: procs, benchtime: "1x", root: true},
		{name: "detect-carrier", pkg: bt, bench: "^BenchmarkDetection$/^carrier$", count: runs, benchtime: "1x", root: true},
		{name: "daemon8x4", pkg: bt, bench: "^BenchmarkDaemon8x4$", count: long, benchtime: "1x", root: true,
			args: []string{"-benchtable.warmup=" + warm, "-benchtable.window=" + win}},
	}

	var lines []line
	section := func(title string) { lines = append(lines, line{row: Row{Section: title}}) }
	metric := func(r Row, job, bench, unit string, scale float64) {
		lines = append(lines, line{row: r, src: &source{job: job, bench: bench, unit: unit, scale: scale}})
	}

	section("apply latency: nft ruleset into the kernel (BenchmarkApply, in a network namespace)")
	for _, size := range []struct{ name, what, legacy string }{
		{"default", "default config", "343 ms (start, 356 forks)"},
		{"16x200", "16 interfaces × 200 rules", ""},
		{"60x1000", "60 interfaces × 1000 rules", ""},
	} {
		for _, kind := range []struct{ name, what string }{{"cold", "new table"}, {"change", "one change"}, {"same", "unchanged"}} {
			legacy := ""
			if kind.name == "cold" {
				legacy = size.legacy
			}
			metric(Row{What: size.what + ", " + kind.what, Kind: Duration, Budget: 1 * ms, Legacy: legacy},
				"apply", "BenchmarkApply/"+size.name+"/"+kind.name, "ns/op", 1)
		}
	}

	section("ubus call mwan3 status (BenchmarkStatus, through the ubustest broker)")
	metric(Row{What: "100 concurrent callers, p50", Kind: Duration, Legacy: "136 ms (mwan3 status)"},
		"status", "BenchmarkStatus/100-callers", "p50-µs", 1e3)
	metric(Row{What: "100 concurrent callers, p99", Kind: Duration, Budget: 1 * ms, Legacy: "136 ms (mwan3 status)"},
		"status", "BenchmarkStatus/100-callers", "p99-µs", 1e3)
	metric(Row{What: "daemon-side handler, per call", Kind: Duration},
		"status", "BenchmarkStatus/handler", "ns/op", 1)

	section("detection: cut to the first new flow on the backup (real daemon on the bed)")
	metric(Row{What: "defaults: upstream cut", Kind: Duration, Budget: 62e3 * ms, Legacy: "126.5 s"},
		"detect-defaults", "BenchmarkDetection/defaults", "detect-ms", ms)
	metric(Row{What: "interval 1, down 3: upstream cut", Kind: Duration, Budget: 15e3 * ms, Legacy: "51 s"},
		"detect-interval1", "BenchmarkDetection/interval1-down3", "detect-ms", ms)
	metric(Row{What: "carrier loss", Kind: Duration, Budget: 50 * ms, Legacy: "seconds (hotplug path)"},
		"detect-carrier", "BenchmarkDetection/carrier", "detect-ms", ms)

	section("8 WANs × 4 targets, interval 1 s (stripped daemon on an 8-WAN bed)")
	metric(Row{What: "CPU per probe round, whole daemon", Kind: Duration, Budget: 0.1 * ms, Legacy: "≈ 5.5 ms (forks)"},
		"daemon8x4", "BenchmarkDaemon8x4", "cpu-µs/round", 1e3)
	metric(Row{What: "  of which in user space", Kind: Duration},
		"daemon8x4", "BenchmarkDaemon8x4", "user-µs/round", 1e3)
	metric(Row{What: "CPU per probe round, tracker alone", Kind: Duration, Budget: 0.1 * ms, Legacy: "≈ 5.5 ms"},
		"round", "BenchmarkRoundICMP", "cpu-µs/round", 1e3)
	metric(Row{What: "VmRSS", Kind: Bytes, Budget: 8 * mb, Legacy: "1.2 MB/tracker + rtmon, rpcd"},
		"daemon8x4", "BenchmarkDaemon8x4", "VmRSS-kB", 1024)
	metric(Row{What: "VmHWM (peak)", Kind: Bytes, Budget: 8 * mb},
		"daemon8x4", "BenchmarkDaemon8x4", "VmHWM-kB", 1024)

	section("binary size: stripped (CGO_ENABLED=0, -trimpath, -ldflags '-s -w')")
	for _, t := range []struct {
		name   string
		env    []string
		budget float64
	}{
		{"linux-amd64", []string{"GOOS=linux", "GOARCH=amd64"}, 0},
		{"linux-arm64", []string{"GOOS=linux", "GOARCH=arm64"}, 0},
		{"linux-armv7", []string{"GOOS=linux", "GOARCH=arm", "GOARM=7"}, 0},
		{"linux-mips (softfloat)", []string{"GOOS=linux", "GOARCH=mips", "GOMIPS=softfloat"}, 0},
		{"linux-mipsle (softfloat)", []string{"GOOS=linux", "GOARCH=mipsle", "GOMIPS=softfloat"}, 4 * mb},
	} {
		lines = append(lines, line{row: Row{What: t.name, Kind: Bytes, Budget: t.budget}, size: &target{name: t.name, env: t.env}})
	}
	notes := []string{
		"ours: the median of the runs; the runs of a detection row with more than one run at the same time, each on a bed of its own.",
		"apply: new table = into an empty namespace; one change = the first interface toggles online/offline; unchanged = the same plan again.",
		"status: the broker and the 100 callers run in the benchmark's process, on the same CPUs as the daemon.",
		"detection: from the last new flow answered through wan before the cut to the first one answered through wanb;",
		"  a new UDP flow every 20 ms (defaults), 10 ms (interval 1), 2 ms (carrier); the cut at a random phase of the round;",
		"  legacy's figures are to its `disconnected` event.",
		"CPU per probe round, whole daemon: its CPU time (all threads) over the rounds its 8 trackers completed in " + win + ",",
		"  after " + warm + " of tracking; its kernel part may include softirq work of the testbed's veth/NAT path that its",
		"  probes cause; user space: the utime share of /proc/<pid>/stat (ticks of 10 ms, coarse);",
		"  tracker alone: one real 4-target ICMP round on loopback (track's BenchmarkRoundICMP).",
		"MB = 2^20 bytes, kB = 2^10 bytes.",
	}
	return jobs, lines, notes
}
