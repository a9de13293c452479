package main

import (
	_ "embed"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mwan3d/mwan3d/config"
)

// defaultConfig is the package's /etc/config/mwan3 (a copy of
// packaging/openwrt/mwan3d/files/etc/config/mwan3; a test keeps them
// equal).
//
//go:embed mwan3.conf
var defaultConfig []byte

// defaultConfigName names the embedded configuration in messages.
const defaultConfigName = "mwan3.conf (the shipped /etc/config/mwan3)"

// demoConfig is the configuration the demo runs the daemon on.
type demoConfig struct {
	Text    string         // the configuration file, as `uci export` writes it
	Config  *config.Config // Text loaded
	Enabled []string       // interfaces the demo enabled (disabled in the default)
	// Interval is the track interval the demo set on every interface, 0
	// when the default's is kept.
	Interval int
}

// buildConfig turns the shipped default configuration into the demo's:
// every interface enabled (the default enables wan only, so there would be
// nothing to fail over to) and, when interval > 0, every interface tracked
// every interval seconds (failure and recovery intervals follow it unless
// the file sets them). Comments are not kept.
func buildConfig(src []byte, interval int) (*demoConfig, error) {
	f, diags := config.ParseUCI(defaultConfigName, src)
	if errs := diags.Errors(); len(errs) > 0 {
		return nil, fmt.Errorf("default configuration: %w", errs[0])
	}
	if interval < 0 {
		return nil, fmt.Errorf("interval %d: want 0 (keep) or more", interval)
	}
	d := &demoConfig{Interval: interval}
	for _, s := range f.Sections {
		if s.Type != "interface" {
			continue
		}
		if v, _ := optionValue(s, "enabled"); v != "1" {
			d.Enabled = append(d.Enabled, s.Name)
			setOption(s, "enabled", "1")
		}
		if interval > 0 {
			setOption(s, "interval", strconv.Itoa(interval))
		}
	}
	d.Text = f.Export()
	cfg, diags := config.Load(defaultConfigName, []byte(d.Text))
	if errs := diags.Errors(); len(errs) > 0 {
		return nil, fmt.Errorf("demo configuration: %w", errs[0])
	}
	d.Config = cfg
	if len(cfg.Interfaces) == 0 {
		return nil, fmt.Errorf("demo configuration: no interfaces")
	}
	return d, nil
}

// optionValue returns an option's last value.
func optionValue(s *config.UCISection, name string) (string, bool) {
	o := s.Option(name)
	if o == nil || len(o.Values) == 0 {
		return "", false
	}
	return o.Values[len(o.Values)-1].Text, true
}

// setOption sets an option of a section to one value, adding it when the
// section lacks it.
func setOption(s *config.UCISection, name, value string) {
	if o := s.Option(name); o != nil {
		o.IsList = false
		o.Values = []config.UCIValue{{Text: value, Line: o.Line}}
		return
	}
	s.Options = append(s.Options, &config.UCIOption{Name: name, Values: []config.UCIValue{{Text: value, Line: s.Line}}})
}

// iface returns the named interface section.
func (d *demoConfig) iface(name string) (*config.Interface, error) {
	for _, i := range d.Config.Interfaces {
		if i.Name == name {
			return i, nil
		}
	}
	return nil, fmt.Errorf("demo configuration: no interface %q", name)
}

// targets lists the track_ip addresses of the enabled interfaces, each
// once, in order of appearance; host names go to skipped.
func (d *demoConfig) targets() (addrs []netip.Addr, skipped []string) {
	for _, i := range d.Config.Interfaces {
		if !i.Enabled {
			continue
		}
		for _, t := range i.TrackIP {
			a, err := netip.ParseAddr(t)
			switch {
			case err != nil:
				if !slices.Contains(skipped, t) {
					skipped = append(skipped, t)
				}
			case !slices.Contains(addrs, a.Unmap()):
				addrs = append(addrs, a.Unmap())
			}
		}
	}
	return addrs, skipped
}

// balance describes the weights of the policy the default rules use for
// IPv4, e.g. "balanced: wan 3, wanb 3".
func (d *demoConfig) balance() string {
	var policy string
	for _, r := range d.Config.Rules {
		if r.Family.Matches(config.IPv4) && len(r.DestIP) > 0 && r.DestIP[0].String() == "0.0.0.0/0" {
			policy = r.UsePolicy
			break
		}
	}
	for _, p := range d.Config.Policies {
		if p.Name != policy {
			continue
		}
		var parts []string
		for _, m := range p.Members {
			for _, mm := range d.Config.Members {
				if mm.Name == m && d.familyOf(mm.Interface) == config.IPv4 {
					parts = append(parts, fmt.Sprintf("%s metric %d weight %d", mm.Interface, mm.Metric, mm.Weight))
				}
			}
		}
		return policy + " (" + strings.Join(parts, ", ") + ")"
	}
	return policy
}

// familyOf returns the family of an interface section ("" if unknown).
func (d *demoConfig) familyOf(name string) config.Family {
	if i, err := d.iface(name); err == nil {
		return i.Family
	}
	return ""
}
