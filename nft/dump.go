package nft

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Dump returns the plan as nft text for debugging: the render warnings as
// comments, then the table as `nft list table inet mwan3` prints it. The
// text is valid input for `nft -f` (after deleting the table first).
func (p *Plan) Dump() string {
	var b strings.Builder
	b.WriteString("# mwan3d rendered ruleset\n")
	for _, w := range p.Warnings {
		b.WriteString("# warning: " + strings.ReplaceAll(w, "\n", " ") + "\n")
	}
	b.WriteString(p.String())
	return b.String()
}

// WriteDump writes p.Dump() to path (legacy wrote its dumps under
// /var/run/mwan3), creating the directory when needed. The file is
// replaced atomically, so readers never see a partial dump.
func WriteDump(path string, p *Plan) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write nft dump: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write nft dump: %w", err)
	}
	_, werr := f.WriteString(p.Dump())
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write nft dump %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write nft dump %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write nft dump %s: %w", path, err)
	}
	return nil
}
