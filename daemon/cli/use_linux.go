package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// execCommand joins the cgroup (all threads of the process: cgroup.procs)
// and execs argv: the program found in PATH, or else /bin/sh -c with the
// words joined.
func execCommand(cgroup string, argv, env []string) error {
	procs := filepath.Join(cgroup, "cgroup.procs")
	f, err := os.OpenFile(procs, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("join cgroup %s: %w", cgroup, err)
	}
	_, werr := f.WriteString(strconv.Itoa(os.Getpid()))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("join cgroup %s: %w", cgroup, werr)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		path, argv = "/bin/sh", shellArgv(argv)
	}
	if err := syscall.Exec(path, argv, env); err != nil {
		return fmt.Errorf("run %s: %w", path, err)
	}
	return nil
}
