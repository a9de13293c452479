package testbed

import (
	"reflect"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	answered := func(sent, wan int) probe { return probe{sent: ms(sent), recv: ms(sent + 1), wan: wan} }
	lost := func(sent int) probe { return probe{sent: ms(sent), wan: -1} }
	tests := []struct {
		name   string
		probes []probe
		want   StreamResult
	}{
		{"empty", nil, StreamResult{PerWAN: []int{0, 0}}},
		{"steady", []probe{answered(0, 0), answered(5, 0), answered(10, 0)},
			StreamResult{Sent: 3, Received: 3, PerWAN: []int{3, 0}, LongestGap: 5 * time.Millisecond}},
		{"switch after an outage", []probe{answered(0, 0), answered(5, 0), lost(10), lost(15), answered(20, 1), answered(25, 1)},
			StreamResult{Sent: 6, Received: 4, PerWAN: []int{2, 2}, LongestGap: 15 * time.Millisecond,
				Switches: []Switch{{From: 0, To: 1, At: 20 * time.Millisecond, Gap: 15 * time.Millisecond}}}},
		{"lost at the start and the end", []probe{lost(0), lost(5), answered(10, 1), lost(15), lost(20), lost(25)},
			StreamResult{Sent: 6, Received: 1, PerWAN: []int{0, 1}, LongestGap: 15 * time.Millisecond}},
		{"unknown WAN", []probe{answered(0, -1), answered(5, 1)},
			StreamResult{Sent: 2, Received: 2, PerWAN: []int{0, 1}, LongestGap: 5 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.probes, 0, 2); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("summarize() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPingResult(t *testing.T) {
	r := PingResult{Sent: 4, Received: 3, RTTs: []time.Duration{30, 10, 20}}
	if r.Loss() != 0.25 || r.Median() != 20 {
		t.Errorf("loss %v median %v, want 0.25 and 20ns", r.Loss(), r.Median())
	}
	if (PingResult{}).Loss() != 0 || (PingResult{}).Median() != 0 {
		t.Error("empty result: want zero loss and median")
	}
}
