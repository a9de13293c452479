package track

import (
	"github.com/mwan3d/mwan3d/internal/golden"

	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// dumpDir lists a tracker directory as NAME=value lines, sorted; PID is
// replaced by a placeholder.
func dumpDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	mustOK(t, err)
	var b strings.Builder
	for _, e := range ents {
		v, err := os.ReadFile(filepath.Join(dir, e.Name()))
		mustOK(t, err)
		val := string(v)
		if e.Name() == filePID {
			val = "<pid>\n"
		}
		b.WriteString(e.Name() + "=" + strings.ReplaceAll(val, "\n", `\n`) + "\n")
	}
	return b.String()
}

// TestTrackerFilesGolden checks the whole tracker directory (spec §5.8)
// after typical histories against testdata/*.golden (-update rewrites).
func TestTrackerFilesGolden(t *testing.T) {
	tests := []struct {
		name   string
		params func(p *Params)
		run    script
		until  time.Duration
	}{
		{"offline", nil, cutBetween(25*time.Second, 0), 99 * time.Second},
		{"quality", func(p *Params) {
			p.Targets = []string{"1.1.1.1", "2606:4700:4700::1111", "dns.example"}
			p.CheckQuality = true
			p.Count = 4
		}, func(target string, _ time.Duration, _ Binding) reply {
			switch target {
			case "1.1.1.1":
				return reply{answered: 3, rtt: 30 * time.Millisecond}
			case "dns.example":
				return reply{answered: -1, rtt: 12 * time.Millisecond}
			}
			return down
		}, 35 * time.Second},
		{"nping", func(p *Params) {
			p.Targets = []string{"1.1.1.1", "8.8.8.8"}
			p.Method = "nping-udp"
			p.Count = 2
		}, func(target string, _ time.Duration, _ Binding) reply {
			if target == "1.1.1.1" {
				return reply{answered: 1}
			}
			return up
		}, 15 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, tc.run)
				p := DefaultParams("1.1.1.1")
				if tc.params != nil {
					tc.params(&p)
				}
				mustOK(t, h.m.Start("wan", p, bindWAN, true))
				h.at(tc.until)
				synctest.Wait()
				got = dumpDir(t, filepath.Join(h.dir, "wan"))
				h.close()
			})
			golden.Check(t, filepath.Join("testdata", "files_"+tc.name+".golden"), got)
		})
	}
}
