package ldap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Entry is one entry as read from the directory: its DN and the values of
// the attributes roster asked for, in the order the server sent them.
type Entry struct {
	DN    string
	Attrs []Attr
}

// Attr is one attribute of an entry with its raw values.
type Attr struct {
	Name   string
	Values [][]byte
}

// Values returns the values of the attribute name (case-insensitive), or
// nil.
func (e *Entry) Values(name string) [][]byte {
	for i := range e.Attrs {
		if strings.EqualFold(e.Attrs[i].Name, name) {
			return e.Attrs[i].Values
		}
	}
	return nil
}

// Kind says which search an entry came from.
type Kind int

// The two searches of a read.
const (
	KindUser Kind = iota
	KindGroup
)

func (k Kind) String() string {
	if k == KindGroup {
		return "groups"
	}
	return "users"
}

// secretAttributes are never written to a raw record, whatever a map asks
// for: password attributes of OpenLDAP, Active Directory and Samba.
var secretAttributes = []string{"userPassword", "unicodePwd", "authPassword", "supplementalCredentials",
	"dBCSPwd", "ntPwdHistory", "lmPwdHistory", "sambaNTPassword", "sambaLMPassword", "msDS-ManagedPassword"}

// IsSecret reports an attribute whose values roster never reads or keeps.
func IsSecret(name string) bool {
	base, _, _ := strings.Cut(name, ";")
	for _, s := range secretAttributes {
		if strings.EqualFold(base, s) {
			return true
		}
	}
	return false
}

// ldifSection marks where the entries of one search begin in a raw record,
// so that a retry reads users as users and groups as groups. It is an
// LDIF comment: other LDIF tools skip it.
const ldifSection = "# roster-search: "

// LDIFWriter writes entries as LDIF (RFC 2849), the raw record of an ldap
// source's task.
type LDIFWriter struct {
	w    *bufio.Writer
	kind Kind
	n    int
}

// NewLDIFWriter starts an LDIF document on w.
func NewLDIFWriter(w io.Writer) *LDIFWriter {
	lw := &LDIFWriter{w: bufio.NewWriterSize(w, 64<<10), kind: -1}
	lw.w.WriteString("version: 1\n")
	return lw
}

// Write adds one entry of a search. Secret attributes are left out.
func (lw *LDIFWriter) Write(kind Kind, e *Entry) error {
	if kind != lw.kind {
		lw.kind = kind
		fmt.Fprintf(lw.w, "\n%s%s\n", ldifSection, kind)
	}
	lw.w.WriteByte('\n')
	lw.line("dn", []byte(e.DN))
	for _, a := range e.Attrs {
		if IsSecret(a.Name) {
			continue
		}
		for _, v := range a.Values {
			lw.line(a.Name, v)
		}
	}
	lw.n++
	return nil
}

// changedMark opens the raw record of a changed-only read (after the
// version line): the users in it are those changed since the watermark,
// not every user.
const changedMark = "# roster-read: changed since "

// MarkChanged says, before any entry, that the record holds the users
// changed since watermark only.
func (lw *LDIFWriter) MarkChanged(watermark string) {
	lw.w.WriteString(changedMark + watermark + "\n")
}

// Flush writes what is buffered.
func (lw *LDIFWriter) Flush() error { return lw.w.Flush() }

// line writes `name: value`, or `name:: base64` for a value that is not
// a SAFE-STRING, folded at 76 columns.
func (lw *LDIFWriter) line(name string, v []byte) {
	var s string
	if safeString(v) {
		s = name + ": " + string(v)
	} else {
		s = name + ":: " + base64.StdEncoding.EncodeToString(v)
	}
	const width = 76
	for len(s) > width {
		cut := width
		for cut > 1 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		lw.w.WriteString(s[:cut])
		lw.w.WriteString("\n ")
		s = s[cut:]
	}
	lw.w.WriteString(s)
	lw.w.WriteByte('\n')
}

// safeString reports RFC 2849's SAFE-STRING, narrowed to ASCII so that
// every reader takes it as it is, and without trailing space.
func safeString(v []byte) bool {
	if len(v) == 0 {
		return true
	}
	switch v[0] {
	case ' ', ':', '<':
		return false
	}
	if v[len(v)-1] == ' ' {
		return false
	}
	for _, c := range v {
		if c == 0 || c == '\n' || c == '\r' || c >= 0x80 {
			return false
		}
	}
	return true
}

// MaxLDIFLine bounds one unfolded LDIF line a raw record may hold.
const MaxLDIFLine = 16 << 20

// ReadLDIF reads a raw record written by LDIFWriter and hands each entry to
// each, with the search it came from. Errors name the line.
func ReadLDIF(r io.Reader, each func(Kind, *Entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLDIFLine)
	kind := KindUser
	var e *Entry
	var logical []byte
	logicalLine, lineNo := 0, 0
	flush := func() error {
		if logical == nil {
			return nil
		}
		line := logical
		logical = nil
		return parseLDIFLine(line, logicalLine, &e)
	}
	for sc.Scan() {
		lineNo++
		b := sc.Bytes()
		b = bytes.TrimSuffix(b, []byte{'\r'})
		if len(b) > 0 && b[0] == ' ' {
			if logical == nil {
				return fmt.Errorf("ldif line %d: a continuation line follows no line", lineNo)
			}
			if len(logical)+len(b) > MaxLDIFLine {
				return fmt.Errorf("ldif line %d: the line is longer than %d bytes", lineNo, MaxLDIFLine)
			}
			logical = append(logical, b[1:]...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		switch {
		case len(b) == 0:
			if e != nil {
				if err := each(kind, e); err != nil {
					return err
				}
				e = nil
			}
		case b[0] == '#':
			if s, ok := bytes.CutPrefix(b, []byte(ldifSection)); ok {
				switch string(s) {
				case "users":
					kind = KindUser
				case "groups":
					kind = KindGroup
				default:
					return fmt.Errorf("ldif line %d: unknown search %q", lineNo, s)
				}
			}
		default:
			logical, logicalLine = append([]byte{}, b...), lineNo
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ldif line %d: %w", lineNo+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if e != nil {
		return each(kind, e)
	}
	return nil
}

func parseLDIFLine(line []byte, n int, e **Entry) error {
	name, rest, ok := bytes.Cut(line, []byte{':'})
	if !ok || len(name) == 0 {
		return fmt.Errorf("ldif line %d: expected name: value", n)
	}
	var v []byte
	switch {
	case len(rest) > 0 && rest[0] == ':':
		dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(rest[1:])))
		if err != nil {
			return fmt.Errorf("ldif line %d: the base64 value of %s is not readable: %v", n, name, err)
		}
		v = dec
	case len(rest) > 0 && rest[0] == '<':
		return fmt.Errorf("ldif line %d: values from URLs are not read", n)
	default:
		v = bytes.TrimLeft(rest, " ")
	}
	if strings.EqualFold(string(name), "version") && *e == nil {
		return nil
	}
	if strings.EqualFold(string(name), "dn") {
		if *e != nil {
			return fmt.Errorf("ldif line %d: a new dn without a blank line before it", n)
		}
		if !utf8.Valid(v) {
			return fmt.Errorf("ldif line %d: the dn is not valid UTF-8", n)
		}
		*e = &Entry{DN: string(v)}
		return nil
	}
	if *e == nil {
		return fmt.Errorf("ldif line %d: attribute %s before any dn", n, name)
	}
	en := *e
	a := string(name)
	if len(en.Attrs) > 0 && strings.EqualFold(en.Attrs[len(en.Attrs)-1].Name, a) {
		last := &en.Attrs[len(en.Attrs)-1]
		last.Values = append(last.Values, v)
		return nil
	}
	for i := range en.Attrs {
		if strings.EqualFold(en.Attrs[i].Name, a) {
			en.Attrs[i].Values = append(en.Attrs[i].Values, v)
			return nil
		}
	}
	en.Attrs = append(en.Attrs, Attr{Name: a, Values: [][]byte{v}})
	return nil
}
