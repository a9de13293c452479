package track

import (
	"strings"
	"testing"
	"time"
)

func FuzzNormalize(f *testing.F) {
	f.Add("ping", "1.1.1.1 dns.example", 1, 1, 4, 10, 5, 5, false, uint8(0))
	f.Add("arping", "2001:db8::1", 0, -3, 0, 0, 0, 0, true, uint8(1))
	f.Add("nping-bogus", "a/b ../x", 200, 9, -1, -1, 1, 99, true, uint8(7))
	f.Fuzz(func(t *testing.T, method, targets string, rel, count, timeout, interval, down, up int, quality bool, fam uint8) {
		p := Params{
			Method: method, Targets: strings.Fields(targets), Reliability: rel, Count: count,
			Timeout: time.Duration(timeout) * time.Second, Interval: time.Duration(interval) * time.Second,
			FailureInterval: time.Duration(interval) * time.Second, RecoveryInterval: time.Duration(interval) * time.Second,
			Down: down, Up: up, CheckQuality: quality, Family: Family(fam % 2),
		}
		n, _ := p.Normalize("wan")
		if n.Count < 1 || n.Down < 1 || n.Up < 1 || n.Reliability < 1 || n.Timeout < time.Second ||
			n.Interval < time.Second || len(n.Targets) > maxTargets {
			t.Fatalf("not normalized: %+v", n)
		}
		switch Method(n.Method) {
		case MethodPing, MethodArping, MethodHTTPing, MethodNpingTCP, MethodNpingUDP, MethodNpingICMP, MethodNpingARP, MethodNslookup:
		default:
			t.Fatalf("method %q", n.Method)
		}
		if q := qualitySlots(&n); q < 2 || q > maxQualitySlots {
			t.Fatalf("quality slots %d", q)
		}
	})
}

// FuzzMachine drives the state machine with arbitrary sequences of rounds,
// ifup, ifdown and carrier loss and checks its invariants: the score stays
// in 0..down+up, `disconnected` fires only when the STATUS file said online
// or disconnecting, `connected` (not first) only after connecting, and the
// in-memory status matches the STATUS file.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 3, 0, 4})
	f.Add([]byte{5, 5, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 2 {
			return
		}
		p := DefaultParams("x")
		p.Down, p.Up = 1+int(ops[0]%6), 1+int(ops[1]%6)
		rec := &sinkRecorder{files: map[string]string{}}
		m := newMachine("wan", &p, discardLogger(), rec)
		m.firstConnect(0, "eth1", true, true)
		for i, op := range ops[2:] {
			now := int64(i + 1)
			prevFile := m.fileStatus
			prevStatus := m.status
			rec.events = nil
			switch op % 6 {
			case 0, 4:
				m.round(now, []outcome{{target: "x", state: TargetDown, probed: true}})
			case 1, 5:
				m.round(now, []outcome{{target: "x", state: TargetUp, probed: true}})
			case 2:
				m.ifDown(now)
			case 3:
				m.ifUpSignal()
				m.firstConnect(now, "eth1", true, op%2 == 0)
			}
			if m.score < 0 || m.score > p.Down+p.Up {
				t.Fatalf("op %d: score %d", i, m.score)
			}
			if m.status != m.fileStatus && m.fileStatus != StatusUnknown {
				t.Fatalf("op %d: status %s, file %s", i, m.status, m.fileStatus)
			}
			for _, ev := range rec.events {
				switch ev {
				case "disconnected":
					if prevFile != StatusOnline && prevFile != StatusDisconnecting && prevStatus != StatusOnline {
						t.Fatalf("op %d: disconnected from %s", i, prevFile)
					}
				case "connected":
					if prevStatus != StatusConnecting && p.Up != 1 {
						t.Fatalf("op %d: connected from %s", i, prevStatus)
					}
				}
			}
		}
	})
}
