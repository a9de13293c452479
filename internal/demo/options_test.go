package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	defaults := options{Binary: "build/mwan3d", CutAfter: 8 * time.Second, Cut: cutCarrier, Window: 3 * time.Second, Quality: qualityAuto}
	tests := []struct {
		name string
		args []string
		want options
		err  string
	}{
		{"defaults", nil, defaults, ""},
		{"test run", []string{"-binary", "/tmp/m", "-interval", "1", "-cut-after", "3s", "-outage", "4s", "-duration", "16s", "-plain", "-quality", "demo"},
			options{Binary: "/tmp/m", Interval: 1, CutAfter: 3 * time.Second, Outage: 4 * time.Second, Duration: 16 * time.Second,
				Plain: true, Cut: cutCarrier, Window: 3 * time.Second, Quality: qualityDemo}, ""},
		{"upstream", []string{"-cut", "upstream", "-window", "10s"},
			options{Binary: "build/mwan3d", CutAfter: 8 * time.Second, Cut: cutUpstream, Window: 10 * time.Second, Quality: qualityAuto}, ""},
		{"print config", []string{"-print-config"}, func() options { o := defaults; o.PrintConfig = true; return o }(), ""},
		{"unknown cut", []string{"-cut", "unplug"}, options{}, `-cut "unplug"`},
		{"negative duration", []string{"-duration", "-1s"}, options{}, "-duration -1s"},
		{"negative cut-after", []string{"-cut-after", "-1s"}, options{}, "-cut-after"},
		{"negative outage", []string{"-outage", "-1s"}, options{}, "-outage"},
		{"huge interval", []string{"-interval", "100000"}, options{}, "-interval 100000"},
		{"tiny window", []string{"-window", "10ms"}, options{}, "-window 10ms"},
		{"unknown quality", []string{"-quality", "guess"}, options{}, `-quality "guess"`},
		{"empty binary", []string{"-binary", ""}, options{}, "-binary: empty"},
		{"arguments", []string{"now"}, options{}, "unexpected arguments"},
		{"unknown flag", []string{"-fast"}, options{}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunWithoutNamespaces(t *testing.T) {
	var out, errw strings.Builder
	if code := run([]string{"-h"}, &out, &errw); code != 0 || !strings.Contains(errw.String(), "usage: demo") {
		t.Errorf("-h: exit %d, stderr %q", code, errw.String())
	}
	errw.Reset()
	if code := run([]string{"-cut", "x"}, &out, &errw); code != 2 || !strings.Contains(errw.String(), "demo: -cut") {
		t.Errorf("bad flag: exit %d, stderr %q", code, errw.String())
	}
	out.Reset()
	if code := run([]string{"-print-config", "-interval", "2"}, &out, &errw); code != 0 {
		t.Fatalf("-print-config: exit %d, stderr %q", code, errw.String())
	}
	d, err := buildConfig(defaultConfig, 2)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != d.Text {
		t.Errorf("-print-config printed:\n%s\nwant:\n%s", out.String(), d.Text)
	}
	if _, err := parseOptions([]string{"-help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: %v, want flag.ErrHelp", err)
	}
}
