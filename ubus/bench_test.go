package ubus_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/ubustest"
)

// benchPair returns a client Conn and the path of an object with an
// "echo" and a "status" method served by another Conn, through ubustest.
func benchPair(b *testing.B) *ubus.Conn {
	bus := ubustest.New(b)
	ctx := b.Context()
	srv, err := ubus.Dial(ctx, bus.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	status := statusReply()
	obj := &ubus.Object{Name: "bench", Methods: []ubus.Method{
		{Name: "echo", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(r.Args) }},
		{Name: "status", Handler: func(_ context.Context, r *ubus.Request) error { return r.Reply(status) }},
	}}
	if err := srv.AddObject(ctx, obj); err != nil {
		b.Fatal(err)
	}
	cli, err := ubus.Dial(ctx, bus.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	return cli
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkCall measures a Call round trip (client → broker → serving Conn
// → broker → client) with a small argument table. Allocations count the
// whole process: client, broker and server.
func BenchmarkCall(b *testing.B) {
	for _, method := range []string{"echo", "status"} {
		b.Run(method, func(b *testing.B) {
			cli := benchPair(b)
			ctx := b.Context()
			args := ubus.Table{{"section", "interfaces"}, {"interface", "wan"}}
			if _, err := cli.Call(ctx, "bench", method, args); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if _, err := cli.Call(ctx, "bench", method, args); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkCallParallel measures calls from 100 concurrent callers on one
// Conn.
func BenchmarkCallParallel(b *testing.B) {
	cli := benchPair(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(100)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cli.Call(ctx, "bench", "status", nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// statusReply builds a status answer of about 4 KiB, shaped like mwan3's.
func statusReply() ubus.Table {
	var ifaces ubus.Table
	for i := range 8 {
		var track []any
		for j := range 4 {
			track = append(track, ubus.Table{{"ip", fmt.Sprintf("192.0.2.%d", 10*i+j)}, {"status", "up"},
				{"latency", int32(10 + j)}, {"packetloss", int32(0)}})
		}
		ifaces = append(ifaces, ubus.Field{Name: fmt.Sprintf("wan%d", i), Value: ubus.Table{
			{"enabled", true}, {"running", true}, {"up", true}, {"tracking", "active"},
			{"status", "online"}, {"age", int32(1234)}, {"online", int32(1200)}, {"offline", int32(0)},
			{"uptime", int32(4321)}, {"score", int32(20)}, {"lost", int32(0)}, {"turn", int32(3)},
			{"track_ip", track},
		}})
	}
	return ubus.Table{{"interfaces", ifaces}}
}

func BenchmarkEncodeStatus(b *testing.B) {
	t := statusReply()
	buf, err := ubus.AppendTable(nil, t)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = ubus.AppendTable(buf[:0], t); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStatus(b *testing.B) {
	buf, err := ubus.AppendTable(nil, statusReply())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ubus.DecodeTable(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeStruct encodes the same data from Go structs with tags.
func BenchmarkEncodeStruct(b *testing.B) {
	type track struct {
		IP         string `ubus:"ip"`
		Status     string `ubus:"status"`
		Latency    int32  `ubus:"latency"`
		PacketLoss int32  `ubus:"packetloss"`
	}
	type iface struct {
		Enabled  bool    `ubus:"enabled"`
		Running  bool    `ubus:"running"`
		Up       bool    `ubus:"up"`
		Tracking string  `ubus:"tracking"`
		Status   string  `ubus:"status"`
		Age      int32   `ubus:"age"`
		Online   int32   `ubus:"online"`
		Offline  int32   `ubus:"offline"`
		Uptime   int32   `ubus:"uptime"`
		Score    int32   `ubus:"score"`
		Lost     int32   `ubus:"lost"`
		Turn     int32   `ubus:"turn"`
		TrackIP  []track `ubus:"track_ip"`
	}
	ifaces := map[string]iface{}
	for i := range 8 {
		var tr []track
		for j := range 4 {
			tr = append(tr, track{fmt.Sprintf("192.0.2.%d", 10*i+j), "up", int32(10 + j), 0})
		}
		ifaces[fmt.Sprintf("wan%d", i)] = iface{true, true, true, "active", "online", 1234, 1200, 0, 4321, 20, 0, 3, tr}
	}
	v := struct {
		Interfaces map[string]iface `ubus:"interfaces"`
	}{ifaces}
	buf, err := ubus.AppendTable(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = ubus.AppendTable(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}
