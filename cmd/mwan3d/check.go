package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mwan3d/mwan3d/config"
)

func init() {
	register("check", "parse and validate the configuration, print every problem", runCheck)
}

// runCheck implements `mwan3d check [-c FILE] [--strict]`: exit 0 when the
// configuration loads (warnings allowed), 1 when it has errors, or warnings
// under --strict, 2 on usage errors.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "usage: mwan3d check [-c FILE] [--strict]", stderr)
	path := fs.String("c", config.DefaultPath, "configuration `file`")
	strict := fs.Bool("strict", false, "treat warnings as errors")
	if !parseFlags(fs, args) {
		return 2
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintf(stderr, "mwan3d check: %v\n", err)
		return 1
	}
	cfg, diags := config.Load(*path, data)
	for _, d := range diags.Sorted() {
		fmt.Fprintln(stdout, d.Error())
	}
	nerr, nwarn := len(diags.Errors()), len(diags.Warnings())
	verdict := "ok"
	switch {
	case nerr > 0:
		verdict = "refused"
	case nwarn > 0 && *strict:
		verdict = "refused (--strict)"
	}
	fmt.Fprintf(stdout, "%s: %s; %d errors, %d warnings: %s\n", *path, cfg.Summary(), nerr, nwarn, verdict)
	if verdict != "ok" {
		return 1
	}
	return 0
}
