// Package vectors loads the ubus golden recordings (ubus/testdata/vectors)
// for the tests of the ubus packages: every frame that crossed the socket
// between the real ubusd and its clients, with the programs' outputs.
package vectors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// File is one recorded scenario.
type File struct {
	Scenario    string            `json:"scenario"`
	Description string            `json:"description"`
	Steps       []Step            `json:"steps"`
	Connections []Conn            `json:"connections"`
	Objects     map[string]Object `json:"objects"`
	Frames      []Frame           `json:"frames"`
}

// Step is one program run during the recording.
type Step struct {
	Label    string            `json:"label"`
	Kind     string            `json:"kind"`
	Command  string            `json:"command"`
	ExitCode *int              `json:"exit_code"`
	Stdout   string            `json:"stdout"`
	Stderr   string            `json:"stderr"`
	Probes   []json.RawMessage `json:"probes"`
}

// Conn is one client connection.
type Conn struct {
	Conn     int     `json:"conn"`
	Label    string  `json:"label"`
	Command  string  `json:"command"`
	ClientID string  `json:"client_id"`
	OpenedT  float64 `json:"opened_t"`
	ClosedT  float64 `json:"closed_t"`
	ClosedBy string  `json:"closed_by"`
}

// Object is an object registered during the recording.
type Object struct {
	Path      *string `json:"path"`
	TypeID    *string `json:"type_id"`
	OwnerConn int     `json:"owner_conn"`
}

// Frame is one recorded frame.
type Frame struct {
	I            int             `json:"i"`
	T            float64         `json:"t"`
	Conn         int             `json:"conn"`
	Dir          string          `json:"dir"`
	Len          int             `json:"len"`
	Hex          string          `json:"hex"`
	HexTruncated bool            `json:"hex_truncated"`
	SHA256       string          `json:"sha256"`
	Malformed    bool            `json:"malformed"`
	Partial      bool            `json:"partial"`
	Summary      string          `json:"summary"`
	FDsPassed    int             `json:"fds_passed"`
	Decoded      json.RawMessage `json:"decoded"`
}

// Directions of a frame.
const (
	ToBus   = "client->ubusd"
	FromBus = "ubusd->client"
)

// Dir finds the vectors directory from the current directory (a package
// directory inside the module): ubus/testdata/vectors, falling back to the
// shared copy beside the repository.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, c := range []string{"ubus/testdata/vectors", "testdata/vectors", "../shared/ubus-vectors"} {
			p := filepath.Join(d, c)
			if _, err := os.Stat(filepath.Join(p, "list-empty.json")); err == nil {
				return p, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", errors.New("vectors: ubus/testdata/vectors not found above " + wd)
		}
	}
}

// Load reads one scenario by name (without .json).
func Load(name string) (*File, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("vectors: %s: %w", name, err)
	}
	return &f, nil
}

// Names lists the scenarios, sorted.
func Names() ([]string, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range m {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	sort.Strings(names)
	return names, nil
}

// Bytes returns the frame's bytes. A frame stored truncated (over 4 KiB) is
// rebuilt when it is a run of one repeated filler byte after the stored
// prefix, closed by up to four NUL bytes, and its SHA-256 matches.
func (f *Frame) Bytes() ([]byte, error) {
	b, err := hex.DecodeString(f.Hex)
	if err != nil {
		return nil, err
	}
	if !f.HexTruncated {
		return b, nil
	}
	if len(b) == 0 || f.Len <= len(b) {
		return nil, fmt.Errorf("frame %d: cannot rebuild", f.I)
	}
	fill := b[len(b)-1]
	for k := 1; k <= 4; k++ {
		full := append(bytes.Clone(b), bytes.Repeat([]byte{fill}, f.Len-len(b)-k)...)
		full = append(full, make([]byte, k)...)
		sum := sha256.Sum256(full)
		if hex.EncodeToString(sum[:]) == f.SHA256 {
			return full, nil
		}
	}
	return nil, fmt.Errorf("frame %d: truncated frame could not be rebuilt", f.I)
}

// Conn returns the connection with the given number.
func (v *File) Conn(n int) *Conn {
	for i := range v.Connections {
		if v.Connections[i].Conn == n {
			return &v.Connections[i]
		}
	}
	return nil
}

// Step returns the step with the given label.
func (v *File) Step(label string) *Step {
	for i := range v.Steps {
		if v.Steps[i].Label == label && v.Steps[i].Kind != "signal" {
			return &v.Steps[i]
		}
	}
	return nil
}

// IDs returns every id of the recording (client, object and type ids), the
// values that differ from run to run.
func (v *File) IDs() map[uint32]bool {
	ids := map[uint32]bool{}
	add := func(s string) {
		if x, err := strconv.ParseUint(s, 16, 32); err == nil && x >= 1024 {
			ids[uint32(x)] = true
		}
	}
	for _, c := range v.Connections {
		add(c.ClientID)
	}
	for id, o := range v.Objects {
		add(id)
		if o.TypeID != nil {
			add(*o.TypeID)
		}
	}
	return ids
}

// FramesOf returns the frames of one connection, in order.
func (v *File) FramesOf(conn int) []Frame {
	var out []Frame
	for _, f := range v.Frames {
		if f.Conn == conn {
			out = append(out, f)
		}
	}
	return out
}

// Mapper relates the ids of a recording to the ids of a live run. Ids are
// random, so frames are compared word by word (ids are always 4-byte
// aligned): a word holding a recorded id must hold the live id it maps to,
// and the mapping is learnt from the first frame that shows it.
type Mapper struct {
	ids     map[uint32]bool
	toLive  map[uint32]uint32
	fromLiv map[uint32]uint32
}

// NewMapper returns a Mapper for the recorded ids (see File.IDs).
func NewMapper(ids map[uint32]bool) *Mapper {
	return &Mapper{ids: ids, toLive: map[uint32]uint32{}, fromLiv: map[uint32]uint32{}}
}

// Map records that the recorded id rec is live in this run.
func (m *Mapper) Map(rec, live uint32) error {
	if l, ok := m.toLive[rec]; ok {
		if l != live {
			return fmt.Errorf("recorded id %08x is live %08x, now seen as %08x", rec, l, live)
		}
		return nil
	}
	if r, ok := m.fromLiv[live]; ok && r != rec {
		return fmt.Errorf("live id %08x already stands for %08x, not %08x", live, r, rec)
	}
	m.toLive[rec], m.fromLiv[live] = live, rec
	return nil
}

// Live returns the live id of a recorded one.
func (m *Mapper) Live(rec uint32) (uint32, bool) {
	l, ok := m.toLive[rec]
	return l, ok
}

// Match compares a recorded frame with a live one, learning id mappings.
func (m *Mapper) Match(rec, live []byte) error {
	if len(rec) != len(live) {
		return fmt.Errorf("length %d, want %d", len(live), len(rec))
	}
	type pair struct{ rec, live uint32 }
	var learn []pair
	for i := 0; i+4 <= len(rec); i += 4 {
		r, l := be32(rec[i:]), be32(live[i:])
		if r == l && !m.ids[r] {
			continue
		}
		if !m.ids[r] {
			return fmt.Errorf("offset %d: %08x, want %08x", i, l, r)
		}
		learn = append(learn, pair{r, l})
	}
	if n := len(rec) &^ 3; !bytes.Equal(rec[n:], live[n:]) {
		return fmt.Errorf("trailing bytes %x, want %x", live[n:], rec[n:])
	}
	for _, p := range learn {
		if err := m.Map(p.rec, p.live); err != nil {
			return err
		}
	}
	return nil
}

// Rewrite returns a copy of a recorded frame with every known recorded id
// replaced by its live id.
func (m *Mapper) Rewrite(rec []byte) []byte {
	out := bytes.Clone(rec)
	for i := 0; i+4 <= len(out); i += 4 {
		if l, ok := m.toLive[be32(out[i:])]; ok {
			out[i], out[i+1], out[i+2], out[i+3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		}
	}
	return out
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Args splits a recorded command line into words like a POSIX shell:
// single quotes, double quotes (with backslash escapes) and backslashes
// outside quotes.
func Args(cmd string) []string {
	var words []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case c == '\'':
			in = true
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				j = len(cmd) - i - 1
			}
			cur.WriteString(cmd[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			in = true
			for i++; i < len(cmd) && cmd[i] != '"'; i++ {
				if cmd[i] == '\\' && i+1 < len(cmd) && strings.IndexByte("\"\\$`", cmd[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(cmd[i])
			}
		case c == '\\' && i+1 < len(cmd):
			in = true
			i++
			cur.WriteByte(cmd[i])
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// Restore replaces, in a program's text output, the live ids known to the
// mapper with the recorded ones, in the two forms the ubus tool prints:
// eight hex digits ("@34566dad") and signed 32-bit decimal ("id":-90988).
func (m *Mapper) Restore(s string) string { return m.replace(s, false) }

// Apply replaces recorded ids with live ones in a recorded command-line
// argument (ids passed in JSON as signed 32-bit decimals, or in hex).
func (m *Mapper) Apply(s string) string { return m.replace(s, true) }

func (m *Mapper) replace(s string, toLive bool) string {
	var pairs []string
	for rec, live := range m.toLive {
		from, to := live, rec
		if toLive {
			from, to = rec, live
		}
		pairs = append(pairs,
			fmt.Sprintf("%08x", from), fmt.Sprintf("%08x", to),
			strconv.Itoa(int(int32(from))), strconv.Itoa(int(int32(to))))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}
