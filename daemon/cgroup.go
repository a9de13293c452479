package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/mwan3d/mwan3d/config"
	"github.com/mwan3d/mwan3d/nft"
)

// CgroupAuto as Options.CgroupDir makes the daemon find the cgroup2 mount
// in /proc/self/mountinfo and use its directory "mwan3".
const CgroupAuto = "auto"

// cgroupBaseName is the directory under the cgroup2 mount that CgroupAuto
// uses.
const cgroupBaseName = "mwan3"

// cgroups keeps one cgroup v2 directory per enabled interface under a base
// directory, for `mwan3 use`: the ruleset marks the traffic of sockets
// created in an interface's directory with that interface's mark. The loop
// creates and removes the directories; the use method reads them.
type cgroups struct {
	log *slog.Logger
	// base holds the interface directories; level is its cgroup level
	// (the root of the hierarchy is level 0).
	base  string
	level uint32
	// id returns the cgroup id of a directory.
	id func(path string) (uint64, error)

	mu       sync.Mutex
	err      error // why cgroups are unavailable; nil when they work
	haveBase bool  // base exists (checked once, not on every apply)
	madeBase bool  // we created base, so we remove it
	dirs     map[string]cgroupDir
}

// cgroupDir is the directory of one interface.
type cgroupDir struct {
	path string
	id   uint64
}

// openCgroups prepares the cgroups under dir: "" leaves `mwan3 use`
// unavailable, CgroupAuto finds the cgroup2 mount, anything else must be
// a directory on a cgroup2 file system (created when missing). Nothing
// is created until sync.
func openCgroups(dir string, log *slog.Logger) *cgroups {
	c := &cgroups{log: log, id: cgroupID, dirs: map[string]cgroupDir{}}
	if dir == "" {
		c.err = errors.New("the daemon runs without a cgroup directory (mwan3d run --cgroup)")
		return c
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		c.err = fmt.Errorf("read mount table: %w", err)
		return c
	}
	c.base, c.level, c.err = cgroupBase(parseMountinfo(string(data)), dir)
	return c
}

// cgroupBase resolves the base directory and its cgroup level from the
// mount table.
func cgroupBase(mounts []mountEntry, dir string) (string, uint32, error) {
	if dir == CgroupAuto {
		for _, m := range mounts {
			if m.fsType == "cgroup2" {
				return filepath.Join(m.point, cgroupBaseName), uint32(pathDepth(m.root) + 1), nil
			}
		}
		return "", 0, errors.New("no cgroup2 file system is mounted")
	}
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return "", 0, fmt.Errorf("cgroup directory %s is not an absolute path", dir)
	}
	// The mount that holds dir is the last one whose mount point is
	// dir or one of its parents (later mounts hide earlier ones).
	var best *mountEntry
	for i := range mounts {
		m := &mounts[i]
		if m.point == dir || m.point == "/" || strings.HasPrefix(dir, m.point+"/") {
			if best == nil || len(m.point) >= len(best.point) {
				best = m
			}
		}
	}
	if best == nil || best.fsType != "cgroup2" {
		return "", 0, fmt.Errorf("%s is not on a cgroup2 file system", dir)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(dir, best.point), "/")
	if rel == "" {
		return "", 0, fmt.Errorf("%s is the root of a cgroup2 mount; give a directory below it", dir)
	}
	return dir, uint32(pathDepth(best.root) + pathDepth(rel)), nil
}

// pathDepth counts the components of a slash-separated path ("/" is 0).
func pathDepth(p string) int {
	n := 0
	for s := range strings.SplitSeq(p, "/") {
		if s != "" {
			n++
		}
	}
	return n
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	root   string // the directory of the file system mounted here
	point  string // where it is mounted
	fsType string
}

// parseMountinfo reads /proc/self/mountinfo (proc(5)): "id parent
// major:minor root point options [optional…] - type source superoptions".
// Malformed lines are skipped.
func parseMountinfo(data string) []mountEntry {
	var out []mountEntry
	for line := range strings.SplitSeq(data, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			continue
		}
		out = append(out, mountEntry{root: unescapeMount(f[3]), point: unescapeMount(f[4]), fsType: f[sep+1]})
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sync creates the directories of the enabled interfaces, removes those
// of the others, and returns what the ruleset must mark.
func (c *cgroups) sync(cfg *config.Config) []nft.Use {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil
	}
	if !c.haveBase {
		switch err := os.Mkdir(c.base, 0o755); {
		case err == nil:
			c.haveBase, c.madeBase = true, true
		case errors.Is(err, fs.ErrExist):
			c.haveBase = true
		default:
			c.err = fmt.Errorf("create the cgroup directory: %w", err)
			c.log.Warn("mwan3 use is unavailable", "err", c.err)
			return nil
		}
	}
	want := map[string]bool{}
	var uses []nft.Use
	for _, i := range cfg.Interfaces {
		if !i.Enabled {
			continue
		}
		want[i.Name] = true
		d, ok := c.dirs[i.Name]
		if !ok {
			var err error
			if d, err = c.create(i.Name); err != nil {
				c.log.Warn("mwan3 use: cannot create the interface's cgroup", "interface", i.Name, "err", err)
				continue
			}
			c.dirs[i.Name] = d
		}
		uses = append(uses, nft.Use{Cgroup: d.id, Level: c.level + 1, Interface: i.Name})
	}
	for name, d := range c.dirs {
		if !want[name] {
			c.remove(d)
			delete(c.dirs, name)
		}
	}
	return uses
}

func (c *cgroups) create(name string) (cgroupDir, error) {
	d := cgroupDir{path: filepath.Join(c.base, name)}
	if err := os.Mkdir(d.path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return d, fmt.Errorf("create the cgroup directory: %w", err)
	}
	var err error
	if d.id, err = c.id(d.path); err != nil {
		return d, err
	}
	return d, nil
}

// remove deletes a directory; one that still holds processes (a command
// started by `mwan3 use`) cannot be removed and stays.
func (c *cgroups) remove(d cgroupDir) {
	if err := os.Remove(d.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("cannot remove cgroup (a command run by mwan3 use may still be in it)", "dir", d.path, "err", err)
	}
}

// dir returns the directory of an enabled interface.
func (c *cgroups) dir(name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return "", fmt.Errorf("cgroup v2 is not available: %w", c.err)
	}
	d, ok := c.dirs[name]
	if !ok {
		return "", fmt.Errorf("cgroup v2 is not available: no cgroup for interface %s under %s", name, c.base)
	}
	return d.path, nil
}

// close removes every directory, and the base when the daemon created it.
func (c *cgroups) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, d := range c.dirs {
		c.remove(d)
		delete(c.dirs, name)
	}
	if c.madeBase {
		if err := os.Remove(c.base); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cannot remove cgroup directory", "dir", c.base, "err", err)
		}
		c.madeBase = false
	}
	c.haveBase = false
}
