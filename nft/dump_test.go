package nft

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteDump(t *testing.T) {
	p := renderOK(t, optionsInput())
	path := filepath.Join(t.TempDir(), "var", "run", "mwan3", "nft.dump")
	for range 2 { // the second write replaces the first
		if err := WriteDump(path, p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != p.Dump() {
		t.Error("dump file differs from Plan.Dump")
	}
	if !strings.HasPrefix(string(got), "# mwan3d rendered ruleset\n# warning: ") || !strings.Contains(string(got), "\ntable inet mwan3 {\n") {
		t.Errorf("unexpected dump:\n%.300s", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := WriteDump(filepath.Join(path, "sub", "x"), p); err == nil {
		t.Error("WriteDump below a file succeeded")
	}
}
