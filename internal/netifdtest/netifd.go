// Package netifdtest is a fake netifd for tests. It publishes the objects
// `network.interface` and `network.interface.<name>` on a ubus bus (a
// ubustest broker, or ubusd) with netifd's field layout, answers their
// `status` and `dump` methods, and brings interfaces up and down the way
// netifd announces it: the notifications interface.update and
// interface.down (fire-and-forget, on the main object and on the
// interface's own), and the event `network.interface` {action,
// interface}.
//
// The layout follows the recordings of netifd-shaped objects in the
// project's ubus vectors (call-netifd-status, call-netifd-dump,
// netifd-ifevent): booleans as int8, uptime, metric and masks as int32,
// and the members of an interface that is down reduced to what netifd
// reports for it.
package netifdtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// Object is the path of netifd's main object.
const Object = "network.interface"

// Route is a route netifd installed for an interface.
type Route struct {
	Target  netip.Prefix // 0.0.0.0/0 for a default route
	Nexthop netip.Addr   // invalid for on-link routes
	Source  netip.Prefix // the preferred source; invalid for none
	Metric  int
	Table   int // 0 for main
}

// Interface is the configuration and addresses of one logical interface.
type Interface struct {
	Name     string
	Proto    string // "static" when empty
	Device   string // the main device
	L3Device string // the L3 device while up; Device when empty
	Metric   int
	Dynamic  bool // created by another interface (the _4/_6 children)

	IPv4       []netip.Prefix // addresses with their prefix length
	IPv6       []netip.Prefix
	IPv6Prefix []netip.Prefix // delegated prefixes
	Routes     []Route
	DNS        []netip.Addr
}

// Netifd is the fake netifd. Its methods are safe for concurrent use.
type Netifd struct {
	conn *ubus.Conn
	main *ubus.Object

	mu     sync.Mutex
	ifaces map[string]*iface
	order  []string
}

type iface struct {
	Interface
	up      bool
	upSince time.Time
	obj     *ubus.Object
}

// New connects to the bus at socket and publishes network.interface with
// no interfaces.
func New(ctx context.Context, socket string) (*Netifd, error) {
	conn, err := ubus.Dial(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("netifdtest: %w", err)
	}
	n := &Netifd{conn: conn, ifaces: map[string]*iface{}}
	if err := n.addMain(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return n, nil
}

// Start is New for a test: it fails the test on error and closes the fake
// at cleanup.
func Start(t testing.TB, socket string) *Netifd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := New(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Close leaves the bus (every object disappears).
func (n *Netifd) Close() error { return n.conn.Close() }

func (n *Netifd) addMain(ctx context.Context) error {
	n.main = &ubus.Object{Name: Object, Methods: []ubus.Method{
		{Name: "status", Policy: []ubus.Arg{{Name: "interface", Type: ubus.TypeString}}, Handler: n.handleMainStatus},
		{Name: "dump", Handler: n.handleDump},
	}}
	if err := n.conn.AddObject(ctx, n.main); err != nil {
		return fmt.Errorf("netifdtest: add %s: %w", Object, err)
	}
	return nil
}

func (n *Netifd) ifaceObject(name string) *ubus.Object {
	return &ubus.Object{Name: Object + "." + name, Methods: []ubus.Method{
		{Name: "up", Handler: func(ctx context.Context, _ *ubus.Request) error { return n.Up(ctx, name) }},
		{Name: "down", Handler: func(ctx context.Context, _ *ubus.Request) error { return n.Down(ctx, name) }},
		{Name: "status", Handler: func(_ context.Context, req *ubus.Request) error {
			st, ok := n.Status(name)
			if !ok {
				return ubus.StatusNotFound
			}
			return req.Reply(st)
		}},
	}}
}

// Add publishes an interface, up or down, without announcing anything
// (as if it had been so before anyone listened).
func (n *Netifd) Add(ctx context.Context, ifc Interface, up bool) error {
	if ifc.Name == "" {
		return errors.New("netifdtest: interface without a name")
	}
	n.mu.Lock()
	if _, dup := n.ifaces[ifc.Name]; dup {
		n.mu.Unlock()
		return fmt.Errorf("netifdtest: interface %s exists", ifc.Name)
	}
	e := &iface{Interface: ifc, up: up, obj: n.ifaceObject(ifc.Name)}
	if up {
		e.upSince = time.Now()
	}
	n.ifaces[ifc.Name] = e
	n.order = append(n.order, ifc.Name)
	obj := e.obj
	n.mu.Unlock()
	if err := n.conn.AddObject(ctx, obj); err != nil {
		return fmt.Errorf("netifdtest: add interface %s: %w", ifc.Name, err)
	}
	return nil
}

// Remove takes an interface away (after bringing it down if it is up).
func (n *Netifd) Remove(ctx context.Context, name string) error {
	if err := n.Down(ctx, name); err != nil {
		return err
	}
	n.mu.Lock()
	e := n.ifaces[name]
	delete(n.ifaces, name)
	n.order = slices.DeleteFunc(n.order, func(s string) bool { return s == name })
	n.mu.Unlock()
	return n.conn.RemoveObject(ctx, e.obj)
}

// Up brings an interface up: interface.update notifications, then the
// ifup event. An interface already up is left alone.
func (n *Netifd) Up(ctx context.Context, name string) error {
	return n.set(ctx, name, true)
}

// Down brings an interface down: interface.down notifications, then the
// ifdown event. An interface already down is left alone.
func (n *Netifd) Down(ctx context.Context, name string) error {
	return n.set(ctx, name, false)
}

func (n *Netifd) set(ctx context.Context, name string, up bool) error {
	n.mu.Lock()
	e, ok := n.ifaces[name]
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("netifdtest: no interface %s", name)
	}
	if e.up == up {
		n.mu.Unlock()
		return nil
	}
	e.up = up
	if up {
		e.upSince = time.Now()
	}
	n.mu.Unlock()
	typ, action := "interface.update", "ifup"
	if !up {
		typ, action = "interface.down", "ifdown"
	}
	if err := n.notify(ctx, name, typ); err != nil {
		return err
	}
	return n.event(ctx, name, action)
}

// Update changes an up interface's addresses or routes without down/up
// (netifd's ifupdate): interface.update notifications only.
func (n *Netifd) Update(ctx context.Context, name string, change func(*Interface)) error {
	n.mu.Lock()
	e, ok := n.ifaces[name]
	if !ok {
		n.mu.Unlock()
		return fmt.Errorf("netifdtest: no interface %s", name)
	}
	change(&e.Interface)
	e.Name = name
	n.mu.Unlock()
	return n.notify(ctx, name, "interface.update")
}

// Restart simulates a restart of netifd: every object goes away, then
// comes back with the same interfaces; those that are up are announced
// again as netifd brings them up.
func (n *Netifd) Restart(ctx context.Context) error {
	n.mu.Lock()
	objs := []*ubus.Object{n.main}
	var up []string
	for _, name := range n.order {
		e := n.ifaces[name]
		objs = append(objs, e.obj)
		if e.up {
			up = append(up, name)
		}
	}
	n.mu.Unlock()
	for _, o := range objs {
		if err := n.conn.RemoveObject(ctx, o); err != nil {
			return fmt.Errorf("netifdtest: restart: %w", err)
		}
	}
	n.mu.Lock()
	for _, name := range n.order {
		e := n.ifaces[name]
		e.up = false
		e.obj = n.ifaceObject(name)
	}
	n.mu.Unlock()
	if err := n.addMain(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	var add []*ubus.Object
	for _, name := range n.order {
		add = append(add, n.ifaces[name].obj)
	}
	n.mu.Unlock()
	for _, o := range add {
		if err := n.conn.AddObject(ctx, o); err != nil {
			return fmt.Errorf("netifdtest: restart: %w", err)
		}
	}
	for _, name := range up {
		if err := n.Up(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// notify sends a notification on the main object and on the interface's.
func (n *Netifd) notify(ctx context.Context, name, typ string) error {
	st, ok := n.Status(name)
	if !ok {
		return fmt.Errorf("netifdtest: no interface %s", name)
	}
	data := append(ubus.Table{{Name: "interface", Value: name}}, st...)
	n.mu.Lock()
	obj := n.ifaces[name].obj
	n.mu.Unlock()
	var errs []error
	for _, o := range []*ubus.Object{n.main, obj} {
		if err := o.Notify(ctx, typ, data, false); err != nil {
			errs = append(errs, fmt.Errorf("netifdtest: notify %s %s: %w", o.Name, typ, err))
		}
	}
	return errors.Join(errs...)
}

func (n *Netifd) event(ctx context.Context, name, action string) error {
	err := n.conn.Send(ctx, Object, ubus.Table{{Name: "action", Value: action}, {Name: "interface", Value: name}})
	if err != nil {
		return fmt.Errorf("netifdtest: event %s %s: %w", action, name, err)
	}
	return nil
}

func (n *Netifd) handleMainStatus(_ context.Context, req *ubus.Request) error {
	name, ok := req.Args.GetString("interface")
	if !ok {
		return ubus.StatusInvalidArgument
	}
	st, ok := n.Status(name)
	if !ok {
		return ubus.StatusNotFound
	}
	return req.Reply(st)
}

func (n *Netifd) handleDump(_ context.Context, req *ubus.Request) error {
	return req.Reply(n.Dump())
}

// Dump returns what `network.interface dump` answers.
func (n *Netifd) Dump() ubus.Table {
	n.mu.Lock()
	names := slices.Clone(n.order)
	n.mu.Unlock()
	list := []any{}
	for _, name := range names {
		if st, ok := n.Status(name); ok {
			list = append(list, append(ubus.Table{{Name: "interface", Value: name}}, st...))
		}
	}
	return ubus.Table{{Name: "interface", Value: list}}
}

// Status returns what `network.interface.<name> status` answers.
func (n *Netifd) Status(name string) (ubus.Table, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.ifaces[name]
	if !ok {
		return nil, false
	}
	proto := e.Proto
	if proto == "" {
		proto = "static"
	}
	t := ubus.Table{
		{Name: "up", Value: e.up},
		{Name: "pending", Value: false},
		{Name: "available", Value: true},
		{Name: "autostart", Value: true},
		{Name: "dynamic", Value: e.Dynamic},
	}
	if !e.up {
		return append(t,
			ubus.Field{Name: "proto", Value: proto},
			ubus.Field{Name: "device", Value: e.Device},
			ubus.Field{Name: "data", Value: ubus.Table{}},
		), true
	}
	l3 := e.L3Device
	if l3 == "" {
		l3 = e.Device
	}
	empty := []any{}
	var dns []any
	for _, a := range e.DNS {
		dns = append(dns, a.String())
	}
	if dns == nil {
		dns = empty
	}
	return append(t,
		ubus.Field{Name: "uptime", Value: int32(time.Since(e.upSince) / time.Second)},
		ubus.Field{Name: "l3_device", Value: l3},
		ubus.Field{Name: "proto", Value: proto},
		ubus.Field{Name: "device", Value: e.Device},
		ubus.Field{Name: "metric", Value: int32(e.Metric)},
		ubus.Field{Name: "dns_metric", Value: int32(0)},
		ubus.Field{Name: "delegation", Value: true},
		ubus.Field{Name: "ipv4-address", Value: addrs(e.IPv4)},
		ubus.Field{Name: "ipv6-address", Value: addrs(e.IPv6)},
		ubus.Field{Name: "ipv6-prefix", Value: addrs(e.IPv6Prefix)},
		ubus.Field{Name: "ipv6-prefix-assignment", Value: empty},
		ubus.Field{Name: "route", Value: routes(e.Routes)},
		ubus.Field{Name: "dns-server", Value: dns},
		ubus.Field{Name: "dns-search", Value: empty},
		ubus.Field{Name: "neighbors", Value: empty},
		ubus.Field{Name: "inactive", Value: ubus.Table{
			{Name: "ipv4-address", Value: empty},
			{Name: "ipv6-address", Value: empty},
			{Name: "route", Value: empty},
			{Name: "dns-server", Value: empty},
			{Name: "dns-search", Value: empty},
			{Name: "neighbors", Value: empty},
		}},
		ubus.Field{Name: "data", Value: ubus.Table{}},
	), true
}

func addrs(ps []netip.Prefix) []any {
	out := []any{}
	for _, p := range ps {
		out = append(out, ubus.Table{{Name: "address", Value: p.Addr().String()}, {Name: "mask", Value: int32(p.Bits())}})
	}
	return out
}

func routes(rs []Route) []any {
	out := []any{}
	for _, r := range rs {
		t := ubus.Table{
			{Name: "target", Value: r.Target.Addr().String()},
			{Name: "mask", Value: int32(r.Target.Bits())},
		}
		nh := r.Nexthop
		if !nh.IsValid() {
			nh = netip.IPv4Unspecified()
			if r.Target.Addr().Is6() {
				nh = netip.IPv6Unspecified()
			}
		}
		t = append(t, ubus.Field{Name: "nexthop", Value: nh.String()})
		if r.Metric != 0 {
			t = append(t, ubus.Field{Name: "metric", Value: int32(r.Metric)})
		}
		if r.Table != 0 {
			t = append(t, ubus.Field{Name: "table", Value: int32(r.Table)})
		}
		src := r.Source
		if !src.IsValid() {
			src = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if r.Target.Addr().Is6() {
				src = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		t = append(t, ubus.Field{Name: "source", Value: src.String()})
		out = append(out, t)
	}
	return out
}
