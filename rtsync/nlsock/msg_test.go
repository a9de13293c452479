package nlsock

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// msg frames one message as the kernel would.
func msg(typ, flags uint16, seq uint32, data []byte) []byte {
	b := appendRequest(nil, typ, flags, seq, data)
	ne.PutUint16(b[6:], flags) // without the request flag
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// errMsg is an NLMSG_ERROR with code, quoting a capped request header and
// the extended acknowledgement attributes attrs.
func errMsg(code int32, flags uint16, attrs []byte) []byte {
	d := ne.AppendUint32(nil, uint32(code))
	d = appendRequest(d, 24, 0, 7, nil)
	return msg(typeError, flags, 7, append(d, attrs...))
}

// negErrno is the status field of an error message for e.
func negErrno(e syscall.Errno) uint32 { return uint32(-int32(e)) }

func attr(typ uint16, data []byte) []byte {
	b := ne.AppendUint16(nil, uint16(4+len(data)))
	b = ne.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestAppendRequest(t *testing.T) {
	b := appendRequest(nil, 26, FlagDump, 9, []byte{2, 0, 0, 0})
	m, rest, err := next(b)
	if err != nil || rest != nil || m.Type != 26 || m.Flags != FlagDump|FlagRequest || m.Seq != 9 || len(m.Data) != 4 || m.Data[0] != 2 {
		t.Errorf("next(appendRequest) = %+v, rest %v, err %v", m, rest, err)
	}
}

func TestNext(t *testing.T) {
	two := append(msg(16, FlagMulti, 1, []byte{1, 2, 3}), msg(typeDone, FlagMulti, 1, []byte{0, 0, 0, 0})...)
	m, rest, err := next(two)
	if err != nil || m.Type != 16 || len(m.Data) != 3 || len(rest) != HeaderLen+4 {
		t.Fatalf("first of two: %+v rest %d err %v", m, len(rest), err)
	}
	m, rest, err = next(rest)
	if err != nil || m.Type != typeDone || rest != nil {
		t.Fatalf("second of two: %+v rest %v err %v", m, rest, err)
	}
	for name, b := range map[string][]byte{
		"short header":        two[:HeaderLen-1],
		"length beyond end":   two[:HeaderLen+2],
		"length below header": append(ne.AppendUint32(nil, 8), make([]byte, 12)...),
	} {
		if _, _, err := next(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestErrorOf(t *testing.T) {
	msgAttr := attr(errAttrMsg, []byte("Nexthop has invalid gateway\x00"))
	tests := []struct {
		name  string
		m     []byte
		errno syscall.Errno // 0: no error
		text  string
	}{
		{"ack", errMsg(0, flagCapped, nil), 0, ""},
		{"errno", errMsg(-int32(syscall.ENOENT), flagCapped, nil), syscall.ENOENT, "no such file"},
		{"with the kernel's explanation", errMsg(-int32(syscall.EINVAL), flagCapped|flagAckTLVs, msgAttr), syscall.EINVAL, "invalid argument: Nexthop has invalid gateway"},
		{"explanation after another attribute", errMsg(-int32(syscall.EINVAL), flagCapped|flagAckTLVs, append(attr(2, []byte{0, 0, 0, 0}), msgAttr...)), syscall.EINVAL, "invalid gateway"},
		{"uncapped: the whole request quoted", func() []byte {
			d := ne.AppendUint32(nil, negErrno(syscall.EEXIST))
			d = appendRequest(d, 24, 0, 7, []byte{1, 2, 3, 4, 5, 6, 7, 8})
			return msg(typeError, flagAckTLVs, 7, append(d, attr(errAttrMsg, []byte("exists"))...))
		}(), syscall.EEXIST, "file exists: exists"},
		{"dump end with an error", msg(typeDone, FlagMulti, 7, ne.AppendUint32(nil, negErrno(syscall.EBUSY))), syscall.EBUSY, "busy"},
		{"dump end without status", msg(typeDone, FlagMulti, 7, nil), 0, ""},
	}
	for _, tc := range tests {
		m, _, err := next(tc.m)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = errorOf(m)
		switch {
		case tc.errno == 0 && err != nil:
			t.Errorf("%s: error %v, want none", tc.name, err)
		case tc.errno != 0 && (!errors.Is(err, tc.errno) || !strings.Contains(err.Error(), tc.text)):
			t.Errorf("%s: error %v, want %v mentioning %q", tc.name, err, tc.errno, tc.text)
		}
	}
	short := Message{Type: typeError, Data: []byte{1, 2}}
	if err := errorOf(short); !errors.Is(err, ErrMalformed) {
		t.Errorf("short error message: %v", err)
	}
}

func FuzzNext(f *testing.F) {
	f.Add(msg(16, FlagMulti, 1, []byte{1, 2, 3}))
	f.Add(errMsg(-2, flagCapped|flagAckTLVs, attr(errAttrMsg, []byte("x\x00"))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			m, rest, err := next(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if len(rest) >= len(b) || len(m.Data) > len(b)-HeaderLen {
				t.Fatalf("no progress: %d bytes, then %d", len(b), len(rest))
			}
			if m.Type == typeError || m.Type == typeDone {
				_ = errorOf(m)
			}
			b = rest
		}
	})
}
