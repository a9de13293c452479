package config

import (
	"strings"
	"testing"
)

// badConfigs: what a user can get wrong, with the exact messages (file "t")
// and whether the configuration is refused. Each message points at the
// offending option's line, or the section's when the option is missing.
var badConfigs = []struct {
	name    string
	in      string
	refused bool
	want    []string
}{
	{"unterminated single quote", "config interface 'wan'\n\toption enabled '1\n\toption family 'ipv4'\n", true, []string{
		"t:2: quoted value runs over 2 lines (is a closing quote missing here?)",
		"t:3: unterminated ' quote (it runs to the end of the file) (the file cannot be loaded)",
	}},
	{"unterminated double quote", "config interface wan\noption enabled \"1\n", true, []string{
		"t:2: unterminated \" quote (it runs to the end of the file) (the file cannot be loaded)",
	}},
	{"option before any section", "option enabled '1'\nconfig interface 'wan'\n", true, []string{
		"t:1: option 'enabled' before the first config section (the file cannot be loaded)",
	}},
	{"list before any section", "\nlist track_ip '1.1.1.1'\n", true, []string{
		"t:2: list 'track_ip' before the first config section (the file cannot be loaded)",
	}},
	{"invalid command", "config interface 'wan'\n\toptoin enabled '1'\n", true, []string{
		"t:2: invalid command \"optoin\" (expected config, option, list or package) (the file cannot be loaded)",
	}},
	{"config without type", "config\n", true, []string{
		"t:1: config needs a section type (the file cannot be loaded)",
	}},
	{"option without name", "config interface wan\n\toption\n", true, []string{
		"t:2: option needs an option name (the file cannot be loaded)",
	}},
	{"too many arguments", "config interface 'wan'\n\toption enabled '1' '2'\n", true, []string{
		"t:2: too many arguments to option (the file cannot be loaded)",
	}},
	{"invalid section name", "config interface 'wan-1'\n\toption enabled '1'\n", true, []string{
		"t:1: invalid character in section name \"wan-1\" (only letters, digits and _ are allowed) (the file cannot be loaded)",
	}},
	{"invalid option name", "config interface 'wan'\n\toption 'en.abled' '1'\n", true, []string{
		"t:2: invalid character in option name \"en.abled\" (only letters, digits and _ are allowed) (the file cannot be loaded)",
	}},
	{"NUL byte", "config interface 'wan'\n\toption enabled '1\x00'\n", true, []string{
		"t:2: NUL byte in the file (the file cannot be loaded)",
		"t:2: section 'wan': option 'enabled': '1\\x00' is not a boolean (default 0 used)",
	}},
	{"section type changes", "config interface 'wan'\nconfig member 'wan'\n", true, []string{
		"t:2: section 'wan' of type 'member' overwrites the 'interface' section of the same name at line 1 (the file cannot be loaded)",
	}},
	{"several syntax errors reported at once", "option a b\nconfig interface wan\nbogus\n\toption x 'y\n", true, []string{
		"t:1: option 'a' before the first config section (the file cannot be loaded)",
		"t:3: invalid command \"bogus\" (expected config, option, list or package) (the file cannot be loaded)",
		"t:4: unterminated ' quote (it runs to the end of the file) (the file cannot be loaded)",
	}},
	{"mask with two bits", "config globals 'globals'\n\toption mmx_mask '0x300'\n", true, []string{
		"t:2: section 'globals': option 'mmx_mask': 0x300 has 2 bits set; at least 3 are needed for one interface and the special marks (the configuration is refused)",
	}},
	{"mask with ten bits", "config globals 'globals'\n\toption mmx_mask '0xffc00'\n", true, []string{
		"t:2: section 'globals': option 'mmx_mask': 0xffc00 has 10 bits set; with more than 9 the ip rule priorities of mwan3 (1000+id, 2000+id, 3000+id) collide (the configuration is refused)",
	}},
	{"mask not hex", "config globals 'globals'\n\toption mmx_mask 'banana'\n", false, []string{
		"t:2: section 'globals': option 'mmx_mask': 'banana' is not a hexadecimal mask (default 0x3f00 used)",
	}},
	{"globals not named globals", "config globals 'main'\n\toption mmx_mask '0xff'\n", false, []string{
		"t:1: section 'main': mwan3 reads only the globals section named 'globals' (section ignored)",
	}},
	{"bad loglevel", "config globals 'globals'\n\toption loglevel 'loud'\n", false, []string{
		"t:2: section 'globals': option 'loglevel': 'loud' is not one of emerg, alert, crit, error, warning, notice, info, debug (default 'notice' used)",
	}},
	{"bad rt_table_lookup", "config globals 'globals'\n\tlist rt_table_lookup '220'\n\tlist rt_table_lookup 'main'\n", false, []string{
		"t:3: section 'globals': option 'rt_table_lookup': 'main' is not a routing table number (value ignored)",
	}},
	{"bad boolean", "config interface 'wan'\n\toption enabled 'maybe'\n", false, []string{
		"t:2: section 'wan': option 'enabled': 'maybe' is not a boolean (default 0 used)",
	}},
	{"bad family", "config interface 'wan'\n\toption enabled '1'\n\toption family 'ipv5'\n", false, []string{
		"t:3: section 'wan': option 'family': 'ipv5' is not ipv4 or ipv6 (interface disabled)",
	}},
	{"non-numeric interval", "config interface 'wan'\n\toption enabled '1'\n\toption interval 'ten'\n\tlist track_ip '1.1.1.1'\n", false, []string{
		"t:3: section 'wan': option 'interval': 'ten' is not a number (default 10 used)",
	}},
	{"timeout zero", "config interface 'wan'\n\toption enabled '1'\n\toption timeout '0'\n\tlist track_ip '1.1.1.1'\n", false, []string{
		"t:3: section 'wan': option 'timeout': 0 is out of range 1-600 (default 4 used)",
	}},
	{"negative down", "config interface 'wan'\n\toption enabled '1'\n\toption down '-3'\n\tlist track_ip '1.1.1.1'\n", false, []string{
		"t:3: section 'wan': option 'down': -3 is out of range 1-1000 (default 5 used)",
	}},
	{"loss over 100", "config interface 'wan'\n\toption enabled '1'\n\toption failure_loss '140'\n\tlist track_ip '1.1.1.1'\n", false, []string{
		"t:3: section 'wan': option 'failure_loss': 140 is out of range 0-100 (default 40 used)",
	}},
	{"unknown track_method", "config interface 'wan'\n\toption enabled '1'\n\toption track_method 'smoke'\n\tlist track_ip '1.1.1.1'\n", false, []string{
		"t:3: section 'wan': option 'track_method': 'smoke' is not supported (ping used instead)",
	}},
	{"arping on ipv6", "config interface 'wan6'\n\toption enabled '1'\n\toption family 'ipv6'\n\toption track_method 'arping'\n\tlist track_ip '2001:db8::1'\n", false, []string{
		"t:4: section 'wan6': option 'track_method': arping does not work for an ipv6 interface (ping used instead)",
	}},
	{"check_quality with nping", "config interface 'wan'\n\toption enabled '1'\n\toption track_method 'nping-tcp'\n\toption check_quality '1'\n\tlist track_ip '1.1.1.1'\n", false, []string{
		"t:4: section 'wan': option 'check_quality': quality is measured only by ping and httping, not nping-tcp (check_quality ignored)",
	}},
	{"bad initial_state", "config interface 'wan'\n\toption enabled '1'\n\toption initial_state 'up'\n", false, []string{
		"t:3: section 'wan': option 'initial_state': 'up' is not one of online, offline (default 'online' used)",
	}},
	{"bad flush_conntrack", "config interface 'wan'\n\toption enabled '1'\n\tlist flush_conntrack 'ifup'\n\tlist flush_conntrack 'reboot'\n", false, []string{
		"t:4: section 'wan': option 'flush_conntrack': 'reboot' is not ifup, ifdown, connected or disconnected (value ignored)",
	}},
	{"reliability above targets", "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '1.1.1.1'\n\toption reliability '2'\n", false, []string{
		"t:4: section 'wan': option 'reliability': 2 is more than the 1 track_ip targets, so tracking can never report the interface online (kept, as legacy does)",
	}},
	{"offline without tracking", "config interface 'wan'\n\toption enabled '1'\n\toption initial_state 'offline'\n", false, []string{
		"t:3: section 'wan': option 'initial_state': offline without track_ip means the interface never comes online (kept, as legacy does)",
	}},
	{"unknown interface option", "config interface 'wan'\n\toption enabled '1'\n\toption tracking '1'\n", false, []string{
		"t:3: section 'wan': unknown option 'tracking' (ignored)",
	}},
	{"interfaces beyond the mask", "config globals 'globals'\n\toption mmx_mask '0x7'\nconfig interface 'w1'\n\toption enabled '1'\nconfig interface 'w2'\n\toption enabled '1'\nconfig interface 'w3'\n\toption enabled '1'\nconfig interface 'w4'\n\toption enabled '1'\nconfig interface 'w5'\n\toption enabled '1'\n", false, []string{
		"t:11: section 'w5': interface id 5 is beyond the 4 interfaces mmx_mask 0x7 allows (interface disabled)",
	}},
	{"anonymous interface", "config interface\n\toption enabled '1'\n", false, []string{
		"t:1: section '@interface[0]': an interface section needs the name of a netifd interface (interface disabled)",
	}},
	{"member without interface", "config member 'm'\n\toption metric '1'\n", false, []string{
		"t:1: section 'm': no option 'interface' (member ignored)",
	}},
	{"member of unknown interface", "config member 'm'\n\toption interface 'wanx'\n", false, []string{
		"t:2: section 'm': option 'interface': 'wanx' is not an mwan3 interface (member ignored)",
	}},
	{"member metric over 256", "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\n\toption metric '300'\n", false, []string{
		"t:4: section 'm': Member interface wan has >256 metric. Not appending to policy",
	}},
	{"member weight zero", "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\n\toption weight '0'\n", false, []string{
		"t:4: section 'm': option 'weight': 0 is out of range 1-2147483647 (default 1 used)",
	}},
	{"policy with missing member", "config policy 'p'\n\tlist use_member 'nosuch'\n", false, []string{
		"t:1: section 'p': policy has no usable member (its last_resort 'unreachable' always applies)",
		"t:2: section 'p': use_member 'nosuch' is not a member (skipped)",
	}},
	{"policy with ignored member", "config member 'm'\n\toption interface 'x'\nconfig policy 'p'\n\tlist use_member 'm'\n", false, []string{
		"t:2: section 'm': option 'interface': 'x' is not an mwan3 interface (member ignored)",
		"t:3: section 'p': policy has no usable member (its last_resort 'unreachable' always applies)",
		"t:4: section 'p': use_member 'm' refers to the member at line 1, which was ignored (skipped)",
	}},
	{"policy name too long", "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'a_very_long_policy'\n\tlist use_member 'm'\n", false, []string{
		"t:4: section 'a_very_long_policy': Policy a_very_long_policy exceeds max of 15 chars. Not setting policy",
	}},
	{"bad last_resort", "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm'\n\toption last_resort 'drop'\n", false, []string{
		"t:6: section 'p': option 'last_resort': 'drop' is not one of unreachable, blackhole, default (default 'unreachable' used)",
	}},
	{"duplicate use_member", "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm'\n\tlist use_member 'm'\n", false, []string{
		"t:6: section 'p': use_member 'm' is listed twice (second ignored)",
	}},
	{"rule name too long", "config rule 'a_very_long_rule_name'\n\toption use_policy 'default'\n", false, []string{
		"t:1: section 'a_very_long_rule_name': Rule a_very_long_rule_name exceeds max of 15 chars. Not setting rule",
	}},
	{"rule without use_policy", "config rule 'r'\n\toption proto 'tcp'\n", false, []string{
		"t:1: section 'r': no option 'use_policy' (rule ignored)",
	}},
	{"rule with unknown policy", "config rule 'r'\n\toption use_policy 'nosuch'\n", false, []string{
		"t:2: section 'r': use_policy 'nosuch' is not a policy (rule ignored: it would match nothing)",
	}},
	{"rule with skipped policy", "config policy 'a_very_long_policy'\nconfig rule 'r'\n\toption use_policy 'a_very_long_policy'\n", false, []string{
		"t:1: section 'a_very_long_policy': Policy a_very_long_policy exceeds max of 15 chars. Not setting policy",
		"t:3: section 'r': use_policy 'a_very_long_policy' refers to the policy at line 1, which was not set (rule ignored: it would match nothing)",
	}},
	{"malformed dest_ip", "config rule 'r'\n\toption dest_ip '10.0.0.300'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'dest_ip': \"10.0.0.300\" is not an IP address (rule ignored)",
	}},
	{"prefix length out of range", "config rule 'r'\n\toption src_ip '10.0.0.0/33'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'src_ip': prefix length /33 is out of range for 10.0.0.0 (rule ignored)",
	}},
	{"wrong family address", "config rule 'r'\n\toption family 'ipv6'\n\toption dest_ip '10.0.0.0/8'\n\toption use_policy 'default'\n", false, []string{
		"t:3: section 'r': rule never matches: invalid ipv6 address 10.0.0.0/8 specified for rule r (rule ignored)",
	}},
	{"mixed families in an ipv4 rule", "config rule 'r'\n\toption family 'ipv4'\n\toption dest_ip '10.0.0.0/8,2001:db8::/32'\n\toption use_policy 'default'\n", false, []string{
		"t:3: section 'r': option 'dest_ip': addresses that are not ipv4 are ignored for a family ipv4 rule",
	}},
	{"no family in common", "config rule 'r'\n\toption src_ip '10.0.0.1'\n\toption dest_ip '2001:db8::1'\n\toption use_policy 'default'\n", false, []string{
		"t:3: section 'r': rule never matches: invalid ipv4 address 2001:db8::1 specified for rule r (rule ignored)",
	}},
	{"port out of range", "config rule 'r'\n\toption proto 'tcp'\n\toption dest_port '70000'\n\toption use_policy 'default'\n", false, []string{
		"t:3: section 'r': option 'dest_port': port 70000 is out of range 0-65535 (rule ignored)",
	}},
	{"backwards port range", "config rule 'r'\n\toption proto 'udp'\n\toption src_port '2048:1024'\n\toption use_policy 'default'\n", false, []string{
		"t:3: section 'r': option 'src_port': port range \"2048:1024\" runs backwards (rule ignored)",
	}},
	{"port name", "config rule 'r'\n\toption proto 'tcp'\n\toption dest_port 'https'\n\toption use_policy 'default'\n", false, []string{
		"t:3: section 'r': option 'dest_port': \"https\" is not a port number (rule ignored)",
	}},
	{"ports without tcp or udp", "config rule 'r'\n\toption dest_port '443'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': dest_port set to '443' but proto set to 'all' not tcp or udp. dest_port will be ignored",
	}},
	{"unknown proto", "config rule 'r'\n\toption proto 'tcpp'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'proto': unknown protocol \"tcpp\" (rule ignored)",
	}},
	{"proto number out of range", "config rule 'r'\n\toption proto '300'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'proto': protocol number 300 is out of range 0-255 (rule ignored)",
	}},
	{"bad rule family", "config rule 'r'\n\toption family 'inet'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'family': 'inet' is not ipv4, ipv6 or any (any used)",
	}},
	{"bad ipset name", "config rule 'r'\n\toption ipset 'my set'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'ipset': 'my set' is not a set name (up to 31 letters, digits, '_', '-' or '.') (rule ignored)",
	}},
	{"sticky timeout out of range", "config rule 'r'\n\toption sticky '1'\n\toption timeout '0'\n\toption use_policy 'default'\n", false, []string{
		"t:2: section 'r': option 'sticky' has no effect with use_policy 'default' (ignored)",
		"t:3: section 'r': option 'timeout': 0 is out of range 1-1000000 (default 600 used)",
	}},
	{"sticky with special policy", "config rule 'r'\n\toption sticky '1'\n\toption use_policy 'blackhole'\n", false, []string{
		"t:2: section 'r': option 'sticky' has no effect with use_policy 'blackhole' (ignored)",
	}},
	{"unknown section type", "config condition\n\toption interface 'wan'\n", false, []string{
		"t:1: section '@condition[0]': unknown section type 'condition' (section ignored)",
	}},
	{"scalar given as list", "config interface 'wan'\n\tlist interval '5'\n\tlist interval '7'\n", false, []string{
		"t:3: section 'wan': option 'interval' is given as a list of 2 values; one is expected (the last, '7', is used)",
	}},
	{"duplicate section merged", "config interface 'wan'\n\toption enabled '1'\nconfig interface 'wan'\n\toption enabled '0'\n", false, []string{
		"t:3: section 'wan': section defined again (its options are merged into the section at line 1, as UCI does)",
		"t:4: section 'wan': option 'enabled' set again (the value from line 2 is replaced)",
	}},
}

func TestBadConfigs(t *testing.T) {
	if len(badConfigs) < 40 {
		t.Fatalf("only %d bad configurations", len(badConfigs))
	}
	for _, tt := range badConfigs {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Load("t", []byte(tt.in))
			if got := diags.HasErrors(); got != tt.refused {
				t.Errorf("refused = %v, want %v", got, tt.refused)
			}
			var got []string
			for _, d := range diags.Sorted() {
				got = append(got, d.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
