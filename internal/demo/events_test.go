package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

func TestParseIfaceEvent(t *testing.T) {
	tests := []struct {
		name, json, want, err string
	}{
		{"disconnected", `{"interface":"wan","device":"eth1","action":"disconnected","status":"offline","online":false}`,
			"wan disconnected (eth1): status offline, out of the policies", ""},
		{"connected", `{"interface":"wanb6","device":"eth2","action":"connected","status":"online","online":true}`,
			"wanb6 connected (eth2): status online, in the policies", ""},
		{"ifdown without a device", `{"interface":"wan","device":"","action":"ifdown","status":"disabled","online":false}`,
			"wan ifdown: status disabled, out of the policies", ""},
		{"minimal", `{"interface":"wan","action":"ifup"}`, "wan ifup, out of the policies", ""},
		{"no interface", `{"action":"ifup"}`, "", "without an interface"},
		{"no action", `{"interface":"wan","action":""}`, "", "without an action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := ubus.ParseJSON([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			e, err := parseIfaceEvent(data)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.String() != tt.want {
				t.Errorf("String() = %q, want %q", e.String(), tt.want)
			}
		})
	}
}

func TestEventLog(t *testing.T) {
	var l eventLog
	for i := range maxEvents + 6 {
		l.add(event{At: time.Duration(i) * time.Millisecond, Source: srcDemo, Text: fmt.Sprint(i)})
	}
	if len(l.events) != maxEvents || l.events[0].Text != "6" {
		t.Fatalf("kept %d events from %q, want %d from 6", len(l.events), l.events[0].Text, maxEvents)
	}
	// A reader that saw 3 events missed some that are gone: it gets all
	// that are left.
	got, seen := l.since(3)
	if len(got) != maxEvents || seen != maxEvents+6 {
		t.Errorf("since(3): %d events, seen %d", len(got), seen)
	}
	got, seen = l.since(seen - 2)
	if len(got) != 2 || got[1].Text != fmt.Sprint(maxEvents+5) {
		t.Errorf("since(seen-2) = %v", got)
	}
	if got, _ := l.since(seen); len(got) != 0 {
		t.Errorf("since(seen) = %v, want nothing", got)
	}
	if got, _ := l.since(seen + 5); len(got) != 0 {
		t.Errorf("since(beyond) = %v, want nothing", got)
	}
	last := l.last(3)
	if len(last) != 3 || last[2].Text != fmt.Sprint(maxEvents+5) {
		t.Errorf("last(3) = %v", last)
	}
	var empty eventLog
	if len(empty.last(5)) != 0 {
		t.Error("last of an empty log")
	}
	if s := (event{At: 1234567 * time.Microsecond, Source: srcDaemon, Text: "wan ifup"}).String(); s != "  +1.235s  mwan3d  wan ifup" {
		t.Errorf("event.String() = %q", s)
	}
}

func FuzzParseIfaceEvent(f *testing.F) {
	f.Add([]byte(`{"interface":"wan","device":"eth1","action":"disconnected","status":"offline","online":false}`))
	f.Add([]byte(`{"interface":1,"action":["x"],"online":"yes"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := ubus.ParseJSON(data)
		if err != nil {
			return
		}
		e, err := parseIfaceEvent(tbl)
		if err != nil {
			return
		}
		if !strings.HasPrefix(e.String(), e.Interface+" "+e.Action) {
			t.Fatalf("String() = %q", e.String())
		}
	})
}
