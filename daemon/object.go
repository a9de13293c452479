package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/mwan3d/mwan3d/nft"
	"github.com/mwan3d/mwan3d/ubus"
)

// ObjectName is the ubus object the daemon registers.
const ObjectName = "mwan3"

// registerObject publishes the mwan3 object. Its methods:
//
//   - status {section, interface}: spec §7, field for field.
//   - ifup {interface}, ifdown {interface}: the CLI's ifup and ifdown
//     (spec §8.8). ifup answers NO_DATA with {"error": "The network
//     interace '<iface>' is not up."} when netifd does not report it up;
//     both answer NOT_FOUND for a name that is not an enabled mwan3
//     interface.
//   - reload {}: re-reads the configuration; answers {applied, errors,
//     warnings}. With errors the running configuration stays.
//   - rules {}: the user rules and policy members with their counters.
//   - explain {dst, src?, proto?, sport?, dport?, family?, src_iface?}:
//     which rule a new connection matches, its policy, and the interfaces
//     it would take now with their probabilities.
//   - diag {interface?}, ruleset {}, userrules {}, use {interface}: what
//     the mwan3 CLI shows beyond status (diag.go).
//
// Arguments with a wrong type, or values that do not parse, are answered
// INVALID_ARGUMENT with {"error": message}. The policies have the real
// types (`ubus -v list mwan3`); explain's proto, sport and dport accept a
// number or a string and are listed as unspec.
//
// When the path is taken (legacy's rpcd plugin still running) the object
// waits for it: the ubus connection registers it as soon as the path is
// free, and again after every reconnection to ubusd.
func (d *daemon) registerObject() {
	str := func(names ...string) []ubus.Arg {
		var out []ubus.Arg
		for _, n := range names {
			out = append(out, ubus.Arg{Name: n, Type: ubus.TypeString})
		}
		return out
	}
	unspec := func(names ...string) []ubus.Arg {
		var out []ubus.Arg
		for _, n := range names {
			out = append(out, ubus.Arg{Name: n, Type: ubus.TypeUnspec})
		}
		return out
	}
	d.obj = &ubus.Object{Name: ObjectName, BadArgs: badArgs, Methods: []ubus.Method{
		{Name: "status", Policy: str("section", "interface"), Handler: d.handleStatus},
		{Name: "ifup", Policy: str("interface"), Handler: d.handleIface("ifup")},
		{Name: "ifdown", Policy: str("interface"), Handler: d.handleIface("ifdown")},
		{Name: "reload", Handler: d.handleReload},
		{Name: "rules", Handler: d.handleRules},
		{Name: "explain", Policy: append(str("src", "dst", "family", "src_iface"), unspec("proto", "sport", "dport")...), Handler: d.handleExplain},
		{Name: "diag", Policy: unspec("interface"), Handler: d.handleDiag},
		{Name: "ruleset", Handler: d.handleRuleset},
		{Name: "userrules", Handler: d.handleUserRules},
		{Name: "use", Policy: unspec("interface"), Handler: d.handleUse},
		{Name: "debug", Handler: d.handleDebug},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.conn.AddObject(ctx, d.obj); err != nil {
		d.log.Error("cannot register the mwan3 ubus object yet; it is registered once its name is free (is legacy mwan3's rpcd plugin still installed?)", "err", err)
	}
}

// argError answers a call with INVALID_ARGUMENT and a message.
func argError(req *ubus.Request, format string, args ...any) error {
	req.Reply(ubus.Table{{Name: "error", Value: fmt.Sprintf(format, args...)}})
	return ubus.StatusInvalidArgument
}

// badArgs answers calls whose arguments do not fit the policy.
func badArgs(req *ubus.Request, err *ubus.ArgError) error {
	return argError(req, "%v", err)
}

func (d *daemon) handleStatus(_ context.Context, req *ubus.Request) error {
	section, _ := req.Args.GetString("section")
	iface, filter := req.Args.GetString("interface")
	reply, err := d.statusReply(section, iface, filter)
	if err != nil {
		return err
	}
	return req.Reply(reply)
}

// ask hands a request to the loop and waits for its answer.
func (d *daemon) ask(ctx context.Context, r *request) (reqResult, error) {
	r.reply = make(chan reqResult, 1)
	select {
	case d.reqCh <- r:
	case <-ctx.Done():
		return reqResult{}, ubus.StatusTimeout
	case <-d.done:
		return reqResult{}, ubus.StatusNotSupported
	}
	select {
	case res := <-r.reply:
		return res, nil
	case <-ctx.Done():
		return reqResult{}, ubus.StatusTimeout
	}
}

func (d *daemon) handleIface(kind string) ubus.Handler {
	return func(ctx context.Context, req *ubus.Request) error {
		name, _ := req.Args.GetString("interface") // a string: the policy says so
		if name == "" {
			return argError(req, "Expecting interface. Usage: mwan3 %s <interface>", kind)
		}
		_, err := d.askIface(ctx, req, kind, name)
		return err
	}
}

// askIface asks the loop a request about an interface; an ifaceError is
// answered with its message and status.
func (d *daemon) askIface(ctx context.Context, req *ubus.Request, kind, name string) (reqResult, error) {
	res, err := d.ask(ctx, &request{kind: kind, iface: name})
	if err != nil {
		return res, err
	}
	var ie *ifaceError
	if errors.As(res.err, &ie) {
		req.Reply(ubus.Table{{Name: "error", Value: ie.msg}})
		return res, ie.status
	}
	return res, res.err
}

// reloadReply is the answer of reload.
type reloadReply struct {
	Applied  bool     `ubus:"applied"`
	Errors   []string `ubus:"errors"`
	Warnings []string `ubus:"warnings"`
}

func (d *daemon) handleReload(ctx context.Context, req *ubus.Request) error {
	res, err := d.ask(ctx, &request{kind: "reload"})
	if err != nil {
		return err
	}
	return req.Reply(res.data)
}

func (d *daemon) handleRules(_ context.Context, req *ubus.Request) error {
	v := d.view.Load()
	if v.plan == nil {
		return req.Reply(ubus.Table{{Name: "rules", Value: []any{}}, {Name: "policies", Value: ubus.Table{}}})
	}
	vals, err := d.k.NFT.Counters(v.plan)
	if err != nil {
		req.Reply(ubus.Table{{Name: "error", Value: err.Error()}})
		return ubus.StatusUnknownError
	}
	return req.Reply(rulesReply(v, vals))
}

type counterReply struct {
	Packets uint64 `ubus:"packets"`
	Bytes   uint64 `ubus:"bytes"`
}

type ruleCounterReply struct {
	Rule   string `ubus:"rule"`
	Family string `ubus:"family"`
	Policy string `ubus:"policy"`
	counterReply
}

type memberCounterReply struct {
	Interface string `ubus:"interface"`
	counterReply
}

// rulesReply lists the user rules (config order, per family) and, per
// family and policy, the connections sent to each member and to the last
// resort.
func rulesReply(v *view, vals []nft.CounterValue) ubus.Table {
	rules := []any{}
	for _, r := range v.cfg.Rules {
		for _, c := range vals {
			if c.Kind == nft.CounterRule && c.Rule == r.Name {
				rules = append(rules, ruleCounterReply{Rule: r.Name, Family: familyName(c.Family), Policy: r.UsePolicy, counterReply: counterReply{c.Packets, c.Bytes}})
			}
		}
	}
	var fams ubus.Table
	for _, fam := range []nft.Family{nft.IPv4, nft.IPv6} {
		pols := ubus.Table{}
		for _, p := range v.cfg.Policies {
			members := []memberCounterReply{}
			var last ubus.Table
			for _, c := range vals {
				if c.Policy != p.Name || c.Family != fam {
					continue
				}
				switch c.Kind {
				case nft.CounterMember:
					members = append(members, memberCounterReply{Interface: c.Interface, counterReply: counterReply{c.Packets, c.Bytes}})
				case nft.CounterLastResort:
					last = ubus.Table{{Name: "action", Value: p.LastResort}, {Name: "packets", Value: c.Packets}, {Name: "bytes", Value: c.Bytes}}
				}
			}
			entry := ubus.Table{{Name: "members", Value: members}}
			if last != nil {
				entry = append(entry, ubus.Field{Name: "last_resort", Value: last})
			}
			pols = append(pols, ubus.Field{Name: p.Name, Value: entry})
		}
		fams = append(fams, ubus.Field{Name: familyName(fam), Value: pols})
	}
	return ubus.Table{{Name: "rules", Value: rules}, {Name: "policies", Value: fams}}
}

func (d *daemon) handleExplain(_ context.Context, req *ubus.Request) error {
	f, err := ParseFlow(req.Args)
	if err != nil {
		return argError(req, "%v", err)
	}
	v := d.view.Load()
	if v.plan == nil || v.input == nil {
		req.Reply(ubus.Table{{Name: "error", Value: "no ruleset applied yet"}})
		return ubus.StatusNoData
	}
	return req.Reply(Explain(v.input, v.plan, f, d.k.SetLookup))
}

// ParseFlow reads explain's arguments: dst (required), src, proto (a name
// or a number), sport, dport (numbers, or strings of digits), family
// (must agree with dst) and src_iface.
func ParseFlow(args ubus.Table) (Flow, error) {
	f := Flow{Proto: -1}
	var strs [4]string
	var have [4]bool
	for i, name := range []string{"src", "dst", "family", "src_iface"} {
		var err error
		if strs[i], have[i], err = tableString(args, name); err != nil {
			return f, err
		}
	}
	switch p, _ := args.Get("proto"); p := p.(type) {
	case nil:
	case string:
		n, specific, err := nft.ParseProto(p)
		if err != nil {
			return f, fmt.Errorf("proto %q: %w", p, err)
		}
		if specific {
			f.Proto = int(n)
		}
	default:
		n, ok := args.GetInt("proto")
		if !ok || n < 0 || n > 255 {
			return f, errors.New("proto must be a protocol name or a number 0..255")
		}
		f.Proto = int(n)
	}
	if !have[1] {
		return f, errors.New(`argument "dst" (the destination address) is required`)
	}
	var err error
	if f.Dst, err = netip.ParseAddr(strs[1]); err != nil || f.Dst.Zone() != "" {
		return f, fmt.Errorf("dst %q is not an IP address", strs[1])
	}
	f.Dst = f.Dst.Unmap()
	if have[0] {
		if f.Src, err = netip.ParseAddr(strs[0]); err != nil || f.Src.Zone() != "" {
			return f, fmt.Errorf("src %q is not an IP address", strs[0])
		}
		if f.Src = f.Src.Unmap(); f.Src.Is4() != f.Dst.Is4() {
			return f, errors.New("src and dst are of different families")
		}
	}
	f.Family = nft.IPv4
	if f.Dst.Is6() {
		f.Family = nft.IPv6
	}
	if have[2] && strs[2] != familyName(f.Family) {
		return f, fmt.Errorf("family %q does not match dst %s", strs[2], f.Dst)
	}
	f.SrcIface = strs[3]
	for _, p := range []struct {
		name string
		dst  *int
	}{{"sport", &f.SrcPort}, {"dport", &f.DstPort}} {
		val, ok := args.Get(p.name)
		if !ok {
			continue
		}
		n, ok := args.GetInt(p.name)
		if s, isStr := val.(string); isStr {
			m, err := strconv.Atoi(s)
			n, ok = int64(m), err == nil
		}
		if !ok || n < 1 || n > 65535 {
			return f, fmt.Errorf("%s must be a port number 1..65535", p.name)
		}
		*p.dst = int(n)
	}
	return f, nil
}

// tableString reads an optional string argument.
func tableString(args ubus.Table, name string) (string, bool, error) {
	v, ok := args.Get(name)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("argument %q must be a string", name)
	}
	return s, true, nil
}
