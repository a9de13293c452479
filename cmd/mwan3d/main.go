// Command mwan3d is the multi-WAN daemon and, called as "mwan3", its CLI.
//
// Every subcommand lives in a file of its own and registers itself in
// commands from an init function, so main stays a thin dispatcher.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// command is one subcommand of the binary.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	if _, dup := commands[name]; dup {
		panic("mwan3d: subcommand registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

func main() {
	os.Exit(dispatch(os.Args, os.Stdout, os.Stderr))
}

// dispatch picks the subcommand from argv. Called through a link named
// "mwan3" the binary is the legacy CLI.
func dispatch(argv []string, stdout, stderr io.Writer) int {
	if len(argv) > 0 && filepath.Base(argv[0]) == "mwan3" {
		if c, ok := commands["cli"]; ok {
			return c.run(argv[1:], stdout, stderr)
		}
	}
	if len(argv) < 2 {
		usage(stderr)
		return 2
	}
	name := argv[1]
	switch name {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "mwan3d: unknown command %q\n", name)
		usage(stderr)
		return 2
	}
	return c.run(argv[2:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mwan3d <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
}

// newFlags makes a subcommand's flag set that reports to stderr and prints
// usage (a line, then the flags) on errors.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and refuses positional arguments; false means a
// usage error (exit status 2), already reported.
func parseFlags(fs *flag.FlagSet, args []string) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return false
	}
	return true
}
