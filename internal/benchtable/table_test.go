package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/mwan3d/mwan3d/internal/golden"
)

func TestMedianOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Figure
	}{
		{nil, Figure{Note: "why"}},
		{[]float64{3}, Figure{Value: 3, Min: 3, Max: 3, Runs: 1}},
		{[]float64{5, 1, 3}, Figure{Value: 3, Min: 1, Max: 5, Runs: 3}},
		{[]float64{4, 1, 3, 2}, Figure{Value: 2.5, Min: 1, Max: 4, Runs: 4}},
		{[]float64{9, 9, 1, 9, 1}, Figure{Value: 9, Min: 1, Max: 9, Runs: 5}},
	} {
		in := append([]float64(nil), c.in...)
		if got := MedianOf(c.in, "why"); got != c.want {
			t.Errorf("MedianOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("MedianOf reordered its input: %v", c.in)
			}
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		kind   Kind
		v      float64
		want   string
		budget string
	}{
		{Duration, 0, "0.00 ns", "0 ns"},
		{Duration, 2.1, "2.10 ns", "2.1 ns"},
		{Duration, 702168, "702 µs", "702.168 µs"},
		{Duration, 1e6, "1.00 ms", "1 ms"},
		{Duration, 13415513, "13.4 ms", "13.415513 ms"},
		{Duration, 9.996e6, "10.0 ms", "9.996 ms"},
		{Duration, 99.96e6, "100 ms", "99.96 ms"},
		{Duration, 62e9, "62.0 s", "62 s"},
		{Duration, 126.5e9, "126 s", "126.5 s"},
		{Duration, 1e5, "100 µs", "100 µs"},
		{Bytes, 512, "512 B", "512 B"},
		{Bytes, 13152 * 1024, "12.8 MB", "12.84375 MB"},
		{Bytes, 8 << 20, "8.00 MB", "8 MB"},
		{Bytes, 3 << 10, "3.00 kB", "3 kB"},
		{Kind(9), 1234.5, "1.23e+03", "1.23e+03"},
	} {
		if got := Format(c.kind, c.v); got != c.want {
			t.Errorf("Format(%v, %v) = %q, want %q", c.kind, c.v, got, c.want)
		}
		if got := FormatBudget(c.kind, c.v); got != c.budget {
			t.Errorf("FormatBudget(%v, %v) = %q, want %q", c.kind, c.v, got, c.budget)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		row  Row
		want string
	}{
		{Row{Budget: 1, Figure: Figure{Value: 1, Runs: 1}}, Met},
		{Row{Budget: 1, Figure: Figure{Value: 0.5, Runs: 3}}, Met},
		{Row{Budget: 1, Figure: Figure{Value: 1.01, Runs: 3}}, Missed},
		{Row{Figure: Figure{Value: 7, Runs: 3}}, NoBudget},
		{Row{Budget: 1, Figure: Figure{Note: "needs root"}}, NoFigure},
		{Row{Figure: Figure{Note: "failed"}}, NoFigure},
	} {
		if got := c.row.Verdict(); got != c.want {
			t.Errorf("%+v: verdict %q, want %q", c.row, got, c.want)
		}
	}
}

// TestRender: the table's layout, with every kind of cell.
func TestRender(t *testing.T) {
	rows := []Row{
		{Section: "apply latency"},
		{What: "default config, new table", Kind: Duration, Budget: 1e6, Legacy: "343 ms", Figure: Figure{Value: 3.59e6, Min: 3.2e6, Max: 4.1e6, Runs: 5}},
		{What: "default config, unchanged", Kind: Duration, Budget: 1e6, Figure: Figure{Value: 638e3, Min: 600e3, Max: 1.2e6, Runs: 5}},
		{Section: "status"},
		{What: "100 concurrent callers, p50", Kind: Duration, Legacy: "136 ms", Figure: Figure{Value: 3.48e6, Runs: 1}},
		{What: "carrier loss", Kind: Duration, Budget: 50e6, Figure: Figure{Note: "needs root"}},
		{Section: "binary size"},
		{What: "linux-mipsle (softfloat)", Kind: Bytes, Budget: 4 << 20, Figure: Figure{Value: 3_900_000, Runs: 1, Exact: true}},
	}
	var b strings.Builder
	if err := Render(&b, rows); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/table.golden", b.String())
	for l := range strings.SplitSeq(b.String(), "\n") {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space in %q", l)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderWriteError(t *testing.T) {
	if err := Render(failWriter{}, []Row{{What: "x"}}); err == nil {
		t.Error("no error from a failing writer")
	}
}
