package track

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestDNSName(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		name string
		want []byte
		err  string
	}{
		{".", []byte{0}, ""},
		{"org", []byte{3, 'o', 'r', 'g', 0}, ""},
		{"Example.org.", []byte{7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0}, ""},
		{long + ".x", append(append([]byte{63}, long...), 1, 'x', 0), ""},
		{"", nil, "empty"},
		{"a..b", nil, "length 0"},
		{".org", nil, "length 0"},
		{long + "a.org", nil, "length 64"},
		{strings.Repeat("abc.", 64), nil, "257 bytes"},
	}
	for _, tc := range tests {
		got, err := dnsName(tc.name)
		if !bytes.Equal(got, tc.want) || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("dnsName(%q) = %v, %v; want %v, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestNewDNSQuery checks the query with x/net's parser.
func TestNewDNSQuery(t *testing.T) {
	qname, err := dnsName("example.org")
	mustOK(t, err)
	var p dnsmessage.Parser
	h, err := p.Start(newDNSQuery(0xbeef, qname))
	mustOK(t, err)
	q, err := p.Question()
	mustOK(t, err)
	if h.ID != 0xbeef || h.Response || !h.RecursionDesired || q.Name.String() != "example.org." ||
		q.Type != dnsmessage.TypeNS || q.Class != dnsmessage.ClassINET {
		t.Errorf("query parsed as %+v %+v", h, q)
	}
	if _, err := p.Question(); !errors.Is(err, dnsmessage.ErrSectionDone) {
		t.Errorf("more than one question: %v", err)
	}
}

// dnsAnswer packs an answer with x/net's builder.
func dnsAnswer(t *testing.T, h dnsmessage.Header, qs ...dnsmessage.Question) []byte {
	t.Helper()
	b, err := (&dnsmessage.Message{Header: h, Questions: qs}).Pack()
	mustOK(t, err)
	return b
}

func nsQuestion(name string) dnsmessage.Question {
	return dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeNS, Class: dnsmessage.ClassINET}
}

func TestCheckDNSAnswer(t *testing.T) {
	qname, err := dnsName("example.ORG.")
	mustOK(t, err)
	resp := dnsmessage.Header{ID: 5, Response: true}
	q := nsQuestion("EXAMPLE.org.")
	with := func(f func(h *dnsmessage.Header)) dnsmessage.Header {
		h := resp
		f(&h)
		return h
	}
	compressed := dnsAnswer(t, resp, q)
	compressed = append(compressed[:dnsHeaderLen], 0xc0, 0x0c, 0, dnsTypeNS, 0, dnsClassIN)
	tests := []struct {
		name string
		in   []byte
		ok   bool
		err  string // "ignore" for errIgnore
	}{
		{"answer, name in another case", dnsAnswer(t, resp, q), true, ""},
		{"NXDOMAIN is an answer", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = dnsmessage.RCodeNameError }), q), true, ""},
		{"refused", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = dnsmessage.RCodeRefused }), q), false, "RCodeRefused"},
		{"server failure", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = dnsmessage.RCodeServerFailure }), q), false, "RCodeServerFailure"},
		{"unnamed rcode", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = 9 }), q), false, "RCode9"},
		{"other id", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.ID = 6 }), q), false, "ignore"},
		{"a query, not a response", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.Response = false }), q), false, "ignore"},
		{"no question", dnsAnswer(t, resp), false, "ignore"},
		{"other name", dnsAnswer(t, resp, nsQuestion("example.net.")), false, "ignore"},
		{"longer name", dnsAnswer(t, resp, nsQuestion("www.example.org.")), false, "ignore"},
		{"other type", dnsAnswer(t, resp, dnsmessage.Question{Name: q.Name, Type: dnsmessage.TypeA, Class: q.Class}), false, "ignore"},
		{"other class", dnsAnswer(t, resp, dnsmessage.Question{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassCHAOS}), false, "ignore"},
		{"question name compressed", compressed, false, "ignore"},
		{"truncated question", dnsAnswer(t, resp, q)[:dnsHeaderLen+5], false, "ignore"},
		{"garbage", []byte("garbage"), false, "ignore"},
		{"empty", nil, false, "ignore"},
	}
	for _, tc := range tests {
		ok, err := checkDNSAnswer(tc.in, 5, qname)
		var errOK bool
		switch tc.err {
		case "":
			errOK = err == nil
		case "ignore":
			errOK = errors.Is(err, errIgnore)
		default:
			errOK = err != nil && strings.Contains(err.Error(), tc.err)
		}
		if ok != tc.ok || !errOK {
			t.Errorf("%s: ok %v, error %v; want %v, %q", tc.name, ok, err, tc.ok, tc.err)
		}
	}
}

func FuzzCheckDNSAnswer(f *testing.F) {
	qname, _ := dnsName(".")
	b, _ := (&dnsmessage.Message{Header: dnsmessage.Header{ID: 5, Response: true}, Questions: []dnsmessage.Question{nsQuestion(".")}}).Pack()
	f.Add(b)
	f.Add([]byte{0, 5, 0x80, 0})
	f.Add([]byte{0, 5, 0x80, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ok, err := checkDNSAnswer(b, 5, qname)
		if ok && err != nil {
			t.Fatalf("ok with error %v", err)
		}
		if ok || (err != nil && !errors.Is(err, errIgnore)) {
			// Whatever is taken as an answer is one for x/net's parser too.
			var p dnsmessage.Parser
			h, perr := p.Start(b)
			if perr != nil || h.ID != 5 || !h.Response {
				t.Fatalf("not an answer for x/net (%v): %+v", perr, h)
			}
			q, perr := p.Question()
			if perr != nil || q.Name.String() != "." || q.Type != dnsmessage.TypeNS || q.Class != dnsmessage.ClassINET {
				t.Fatalf("question %+v (%v)", q, perr)
			}
		}
	})
}

func FuzzDNSName(f *testing.F) {
	f.Add(".")
	f.Add("example.org")
	f.Add("a..b.")
	f.Fuzz(func(t *testing.T, name string) {
		w, err := dnsName(name)
		if err != nil {
			return
		}
		if len(w) > dnsMaxName || w[len(w)-1] != 0 {
			t.Fatalf("%q: %v", name, w)
		}
		// Decode it back.
		var labels []string
		for i := 0; w[i] != 0; i += 1 + int(w[i]) {
			if n := int(w[i]); n > dnsMaxLabel || i+1+n >= len(w) {
				t.Fatalf("%q: label length %d at %d in %v", name, n, i, w)
			}
			labels = append(labels, string(w[i+1:i+1+int(w[i])]))
		}
		if got, want := strings.Join(labels, ".")+".", strings.TrimSuffix(name, ".")+"."; got != want {
			t.Fatalf("%q decodes to %q", name, got)
		}
	})
}
