package config

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxFileSize bounds what ParseUCI reads, so a runaway file cannot exhaust
// a router's memory. Real configurations are a few kilobytes.
const MaxFileSize = 16 << 20

// UCIFile is a UCI configuration file as libuci reads it: sections in file
// order, each with its options in the order they were last set.
type UCIFile struct {
	Name     string // file name used in messages
	Package  string // from a "package" line; empty when there is none
	Sections []*UCISection
}

// UCISection is one "config <type> [<name>]" section.
type UCISection struct {
	Type string
	// Name is the section's name; anonymous sections get libuci's
	// generated "cfgNNHHHH" name.
	Name      string
	Anonymous bool
	// Index is the position among sections of the same type, so that the
	// section is "@Type[Index]" in uci's extended syntax.
	Index   int
	Line    int
	Options []*UCIOption
}

// UCIOption is an "option" (one value) or a "list" (values in order).
type UCIOption struct {
	Name   string
	IsList bool
	Values []UCIValue
	Line   int // line of the statement that last set (or first listed) it
}

// UCIValue is one value with the line it starts on.
type UCIValue struct {
	Text string
	Line int
}

// Ref is how messages name the section: its name, or "@type[n]" for an
// anonymous one, as `uci show` prints it.
func (s *UCISection) Ref() string {
	if s.Anonymous {
		return fmt.Sprintf("@%s[%d]", s.Type, s.Index)
	}
	return s.Name
}

// Option returns the named option, or nil.
func (s *UCISection) Option(name string) *UCIOption {
	for _, o := range s.Options {
		if o.Name == name {
			return o
		}
	}
	return nil
}

// Lookup finds a section by name or by libuci's extended "@type[n]" syntax
// (negative n counts from the end).
func (f *UCIFile) Lookup(ref string) *UCISection {
	if !strings.HasPrefix(ref, "@") {
		for _, s := range f.Sections {
			if s.Name == ref {
				return s
			}
		}
		return nil
	}
	typ, idx, ok := strings.Cut(ref[1:], "[")
	if !ok || !strings.HasSuffix(idx, "]") {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
	if err != nil {
		return nil
	}
	var of []*UCISection
	for _, s := range f.Sections {
		if typ == "" || s.Type == typ {
			of = append(of, s)
		}
	}
	if n < 0 {
		n += len(of)
	}
	if n < 0 || n >= len(of) {
		return nil
	}
	return of[n]
}

// Export writes the file the way `uci export` does, so that parsing the
// output gives the same sections and values.
func (f *UCIFile) Export() string {
	var b strings.Builder
	if f.Package != "" {
		fmt.Fprintf(&b, "package %s\n", uciQuote(f.Package))
	}
	for _, s := range f.Sections {
		fmt.Fprintf(&b, "\nconfig %s", s.Type)
		if !s.Anonymous {
			fmt.Fprintf(&b, " %s", uciQuote(s.Name))
		}
		b.WriteByte('\n')
		for _, o := range s.Options {
			kw := "option"
			if o.IsList {
				kw = "list"
			}
			for _, v := range o.Values {
				fmt.Fprintf(&b, "\t%s %s %s\n", kw, o.Name, uciQuote(v.Text))
			}
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// uciQuote single-quotes s; an embedded quote closes the string, is escaped
// with a backslash and reopens it, as libuci's uci_escape does.
func uciQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ParseUCI reads a UCI file with libuci's rules: keywords config/option/
// list/package (or their first letters), arguments unquoted, in single or
// double quotes or any concatenation of these, backslash escapes outside
// single quotes, backslash-newline continuations, quoted values spanning
// lines, '#' comments, ';' between statements. Unlike libuci it does not
// stop at the first syntax error: it reports every one (as errors) and goes
// on with the next line, so a user sees all problems at once.
func ParseUCI(name string, data []byte) (*UCIFile, Diags) {
	p := &uciParser{file: &UCIFile{Name: name}, src: data, line: 1,
		byName: map[string]*UCISection{}, typeCount: map[string]int{}}
	if len(data) > MaxFileSize {
		p.errorf(1, "", "file is %d bytes, more than the %d a configuration may have", len(data), MaxFileSize)
		return p.file, p.diags
	}
	p.checkNUL()
	p.run()
	return p.file, p.diags
}

type uciParser struct {
	file      *UCIFile
	src       []byte
	pos       int
	line      int
	diags     Diags
	section   *UCISection // current section, nil before the first
	byName    map[string]*UCISection
	typeCount map[string]int
	nSection  int // libuci's per-package section counter
}

func (p *uciParser) errorf(line int, section, format string, args ...any) {
	p.diags = append(p.diags, Diag{File: p.file.Name, Line: line, Severity: Error,
		Section: section, Msg: fmt.Sprintf(format, args...) + " (the file cannot be loaded)"})
}

func (p *uciParser) warnf(line int, section, format string, args ...any) {
	p.diags = append(p.diags, Diag{File: p.file.Name, Line: line, Severity: Warning,
		Section: section, Msg: fmt.Sprintf(format, args...)})
}

func (p *uciParser) eof() bool  { return p.pos >= len(p.src) }
func (p *uciParser) peek() byte { return p.src[p.pos] }

// isSpace is C's isspace without the newline, which ends a statement.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

func (p *uciParser) skipSpace() {
	for !p.eof() && isSpace(p.peek()) {
		p.pos++
	}
}

// skipLine moves past the end of the current line (error recovery and
// comments).
func (p *uciParser) skipLine() {
	for !p.eof() && p.peek() != '\n' {
		p.pos++
	}
}

// parseError carries a syntax error out of the argument lexer.
type parseError struct {
	line int
	msg  string
}

func (p *uciParser) run() {
	for !p.eof() {
		p.skipSpace()
		if p.eof() {
			return
		}
		switch c := p.peek(); c {
		case '\n':
			p.pos++
			p.line++
			continue
		case '#':
			p.skipLine()
			continue
		}
		if perr := p.statement(); perr != nil {
			p.errorf(perr.line, "", "%s", perr.msg)
			p.skipLine()
		}
	}
}

// checkNUL reports every line holding a NUL byte: libuci reads lines as C
// strings, so such a file cannot mean what it says.
func (p *uciParser) checkNUL() {
	line, reported := 1, 0
	for _, c := range p.src {
		switch {
		case c == '\n':
			line++
		case c == 0 && reported != line:
			reported = line
			p.errorf(line, "", "NUL byte in the file")
		}
	}
}

// word reads the command keyword, which libuci splits off with strtok on
// blanks: no quoting applies to it.
func (p *uciParser) word() string {
	start := p.pos
	for !p.eof() && !isSpace(p.peek()) && p.peek() != '\n' {
		p.pos++
	}
	return string(p.src[start:p.pos])
}

func keyword(w, full string) bool { return w == full || w == full[:1] }

func (p *uciParser) statement() *parseError {
	line := p.line
	w := p.word()
	switch {
	case keyword(w, "config"):
		return p.config(line)
	case keyword(w, "option"):
		return p.option(line, false)
	case keyword(w, "list"):
		return p.option(line, true)
	case keyword(w, "package"):
		name, perr := p.args(line, "package", 1)
		if perr != nil {
			return perr
		}
		if !validName(name[0].Text, true) {
			return &parseError{line, fmt.Sprintf("invalid character in package name %q", name[0].Text)}
		}
		p.file.Package = name[0].Text
		return nil
	}
	return &parseError{line, fmt.Sprintf("invalid command %q (expected config, option, list or package)", w)}
}

// args reads up to max arguments and the end of the statement. The first
// argument is required; an empty one counts as missing, as in libuci.
func (p *uciParser) args(line int, what string, max int) ([]UCIValue, *parseError) {
	var out []UCIValue
	for {
		v, ok, perr := p.arg()
		if perr != nil {
			return nil, perr
		}
		if !ok {
			break
		}
		if len(out) == max {
			return nil, &parseError{v.Line, fmt.Sprintf("too many arguments to %s", what)}
		}
		out = append(out, v)
	}
	if len(out) == 0 || out[0].Text == "" {
		need := "an option name"
		switch what {
		case "config":
			need = "a section type"
		case "package":
			need = "a name"
		}
		return nil, &parseError{line, fmt.Sprintf("%s needs %s", what, need)}
	}
	return out, nil
}

// arg lexes one argument. ok is false at the end of the statement (end of
// line, end of file, a comment or a ';').
func (p *uciParser) arg() (v UCIValue, ok bool, perr *parseError) {
	p.skipSpace()
	if p.eof() {
		return v, false, nil
	}
	switch p.peek() {
	case '\n':
		return v, false, nil
	case '#':
		p.skipLine()
		return v, false, nil
	case ';':
		p.pos++
		return v, false, nil
	}
	v.Line = p.line
	var b []byte
	for !p.eof() {
		c := p.peek()
		switch {
		case c == '\'':
			open := p.line
			p.pos++
			for {
				if p.eof() {
					return v, false, &parseError{open, "unterminated ' quote (it runs to the end of the file)"}
				}
				c := p.peek()
				p.pos++
				if c == '\'' {
					break
				}
				if c == '\n' {
					p.line++
				}
				b = append(b, c)
			}
			p.checkSpan(open)
		case c == '"':
			open := p.line
			p.pos++
			for {
				if p.eof() {
					return v, false, &parseError{open, `unterminated " quote (it runs to the end of the file)`}
				}
				c := p.peek()
				if c == '"' {
					p.pos++
					break
				}
				if c == '\\' {
					if e, ok := p.backslash(); ok {
						b = append(b, e)
					}
					continue
				}
				if c == '\n' {
					p.line++
				}
				p.pos++
				b = append(b, c)
			}
			p.checkSpan(open)
		case c == '\\':
			if e, ok := p.backslash(); ok {
				b = append(b, e)
			}
		case c == '#':
			// a comment starts anywhere in an unquoted word
			p.skipLine()
			v.Text = string(b)
			return v, true, nil
		case c == ';', c == '\n', isSpace(c):
			v.Text = string(b)
			return v, true, nil
		default:
			b = append(b, c)
			p.pos++
		}
	}
	v.Text = string(b)
	return v, true, nil
}

// checkSpan warns about a quoted value that ran over several lines: UCI
// allows it, but in practice it means a closing quote is missing.
func (p *uciParser) checkSpan(open int) {
	if p.line > open {
		p.warnf(open, "", "quoted value runs over %d lines (is a closing quote missing here?)", p.line-open+1)
	}
}

// backslash handles '\' at p.pos: before a line end it joins the next line
// (and yields nothing); otherwise it yields the next character literally.
func (p *uciParser) backslash() (byte, bool) {
	p.pos++
	if p.eof() {
		return 0, false
	}
	c := p.peek()
	if c == '\n' {
		p.pos++
		p.line++
		return 0, false
	}
	if c == '\r' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n' {
		p.pos += 2
		p.line++
		return 0, false
	}
	p.pos++
	return c, true
}

// validName reports whether s is a valid UCI section or option name
// ([A-Za-z0-9_]+); packages may also contain '-'.
func validName(s string, pkg bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || pkg && c == '-' {
			continue
		}
		return false
	}
	return true
}

// validType reports whether s is a valid section type: printable ASCII
// without blanks.
func validType(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func (p *uciParser) config(line int) *parseError {
	a, perr := p.args(line, "config", 2)
	if perr != nil {
		return perr
	}
	typ := a[0].Text
	if !validType(typ) {
		return &parseError{line, fmt.Sprintf("invalid character in section type %q", typ)}
	}
	name := ""
	if len(a) == 2 {
		name = a[1].Text
	}
	if name != "" && !validName(name, false) {
		p.section = &UCISection{Type: typ, Name: name, Line: line} // options go nowhere
		return &parseError{line, fmt.Sprintf("invalid character in section name %q (only letters, digits and _ are allowed)", name)}
	}
	if name != "" {
		if s, dup := p.byName[name]; dup {
			if s.Type != typ {
				p.section = &UCISection{Type: typ, Name: name, Line: line} // options go nowhere
				return &parseError{line, fmt.Sprintf("section '%s' of type '%s' overwrites the '%s' section of the same name at line %d", name, typ, s.Type, s.Line)}
			}
			p.warnf(line, name, "section defined again (its options are merged into the section at line %d, as UCI does)", s.Line)
			p.section = s
			return nil
		}
	}
	p.nSection++
	s := &UCISection{Type: typ, Name: name, Line: line, Index: p.typeCount[typ]}
	p.typeCount[typ]++
	if name == "" {
		s.Anonymous = true
		p.nSection++
		s.Name = fmt.Sprintf("cfg%02x%04x", p.nSection, djbHash(typ)%(1<<16))
	} else {
		p.byName[name] = s
	}
	p.file.Sections = append(p.file.Sections, s)
	p.section = s
	return nil
}

// djbHash is libuci's hash for generated section names.
func djbHash(s string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = h<<5 + h + uint32(int32(int8(s[i])))
	}
	return h & 0x7FFFFFFF
}

func (p *uciParser) option(line int, list bool) *parseError {
	what := "option"
	if list {
		what = "list"
	}
	a, perr := p.args(line, what, 2)
	if perr != nil {
		return perr
	}
	name := a[0].Text
	if !validName(name, false) {
		return &parseError{line, fmt.Sprintf("invalid character in option name %q (only letters, digits and _ are allowed)", name)}
	}
	if p.section == nil {
		return &parseError{line, fmt.Sprintf("%s '%s' before the first config section", what, name)}
	}
	val := UCIValue{Line: line}
	if len(a) == 2 {
		val = a[1]
	}
	s := p.section
	idx := -1
	for i, o := range s.Options {
		if o.Name == name {
			idx = i
			break
		}
	}
	if list {
		if idx >= 0 {
			o := s.Options[idx]
			o.IsList = true // a string option becomes the list's first item
			o.Values = append(o.Values, val)
			return nil
		}
		s.Options = append(s.Options, &UCIOption{Name: name, IsList: true, Values: []UCIValue{val}, Line: line})
		return nil
	}
	if idx >= 0 {
		old := s.Options[idx]
		s.Options = append(s.Options[:idx], s.Options[idx+1:]...)
		if val.Text != "" {
			p.warnf(line, s.Ref(), "option '%s' set again (the value from line %d is replaced)", name, old.Line)
		}
	}
	if val.Text == "" {
		// uci_set with an empty value deletes the option
		return nil
	}
	s.Options = append(s.Options, &UCIOption{Name: name, Values: []UCIValue{val}, Line: line})
	return nil
}
