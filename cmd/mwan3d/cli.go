package main

import (
	"io"
	"os"
	"strings"

	"github.com/mwan3d/mwan3d/daemon/cli"
)

func init() {
	register("cli", "the mwan3 command: mwan3d cli [-s SOCKET] [--init SCRIPT] <command> [args] (also run as mwan3)", runCLI)
}

// Environment variables that configure the CLI (the flags win).
const (
	envSocket     = "MWAN3_UBUS_SOCKET"
	envInitScript = "MWAN3_INIT_SCRIPT"
)

// runCLI is `mwan3d cli [-s SOCKET] [--init SCRIPT] <command> [args]`, and
// the whole of `mwan3 …` when the binary is called by that name.
func runCLI(args []string, stdout, stderr io.Writer) int {
	opts, rest := cliOptions(args, os.Getenv)
	return cli.Main(rest, stdout, stderr, opts)
}

// cliOptions reads the settings from the environment, then from leading
// -s SOCKET and --init SCRIPT (also -s=…, --init=…, one or two dashes).
// Parsing stops at the first other word, so a command's own arguments
// (`use wan ping -c 1 …`) are never taken for flags.
func cliOptions(args []string, getenv func(string) string) (cli.Options, []string) {
	opts := cli.Options{Socket: getenv(envSocket), InitScript: getenv(envInitScript)}
	for len(args) > 0 {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !strings.HasPrefix(args[0], "-") || (name != "s" && name != "init") {
			break
		}
		if !hasVal {
			if len(args) < 2 {
				break
			}
			val, args = args[1], args[1:]
		}
		args = args[1:]
		if name == "s" {
			opts.Socket = val
		} else {
			opts.InitScript = val
		}
	}
	return opts, args
}
