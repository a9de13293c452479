package track

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// fileStore writes the tracker files of one interface (spec §5.8): one
// value and a newline per file, each replaced atomically, so readers never
// see a partial or empty value. A value equal to the last one written is
// not written again. Only the tracker goroutine uses it.
//
// TURN and TIME change after every round, so they are the tracker's only
// writes while nothing changes; on Linux they are rewritten without
// creating a file (see diskFiles). Everything else is written to a
// temporary file that is renamed over the old one.
type fileStore struct {
	dir  string // <base>/<iface>; "" stores nothing
	last map[string]string
	disk *diskFiles
}

func newFileStore(base, iface string) *fileStore {
	s := &fileStore{last: map[string]string{}}
	if base != "" {
		s.dir = filepath.Join(base, iface)
		s.disk = newDiskFiles(s.dir)
	}
	return s
}

// validFileName rejects names that would leave the directory (targets are
// used verbatim in TRACK_<target>).
func validFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("invalid tracker file name %q", name)
	}
	return nil
}

// tmpName is the temporary file a value is written to before it replaces
// name.
func tmpName(name string) string { return "." + name + ".tmp" }

// everyRound tells the files whose value changes after every round.
func everyRound(name string) bool { return name == fileTurn || name == fileTime }

// write stores value in the file name.
func (s *fileStore) write(name, value string) error {
	if s.dir == "" {
		return nil
	}
	if v, ok := s.last[name]; ok && v == value {
		return nil
	}
	if err := validFileName(name); err != nil {
		return err
	}
	err := s.disk.put(name, value, everyRound(name))
	if errors.Is(err, fs.ErrNotExist) { // directory removed under us: legacy did mkdir -p every round
		s.disk.reset()
		if err = os.MkdirAll(s.dir, 0o755); err == nil {
			err = s.disk.put(name, value, everyRound(name))
		}
	}
	if err != nil {
		delete(s.last, name)
		return fmt.Errorf("write tracker file %s: %w", filepath.Join(s.dir, name), err)
	}
	s.last[name] = value
	return nil
}

// remove deletes one file (a target that left the configuration).
func (s *fileStore) remove(name string) error {
	delete(s.last, name)
	if s.dir == "" || validFileName(name) != nil {
		return nil
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove tracker file: %w", err)
	}
	return nil
}

// removeAll deletes the interface's directory (tracker stopped) and
// releases what the store holds open.
func (s *fileStore) removeAll() error {
	clear(s.last)
	if s.dir == "" {
		return nil
	}
	err := s.disk.close()
	if rerr := os.RemoveAll(s.dir); rerr != nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("remove tracker files: %w", err)
	}
	return nil
}
