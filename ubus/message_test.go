package ubus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestMessageBuild(t *testing.T) {
	// call-mwan3-status frame 24, as the ubus CLI sent it.
	want, _ := hex.DecodeString("0005000234566dad0000003803000008" + "34566dad0400000b7374617475730000" +
		"070000208300001b000773656374696f" + "6e000000696e74657266616365730000")
	m := &Message{Header: Header{Type: MsgInvoke, Seq: 2, Peer: 0x34566dad}}
	m.AddU32(AttrObjID, 0x34566dad)
	m.AddString(AttrMethod, "status")
	if err := m.AddTable(AttrData, Table{{"section", "interfaces"}}); err != nil {
		t.Fatal(err)
	}
	got, err := m.MarshalBinary()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("built %x (%v)\nwant  %x", got, err, want)
	}
	if s := m.String(); s != `INVOKE seq=2 peer=34566dad OBJID=34566dad METHOD="status" DATA={"section":"interfaces"}` {
		t.Errorf("String() = %s", s)
	}
	var back Message
	if err := back.UnmarshalBinary(got); err != nil {
		t.Fatal(err)
	}
	if id, ok := back.GetU32(AttrObjID); !ok || id != 0x34566dad {
		t.Error("GetU32")
	}
	if s, ok := back.GetString(AttrMethod); !ok || s != "status" {
		t.Error("GetString")
	}
	if tb, ok, err := back.GetTable(AttrData); !ok || err != nil || tb.String() != `{"section":"interfaces"}` {
		t.Error("GetTable")
	}
	if _, ok := back.GetU8(AttrActive); ok {
		t.Error("absent attribute found")
	}
	m.AddU8(AttrNoReply, 1)
	if s := m.String(); !strings.HasSuffix(s, "NO_REPLY=1") {
		t.Errorf("String() = %s", s)
	}
}

func TestMessageAccessorsFollowLibubus(t *testing.T) {
	m := &Message{Attrs: []Attr{
		{AttrObjID, []byte{0, 0, 0, 1}},
		{AttrObjID, []byte{0, 0, 2}},       // wrong size: absent
		{AttrObjPath, []byte("no-nul")},    // not NUL-terminated: absent
		{AttrMethod, []byte("a\x00b\x00")}, // C sees "a"
		{AttrStatus, []byte{0xff, 0xff, 0xff, 0x9d}},
	}}
	if id, ok := m.GetU32(AttrObjID); !ok || id != 1 {
		t.Errorf("GetU32 = %d %v", id, ok)
	}
	if _, ok := m.GetString(AttrObjPath); ok {
		t.Error("string without NUL accepted")
	}
	if s, _ := m.GetString(AttrMethod); s != "a" {
		t.Errorf("GetString = %q", s)
	}
	if !strings.Contains(m.String(), "STATUS=-99(Unknown error: -99)") {
		t.Errorf("String() = %s", m.String())
	}
}

func TestReadMessage(t *testing.T) {
	two := "000000000a0b0c0d00000004" + "000300640000000000000004"
	b, _ := hex.DecodeString(two)
	r := bytes.NewReader(b)
	for _, want := range []Header{{Type: MsgHello, Peer: 0x0a0b0c0d}, {Type: MsgPing, Seq: 100}} {
		m, err := ReadMessage(r)
		if err != nil || m.Header != want {
			t.Fatalf("ReadMessage = %v %v, want %v", m, err, want)
		}
	}
	if _, err := ReadMessage(r); !errors.Is(err, io.EOF) {
		t.Errorf("at end: %v", err)
	}
	for h, want := range map[string]error{
		"000400010000000000000000":         ErrBodyLength,
		"000400010000000000100004":         ErrTooLarge,
		"00040001000000000000000c01000008": io.ErrUnexpectedEOF,
	} {
		b, _ := hex.DecodeString(h)
		if _, err := ReadMessage(bytes.NewReader(b)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", h, err, want)
		}
	}
	big := &Message{Attrs: []Attr{{AttrData, make([]byte, MaxBodyLen)}}}
	if _, err := big.MarshalBinary(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

func TestStatusText(t *testing.T) {
	for st, want := range map[Status]string{
		StatusOK: "Success", StatusNotFound: "Not found", StatusTimeout: "Request timed out",
		StatusParseError: "Parsing message data failed", Status(99): "Unknown error: 99",
	} {
		if st.String() != want {
			t.Errorf("%d: %q, want %q", st, st.String(), want)
		}
	}
	err := error(&StatusError{Op: `call "x" "y"`, Status: StatusMethodNotFound})
	if !errors.Is(err, StatusMethodNotFound) || errors.Is(err, StatusNotFound) || StatusOf(err) != StatusMethodNotFound {
		t.Error("errors.Is on StatusError")
	}
	if err.Error() != `ubus call "x" "y": Method not found` {
		t.Errorf("Error() = %s", err)
	}
}
