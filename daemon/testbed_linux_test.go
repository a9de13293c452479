package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	ibed "github.com/mwan3d/mwan3d/internal/bed"
	"github.com/mwan3d/mwan3d/internal/netifdtest"
	"github.com/mwan3d/mwan3d/internal/testbed"
	"github.com/mwan3d/mwan3d/ubus"
)

// bedConfig tracks both WANs of a two-WAN testbed quickly and routes
// destination ports to every kind of policy.
const bedConfig = `
config globals 'globals'
	option mmx_mask '0x3F00'

config interface 'wan'
	option enabled '1'
	option family 'ipv4'
	list track_ip '198.51.100.1'
	list track_ip '198.51.100.2'
	option reliability '1'
	option interval '1'
	option timeout '1'
	option down '2'
	option up '2'

config interface 'wanb'
	option enabled '1'
	option family 'ipv4'
	list track_ip '198.51.100.3'
	list track_ip '198.51.100.4'
	option reliability '1'
	option interval '1'
	option timeout '1'
	option down '2'
	option up '2'
	list flush_conntrack 'ifdown'

config member 'wan_m1_w1'
	option interface 'wan'
	option metric '1'
	option weight '1'

config member 'wanb_m1_w1'
	option interface 'wanb'
	option metric '1'
	option weight '1'

config member 'wan_m2'
	option interface 'wan'
	option metric '2'

config member 'wanb_m2'
	option interface 'wanb'
	option metric '2'

config policy 'balanced'
	list use_member 'wan_m1_w1'
	list use_member 'wanb_m1_w1'

config policy 'wan_only'
	list use_member 'wan_m1_w1'

config policy 'wanb_only'
	list use_member 'wanb_m1_w1'

config policy 'wan_wanb'
	list use_member 'wan_m1_w1'
	list use_member 'wanb_m2'

config policy 'wanb_wan'
	list use_member 'wan_m2'
	list use_member 'wanb_m1_w1'

config rule 'p7001'
	option proto 'tcp'
	option dest_port '7001'
	option use_policy 'wan_only'

config rule 'p7002'
	option proto 'tcp'
	option dest_port '7002'
	option use_policy 'wanb_only'

config rule 'p7003'
	option proto 'udp'
	option dest_port '7003'
	option use_policy 'wan_wanb'

config rule 'p7004'
	option proto 'udp'
	option dest_port '7004'
	option use_policy 'wanb_wan'

config rule 'sticky'
	option proto 'tcp'
	option dest_port '7006'
	option sticky '1'
	option use_policy 'balanced'

config rule 'default_rule_v4'
	option dest_ip '0.0.0.0/0'
	option family 'ipv4'
	option use_policy 'balanced'
`

// bed is a two-WAN internal/bed (fake netifd, ubustest broker, mwan3d as
// `mwan3d run` in the router namespace) with the WANs down in netifd at
// first, so that tests see the daemon boot before the interfaces.
type bed struct {
	t       testing.TB
	b       *ibed.Bed
	tb      *testbed.Testbed
	netifd  *netifdtest.Netifd
	cfgPath string
}

func newBed(t testing.TB, cfg string) *bed {
	t.Helper()
	return newBedN(t, 2, cfg)
}

// newBedN is newBed with n WANs.
func newBedN(t testing.TB, n int, cfg string) *bed {
	t.Helper()
	down := []string{}
	for i := range n {
		down = append(down, testbed.WANName(i))
	}
	b := ibed.New(t, ibed.Options{WANs: n, Config: cfg, FlowTimeout: 2 * time.Second, Down: down})
	return &bed{t: t, b: b, tb: b.TB, netifd: b.Netifd, cfgPath: b.ConfigPath}
}

// with returns the bed for use by a subtest.
func (b *bed) with(t testing.TB) *bed {
	c := *b
	c.t = t
	return &c
}

func (b *bed) writeConfig(cfg string) {
	b.t.Helper()
	if err := b.b.WriteConfig(cfg); err != nil {
		b.t.Fatal(err)
	}
}

// start runs `mwan3d run` in the router namespace and waits for its ubus
// object.
func (b *bed) start() {
	b.t.Helper()
	if err := b.b.Start(b.t.Context()); err != nil {
		b.t.Fatal(err)
	}
}

// signal sends sig to the daemon and waits for it to exit.
func (b *bed) signal(sig syscall.Signal) error {
	b.t.Helper()
	return b.b.Stop(sig)
}

func (b *bed) call(method string, args any) (ubus.Table, error) {
	return b.b.Call(b.t.Context(), method, args)
}

func (b *bed) mustCall(method string, args any) ubus.Table {
	b.t.Helper()
	t, err := b.call(method, args)
	if err != nil {
		b.t.Fatalf("ubus call mwan3 %s: %v", method, err)
	}
	return t
}

// waitStatus waits until every listed interface has the tracker status.
func (b *bed) waitStatus(status string, names ...string) ubus.Table {
	b.t.Helper()
	rep, err := b.b.WaitStatus(b.t.Context(), status, names...)
	if err != nil {
		b.t.Fatal(err)
	}
	return rep
}

func (b *bed) hooks() []string { return b.b.Hooks() }

// waitHooks waits until the hook log holds every wanted line.
func (b *bed) waitHooks(want ...string) {
	b.t.Helper()
	if err := b.b.WaitHooks(b.t.Context(), want...); err != nil {
		b.t.Fatal(err)
	}
}

// wanIndex maps the mwan3 interface names to testbed WAN indexes.
func (b *bed) wanIndex(name string) int { return b.b.WANIndex(name) }

// leftovers lists what of ours is still in the router namespace.
func (b *bed) leftovers() []string { return b.b.Leftovers(b.t.Context()) }

// conntrackMarks counts the UDP conntrack entries to the echo server's
// port by their mark under the mask.
func (b *bed) conntrackMarks(port uint16) map[uint32]int {
	b.t.Helper()
	flows, err := b.tb.Router.Handle().ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[uint32]int{}
	for _, f := range flows {
		if f.Forward.Protocol == unix.IPPROTO_UDP && f.Forward.DstPort == port && f.Forward.DstIP.Equal(b.tb.Echo4.AsSlice()) {
			out[f.Mark&0x3f00]++
		}
	}
	return out
}

// TestBedLifecycle runs mwan3d on the testbed from boot (daemon first,
// interfaces later) to stop: the status reply, the hooks and their
// environment, explain against real traffic, flush_conntrack, a broken
// reload under traffic, and a stop that leaves nothing behind.
func TestBedLifecycle(t *testing.T) {
	b := newBed(t, bedConfig)
	b.start()

	// Boot order: the daemon is up before netifd brings the WANs up.
	rep := b.waitStatus("disabled", "wan", "wanb")
	ifs, _ := rep.GetTable("interfaces")
	for _, n := range []string{"wan", "wanb"} {
		i, _ := ifs.GetTable(n)
		if tr, _ := i.GetString("tracking"); tr != "paused" {
			t.Errorf("%s tracking %q before ifup", n, tr)
		}
	}
	for _, w := range b.tb.WANs {
		if err := b.netifd.Up(t.Context(), w.Name); err != nil {
			t.Fatal(err)
		}
	}
	b.waitStatus("online", "wan", "wanb")
	b.waitHooks(
		"mwan3.user ACTION=ifup DEVICE=eth1 INTERFACE=wan",
		"hotplug-call ACTION=connected DEVICE=eth1 FIRSTCONNECT=1 INTERFACE=wan",
		"mwan3.user ACTION=connected DEVICE=eth1 INTERFACE=wan",
		"mwan3.user ACTION=ifup DEVICE=eth2 INTERFACE=wanb",
		"hotplug-call ACTION=connected DEVICE=eth2 FIRSTCONNECT=1 INTERFACE=wanb",
		"mwan3.user ACTION=connected DEVICE=eth2 INTERFACE=wanb",
	)
	if got := b.hooks(); len(got) != 6 {
		t.Errorf("hook runs after boot:\n%s", strings.Join(got, "\n"))
	}

	t.Run("status", func(t *testing.T) { bedStatus(t, b.with(t)) })
	t.Run("explain", func(t *testing.T) { bedExplain(t, b.with(t)) })
	t.Run("flush_conntrack", func(t *testing.T) { bedFlush(t, b.with(t)) })
	t.Run("broken reload", func(t *testing.T) { bedBrokenReload(t, b.with(t)) })
	t.Run("failover hooks", func(t *testing.T) { bedFailover(t, b.with(t)) })
	t.Run("reload moving a rule", func(t *testing.T) { bedStickyReload(t, b.with(t)) })

	// Stop: the shutdown events, then nothing of ours is left.
	before := len(b.hooks())
	if err := b.signal(syscall.SIGTERM); err != nil {
		t.Errorf("mwan3d exit: %v", err)
	}
	if left := b.leftovers(); len(left) > 0 {
		t.Errorf("left behind after stop:\n%s", strings.Join(left, "\n"))
	}
	got := b.hooks()[before:]
	slices.Sort(got)
	want := []string{
		"hotplug-call ACTION=disconnected DEVICE= INTERFACE=wan MWAN3_SHUTDOWN=1",
		"hotplug-call ACTION=disconnected DEVICE= INTERFACE=wanb MWAN3_SHUTDOWN=1",
		"mwan3.user ACTION=disconnected DEVICE= INTERFACE=wan",
		"mwan3.user ACTION=disconnected DEVICE= INTERFACE=wanb",
	}
	if !slices.Equal(got, want) {
		t.Errorf("shutdown hooks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// bedStatus compares the status reply with spec §7.3's fields and types.
func bedStatus(t *testing.T, b *bed) {
	rep := b.mustCall("status", nil)
	if keys := topKeys(t, rep.String()); !slices.Equal(keys, []string{"interfaces", "connected", "policies"}) {
		t.Errorf("keys %q", keys)
	}
	ifs, _ := rep.GetTable("interfaces")
	var names []string
	for _, f := range ifs {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"wan", "wanb"}) {
		t.Errorf("interfaces %q", names)
	}
	wan, _ := ifs.GetTable("wan")
	var fields []string
	for _, f := range wan {
		fields = append(fields, fmt.Sprintf("%s:%T", f.Name, f.Value))
	}
	want := []string{"age:int32", "online:int32", "offline:int32", "uptime:int32", "score:int32", "lost:int32", "turn:int32",
		"status:string", "enabled:int8", "running:int8", "tracking:string", "up:int8", "track_ip:[]interface {}"}
	if !slices.Equal(fields, want) {
		t.Errorf("wan fields:\n%q\nwant:\n%q", fields, want)
	}
	if s, _ := wan.GetString("tracking"); s != "active" {
		t.Errorf("tracking %q", s)
	}
	if score, _ := wan.GetInt("score"); score != 4 {
		t.Errorf("score %d, want down+up = 4", score)
	}
	tips, _ := wan.GetArray("track_ip")
	if len(tips) != 2 {
		t.Fatalf("track_ip %v", tips)
	}
	t0 := tips[0].(ubus.Table)
	if ip, _ := t0.GetString("ip"); ip != "198.51.100.1" {
		t.Errorf("track_ip[0] %v", t0)
	}
	if st, _ := t0.GetString("status"); st != "up" {
		t.Errorf("track_ip[0] status %q", st)
	}
	if st, _ := tips[1].(ubus.Table).GetString("status"); st != "skipped" {
		t.Errorf("track_ip[1] status %q (reliability 1)", st)
	}
	conn, _ := rep.GetTable("connected")
	v4, _ := conn.GetArray("ipv4")
	var c4 []string
	for _, x := range v4 {
		c4 = append(c4, x.(string))
	}
	for _, w := range []string{"192.168.1.0/24", "10.0.1.0/24", "10.0.2.0/24", "224.0.0.0/3", "192.168.1.1"} {
		if !slices.Contains(c4, w) {
			t.Errorf("connected ipv4 lacks %s: %q", w, c4)
		}
	}
	pol, _ := rep.GetTable("policies")
	p4, _ := pol.GetTable("ipv4")
	if s := fmt.Sprint(p4.Map()["balanced"]); s != "[map[interface:wanb percent:50] map[interface:wan percent:50]]" {
		t.Errorf("balanced %s", s)
	}
}

// bedExplain sends 20 flows and checks that each took an interface explain
// gave for it (the only one when its probability is 1).
func bedExplain(t *testing.T, b *bed) {
	type batch struct {
		proto string
		port  int
		n     int
	}
	for _, bt := range []batch{{"tcp", 7001, 4}, {"tcp", 7002, 4}, {"udp", 7003, 3}, {"udp", 7004, 3}, {"tcp", 7005, 6}} {
		rep := b.mustCall("explain", ubus.Table{{Name: "dst", Value: b.tb.Echo4.String()}, {Name: "src", Value: b.tb.LANAddr4.String()},
			{Name: "proto", Value: bt.proto}, {Name: "dport", Value: int32(bt.port)}})
		allowed := map[int]float64{}
		choices, _ := rep.GetArray("interfaces")
		for _, c := range choices {
			ct := c.(ubus.Table)
			name, _ := ct.GetString("interface")
			p, _ := ct.GetFloat("probability")
			allowed[b.wanIndex(name)] = p
		}
		flows := b.tb.TCPFlows
		if bt.proto == "udp" {
			flows = b.tb.UDPFlows
		}
		wans, err := flows(b.tb.LAN, bt.n, testbed.IPv4, bt.port)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wans {
			p, ok := allowed[w]
			if !ok || p <= 0 {
				t.Errorf("%s/%d took WAN %d; explain said %s", bt.proto, bt.port, w, rep)
			}
		}
		t.Logf("%s/%d: WANs %v, explain %s", bt.proto, bt.port, wans, rep)
	}
}

// bedFlush: ifdown of wanb (flush_conntrack ifdown) deletes wanb's
// connections only.
func bedFlush(t *testing.T, b *bed) {
	const port = 7005
	wans, err := b.tb.UDPFlows(b.tb.LAN, 24, testbed.IPv4, port)
	if err != nil {
		t.Fatal(err)
	}
	before := b.conntrackMarks(port)
	if before[0x100] == 0 || before[0x200] == 0 {
		t.Fatalf("flows %v, conntrack marks %v: want both WANs used", wans, before)
	}
	b.mustCall("ifdown", ubus.Table{{Name: "interface", Value: "wanb"}})
	after := b.conntrackMarks(port)
	if after[0x200] != 0 || after[0x100] != before[0x100] {
		t.Errorf("conntrack marks %v before, %v after ifdown wanb: want wanb's gone, wan's kept", before, after)
	}
	b.mustCall("ifup", ubus.Table{{Name: "interface", Value: "wanb"}})
	b.waitStatus("online", "wanb")
}

// bedBrokenReload: a reload with errors returns them and traffic keeps
// flowing.
func bedBrokenReload(t *testing.T, b *bed) {
	s, err := b.tb.Stream(b.tb.LAN, testbed.StreamConfig{Family: testbed.IPv4, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	b.writeConfig(bedConfig + "\nconfig rule 'broken\n")
	rep := b.mustCall("reload", nil)
	time.Sleep(300 * time.Millisecond)
	res := s.Stop()
	b.writeConfig(bedConfig)
	if applied, _ := rep.GetBool("applied"); applied {
		t.Errorf("broken reload applied: %s", rep)
	}
	if errs, _ := rep.GetArray("errors"); len(errs) == 0 || !strings.Contains(fmt.Sprint(errs[0]), b.cfgPath+":") {
		t.Errorf("errors %v", errs)
	}
	if res.Sent == 0 || res.Received != res.Sent || res.SendErrors != 0 {
		t.Errorf("stream during the broken reload: %+v", res)
	}
	t.Logf("stream: sent %d received %d longest gap %v", res.Sent, res.Received, res.LongestGap)
}

// bedFailover: cutting wanb's upstream takes it offline through its
// tracker, with the hooks of every transition, and back.
func bedFailover(t *testing.T, b *bed) {
	i := b.wanIndex("wanb")
	if err := b.tb.CutUpstream(i); err != nil {
		t.Fatal(err)
	}
	b.waitStatus("offline", "wanb")
	b.waitHooks(
		"hotplug-call ACTION=disconnecting DEVICE=eth2 INTERFACE=wanb",
		"mwan3.user ACTION=disconnecting DEVICE=eth2 INTERFACE=wanb",
		"hotplug-call ACTION=disconnected DEVICE=eth2 INTERFACE=wanb",
		"mwan3.user ACTION=disconnected DEVICE=eth2 INTERFACE=wanb",
	)
	wans, err := b.tb.TCPFlows(b.tb.LAN, 6, testbed.IPv4, 7005)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wans {
		if w != b.wanIndex("wan") {
			t.Errorf("flows %v: want all on wan while wanb is offline", wans)
			break
		}
	}
	if err := b.tb.Restore(i); err != nil {
		t.Fatal(err)
	}
	b.waitStatus("online", "wanb")
	b.waitHooks(
		"hotplug-call ACTION=connecting DEVICE=eth2 INTERFACE=wanb",
		"mwan3.user ACTION=connecting DEVICE=eth2 INTERFACE=wanb",
		"hotplug-call ACTION=connected DEVICE=eth2 FIRSTCONNECT= INTERFACE=wanb",
	)

	// netifd takes wanb down and up again.
	before := len(b.hooks())
	if err := b.netifd.Down(t.Context(), "wanb"); err != nil {
		t.Fatal(err)
	}
	b.waitStatus("disabled", "wanb")
	if err := b.netifd.Up(t.Context(), "wanb"); err != nil {
		t.Fatal(err)
	}
	b.waitStatus("online", "wanb")
	b.waitHooks("mwan3.user ACTION=connected DEVICE=eth2 INTERFACE=wanb")
	time.Sleep(200 * time.Millisecond)
	got := b.hooks()[before:]
	want := []string{
		"mwan3.user ACTION=ifdown DEVICE= INTERFACE=wanb",
		"hotplug-call ACTION=disconnected DEVICE=eth2 INTERFACE=wanb",
		"mwan3.user ACTION=disconnected DEVICE=eth2 INTERFACE=wanb",
		"mwan3.user ACTION=ifup DEVICE=eth2 INTERFACE=wanb",
		"hotplug-call ACTION=connected DEVICE=eth2 FIRSTCONNECT=1 INTERFACE=wanb",
		"mwan3.user ACTION=connected DEVICE=eth2 INTERFACE=wanb",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hooks of netifd's ifdown and ifup:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// bedStickyReload: a reload that moves the sticky rule keeps an
// established connection on its WAN and the sticky entries.
func bedStickyReload(t *testing.T, b *bed) {
	const port = 7006
	first, err := b.tb.TCPFlows(b.tb.LAN, 1, testbed.IPv4, port)
	if err != nil || first[0] < 0 {
		t.Fatalf("first flow: %v %v", first, err)
	}
	established := first[0]
	sticky := func() {
		t.Helper()
		wans, err := b.tb.TCPFlows(b.tb.LAN, 8, testbed.IPv4, port)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wans {
			if w != established {
				t.Errorf("sticky flows took WANs %v, want all on %d", wans, established)
				return
			}
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := b.tb.LAN.Dial(ctx, "tcp", netip.AddrPortFrom(b.tb.Echo4, port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("echo server's line %q: %v", line, err)
	}
	if w, ok := b.tb.WANBySource(ap.Addr()); !ok || w != established {
		t.Fatalf("established connection on WAN %d (%q), the sticky entry says %d", w, line, established)
	}
	sticky()
	// Move the sticky rule to the top and add a rule in front of it.
	moved := strings.Replace(bedConfig, "config rule 'p7001'", `config rule 'first'
	option proto 'udp'
	option dest_port '9999'
	option use_policy 'wan_only'

config rule 'sticky'
	option proto 'tcp'
	option dest_port '7006'
	option sticky '1'
	option use_policy 'balanced'

config rule 'p7001'`, 1)
	moved = strings.Replace(moved, "config rule 'sticky'\n\toption proto 'tcp'\n\toption dest_port '7006'\n\toption sticky '1'\n\toption use_policy 'balanced'\n\nconfig rule 'default_rule_v4'", "config rule 'default_rule_v4'", 1)
	b.writeConfig(moved)
	defer b.writeConfig(bedConfig)
	if rep := b.mustCall("reload", nil); !isTrue(rep, "applied") {
		t.Fatalf("reload: %s", rep)
	}
	if rules := b.mustCall("rules", nil).String(); !strings.Contains(rules, `{"rule":"first"`) || strings.Index(rules, `"rule":"sticky"`) > strings.Index(rules, `"rule":"p7001"`) {
		t.Fatalf("rules after reload: %s", rules)
	}
	if _, err := c.Write([]byte("still there\n")); err != nil {
		t.Fatal(err)
	}
	if echo, err := r.ReadString('\n'); err != nil || echo != "still there\n" {
		t.Errorf("established connection after the reload: %q, %v", echo, err)
	}
	sticky()
	if rep := b.mustCall("reload", nil); !isTrue(rep, "applied") {
		t.Fatalf("reload back: %s", rep)
	}
}

// TestBedAdopt: kill -9 leaves the kernel state in place; a new daemon
// adopts it without a gap in continuous traffic, and a stop removes it.
func TestBedAdopt(t *testing.T) {
	b := newBed(t, bedConfig)
	for _, w := range b.tb.WANs {
		if err := b.netifd.Up(t.Context(), w.Name); err != nil {
			t.Fatal(err)
		}
	}
	b.start()
	b.waitStatus("online", "wan", "wanb")
	s, err := b.tb.Stream(b.tb.LAN, testbed.StreamConfig{Family: testbed.IPv4, Interval: 5 * time.Millisecond, NewFlows: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	b.signal(syscall.SIGKILL)
	if left := b.leftovers(); len(left) == 0 {
		t.Error("kill -9 removed the state")
	}
	time.Sleep(200 * time.Millisecond)
	b.start()
	b.waitStatus("online", "wan", "wanb")
	time.Sleep(200 * time.Millisecond)
	res := s.Stop()
	if res.Sent == 0 || res.Received != res.Sent || res.SendErrors != 0 {
		t.Errorf("stream across kill -9 and restart: %+v", res)
	}
	if res.PerWAN[0] == 0 || res.PerWAN[1] == 0 {
		t.Errorf("new flows not balanced: %v", res.PerWAN)
	}
	t.Logf("stream: sent %d received %d per WAN %v longest gap %v", res.Sent, res.Received, res.PerWAN, res.LongestGap)
	if err := b.signal(syscall.SIGTERM); err != nil {
		t.Errorf("mwan3d exit: %v", err)
	}
	if left := b.leftovers(); len(left) > 0 {
		t.Errorf("left behind after stop:\n%s", strings.Join(left, "\n"))
	}
}
