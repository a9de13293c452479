package track

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mwan3d/mwan3d/internal/golden"
)

func TestHTTPURL(t *testing.T) {
	tests := []struct {
		target string
		ssl    bool
		want   string
	}{
		{"192.0.2.1", false, "http://192.0.2.1/"},
		{"2001:db8::1", false, "http://[2001:db8::1]/"},
		{"fe80::1%eth0", true, "https://[fe80::1%eth0]/"},
		{"www.example.com", true, "https://www.example.com/"},
	}
	for _, tc := range tests {
		if got := httpURL(tc.target, tc.ssl); got != tc.want {
			t.Errorf("httpURL(%q, %v) = %q, want %q", tc.target, tc.ssl, got, tc.want)
		}
	}
	want := "HEAD / HTTP/1.1\r\nHost: [2001:db8::1]\r\n"
	if got := string(httpRequest("2001:db8::1")); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Errorf("request %q, want it to start with %q and end the header", got, want)
	}
}

// feed hands b to check one byte at a time, as a slow server would, and
// returns the first verdict and how many bytes it took.
func feed(check func([]byte) (bool, error), b []byte) (done bool, n int, err error) {
	for n = 1; n <= len(b); n++ {
		done, err = check(b[:n])
		if done || err != nil {
			return done, n, err
		}
	}
	return false, len(b), nil
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		name, in string
		done     bool
		err      string // "" for none
	}{
		{"200 with reason", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", true, ""},
		{"404 is an answer", "HTTP/1.1 404 Not Found\r\n", true, ""},
		{"HTTP/1.0, no reason, bare LF", "HTTP/1.0 503\n", true, ""},
		{"1xx is an answer", "HTTP/1.1 100 Continue\r\n", true, ""},
		{"empty reason after the space", "HTTP/1.1 204 \r\n", true, ""},
		{"incomplete line", "HTTP/1.1 200 OK", false, ""},
		{"nothing yet", "", false, ""},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n", false, "malformed HTTP"},
		{"lower case", "http/1.1 200 OK\r\n", false, "malformed HTTP"},
		{"HTTP/2 has no minor version", "HTTP/2 200\r\n", false, "malformed HTTP"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n", false, "malformed HTTP"},
		{"status 0xx", "HTTP/1.1 099 x\r\n", false, "malformed HTTP"},
		{"four-digit status", "HTTP/1.1 2000\r\n", false, "malformed HTTP"},
		{"no space after the version", "HTTP/1.1\t200 OK\r\n", false, "malformed HTTP"},
		{"endless status line", "HTTP/1.1 200 " + strings.Repeat("x", maxStatusLine), false, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, slow := range []bool{false, true} {
				var done bool
				var err error
				if slow {
					done, _, err = feed(httpStatus, []byte(tc.in))
				} else {
					done, err = httpStatus([]byte(tc.in))
				}
				if done != tc.done || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
					t.Errorf("slow %v: done %v err %v, want done %v err %q", slow, done, err, tc.done, tc.err)
				}
			}
		})
	}
	// Garbage is refused at its first byte, without waiting for more.
	if _, n, err := feed(httpStatus, []byte("SSH-2.0-x\r\n")); err == nil || n != 1 {
		t.Errorf("garbage: refused after %d bytes (%v), want 1", n, err)
	}
}

func TestTLSAnswer(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		done bool
		err  string
	}{
		{"ServerHello", []byte{22, 3, 3, 0, 90, 2, 0, 0, 86}, true, ""},
		{"ServerHello in a TLS 1.0 record", []byte{22, 3, 1, 0, 90, 2}, true, ""},
		{"fatal alert", []byte{21, 3, 3, 0, 2, 2, 40}, true, ""},
		{"warning alert", []byte{21, 3, 1, 0, 2, 1, 0}, true, ""},
		{"header only", []byte{22, 3, 3, 0, 90}, false, ""},
		{"HTTP instead of TLS", []byte("HTTP/1.1 400 Bad Request\r\n"), false, "record type 72"},
		{"application data", []byte{23, 3, 3, 0, 20, 0}, false, "record type 23"},
		{"SSL 2 version", []byte{22, 2, 0, 0, 90, 2}, false, "record version"},
		{"future version", []byte{22, 3, 9, 0, 90, 2}, false, "record version"},
		{"client hello back", []byte{22, 3, 3, 0, 90, 1}, false, "message type 1"},
		{"empty handshake record", []byte{22, 3, 3, 0, 0, 2}, false, "0 bytes"},
		{"oversized record", []byte{22, 3, 3, 0xff, 0xff, 2}, false, "65535 bytes"},
		{"long alert", []byte{21, 3, 3, 0, 3, 2, 40}, false, "alert record of 3"},
		{"alert level 7", []byte{21, 3, 3, 0, 2, 7, 40}, false, "level 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done, _, err := feed(tlsAnswer, tc.in)
			if done != tc.done || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("done %v err %v, want done %v err %q", done, err, tc.done, tc.err)
			}
		})
	}
}

// fixedHello has the random values of the golden ClientHello.
func fixedHello(name string) tlsHelloParams {
	p := tlsHelloParams{serverName: name}
	for i := range 32 {
		p.random[i], p.sessionID[i], p.keyShare[i] = byte(i), byte(0x40+i), byte(0x80+i)
	}
	return p
}

// TestClientHelloGolden checks the rendered ClientHello records against
// testdata/clienthello.golden (-update rewrites): with SNI for a host
// name, without for an IP literal.
func TestClientHelloGolden(t *testing.T) {
	var b strings.Builder
	for _, name := range []string{"www.example.com", "2001:db8::1"} {
		b.WriteString("# " + name + "\n" + hex.Dump(tlsClientHelloRecord(fixedHello(name))))
	}
	golden.Check(t, filepath.Join("testdata", "clienthello.golden"), b.String())
}

// selfSigned returns a certificate for "www.example.com".
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), cryptorand.Reader)
	mustOK(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"www.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(cryptorand.Reader, tmpl, tmpl, &key.PublicKey, key)
	mustOK(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServerAnswer hands hello to a crypto/tls server configured by cfg
// and returns what the server sent first (up to 6 bytes, what tlsAnswer
// needs) and the ClientHello as the server understood it.
func tlsServerAnswer(t *testing.T, cfg *tls.Config, hello []byte) ([]byte, *tls.ClientHelloInfo) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	var info *tls.ClientHelloInfo
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		info = h
		return nil, nil
	}
	srv := tls.Server(server, cfg)
	hsDone := make(chan error, 1)
	go func() {
		hsDone <- srv.Handshake()
		server.Close()
	}()
	go func() { _, _ = client.Write(hello) }()
	mustOK(t, client.SetReadDeadline(time.Now().Add(10*time.Second)))
	got := make([]byte, 6)
	n, err := io.ReadFull(client, got)
	if err != nil {
		t.Errorf("server sent %x, then %v", got[:n], err)
	}
	client.Close() // the probe gives up here; the handshake fails
	<-hsDone
	return got[:n], info
}

// TestClientHelloAccepted checks that crypto/tls servers of various
// configurations read the ClientHello and answer it the way tlsAnswer
// accepts: ServerHello (TLS 1.3, 1.2, HelloRetryRequest for another
// group) or an alert (no certificate, no common cipher suite).
func TestClientHelloAccepted(t *testing.T) {
	cert := selfSigned(t)
	tests := []struct {
		name  string
		cfg   *tls.Config
		first byte // record type expected first
	}{
		{"TLS 1.3", &tls.Config{Certificates: []tls.Certificate{cert}}, tlsRecordHandshake},
		{"TLS 1.2 only", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12}, tlsRecordHandshake},
		{"hello retry for P-256", &tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: []tls.CurveID{tls.CurveP256}}, tlsRecordHandshake},
		{"no certificate", &tls.Config{}, tlsRecordAlert},
		{"no common cipher suite", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, tlsRecordAlert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"www.example.com", "192.0.2.1"} {
				got, info := tlsServerAnswer(t, tc.cfg, tlsClientHelloRecord(newHelloParams(name)))
				done, err := tlsAnswer(got)
				if !done || err != nil || got[0] != tc.first {
					t.Errorf("%s: server answered %x: done %v err %v, want record type %d", name, got, done, err, tc.first)
				}
				if info == nil {
					continue // refused before the callback
				}
				wantSNI := name
				if name == "192.0.2.1" {
					wantSNI = ""
				}
				if info.ServerName != wantSNI {
					t.Errorf("%s: server name %q, want %q", name, info.ServerName, wantSNI)
				}
				if !bytes.Contains(u16bytes(info.SupportedVersions), []byte{3, 4}) {
					t.Errorf("%s: supported versions %x lack TLS 1.3", name, info.SupportedVersions)
				}
			}
		})
	}
}

func u16bytes(vs []uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}

// TestClientHelloRandom checks that every hello has fresh random values.
func TestClientHelloRandom(t *testing.T) {
	a, b := newHelloParams("x"), newHelloParams("x")
	if a.random == b.random || a.sessionID == b.sessionID || a.keyShare == b.keyShare {
		t.Errorf("random values repeat: %x %x", a.random, b.random)
	}
}

func FuzzHTTPStatus(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\n"))
	f.Add([]byte("HTTP/1.0 404\n"))
	f.Add([]byte("SSH-2.0-x\r\n"))
	f.Add([]byte("HTTP/1.1 20"))
	f.Fuzz(func(t *testing.T, b []byte) {
		done, err := httpStatus(b)
		if done && err != nil {
			t.Fatalf("done and error %v", err)
		}
		if done {
			line, _, _ := bytes.Cut(b, []byte("\n"))
			if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/")) {
				t.Fatalf("accepted %q", line)
			}
		}
		if !done && err == nil && (len(b) >= maxStatusLine || bytes.IndexByte(b, '\n') >= 0) {
			t.Fatalf("wants more after a complete line or %d bytes: %q", len(b), b)
		}
		// A verdict does not change when more bytes arrive.
		if done || err != nil {
			d2, err2 := httpStatus(append(bytes.Clone(b), "more\r\n"...))
			if d2 != done || (err2 == nil) != (err == nil) {
				t.Fatalf("verdict changed with more input: %v %v -> %v %v", done, err, d2, err2)
			}
		}
	})
}

func FuzzTLSAnswer(f *testing.F) {
	f.Add([]byte{22, 3, 3, 0, 90, 2})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte("HTTP/1.1 400"))
	f.Fuzz(func(t *testing.T, b []byte) {
		done, err := tlsAnswer(b)
		if done && err != nil {
			t.Fatalf("done and error %v", err)
		}
		if !done && err == nil && len(b) >= 6 {
			t.Fatalf("wants more after %d bytes: %x", len(b), b)
		}
		if done || err != nil {
			d2, err2 := tlsAnswer(append(bytes.Clone(b), 0, 1, 2))
			if d2 != done || (err2 == nil) != (err == nil) {
				t.Fatalf("verdict changed with more input: %v %v -> %v %v", done, err, d2, err2)
			}
		}
	})
}
