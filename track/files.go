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
// value and a newline per file, each replaced atomically (written to a
// temporary file in the same directory, then renamed), so readers never
// see a partial value. A value equal to the last one written is not
// written again. Only the tracker goroutine uses it.
type fileStore struct {
	dir  string // <base>/<iface>; "" stores nothing
	last map[string]string
}

func newFileStore(base, iface string) *fileStore {
	s := &fileStore{last: map[string]string{}}
	if base != "" {
		s.dir = filepath.Join(base, iface)
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
	err := s.replace(name, value)
	if errors.Is(err, fs.ErrNotExist) { // directory removed under us: legacy did mkdir -p every round
		if err = os.MkdirAll(s.dir, 0o755); err == nil {
			err = s.replace(name, value)
		}
	}
	if err != nil {
		delete(s.last, name)
		return fmt.Errorf("write tracker file %s: %w", filepath.Join(s.dir, name), err)
	}
	s.last[name] = value
	return nil
}

func (s *fileStore) replace(name, value string) error {
	tmp := filepath.Join(s.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
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

// removeAll deletes the interface's directory (tracker stopped).
func (s *fileStore) removeAll() error {
	clear(s.last)
	if s.dir == "" {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove tracker files: %w", err)
	}
	return nil
}
