//go:build !linux

package track

import (
	"os"
	"path/filepath"
)

// diskFiles puts values into the files of one directory: written to a
// temporary file, then renamed over the old one.
type diskFiles struct{ dir string }

func newDiskFiles(dir string) *diskFiles { return &diskFiles{dir: dir} }

// put replaces the content of name with value and a newline.
func (d *diskFiles) put(name, value string, _ bool) error {
	tmp := filepath.Join(d.dir, tmpName(name))
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// reset releases nothing: no descriptor stays open.
func (d *diskFiles) reset() {}

// close has nothing to release.
func (d *diskFiles) close() error { return nil }
