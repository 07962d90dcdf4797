// Package csv reads and writes roster's header-less CSV person format
// (SPEC §3.1) in one streaming pass, reporting every problem with its line,
// column number, column name and reason.
//
// Decisions the spec leaves open, written down for operators:
//
//   - A line of nothing but spaces and tabs counts as blank and is skipped.
//   - Spaces and tabs around a quoted value are allowed (` "Müller, Jr." `);
//     they are trimmed like any other surrounding white space.
//   - Line breaks inside quotes are parsed, so the rows after them keep their
//     line numbers, but no column of a person holds several lines: a value
//     that still contains a line break after trimming is an error, like any
//     other control character. A byte order mark (U+FEFF) inside a value is
//     an error too; it betrays files that were glued together.
//   - A quote that opens a value and is never properly closed would swallow
//     the rest of the file. The reader reports it on the line where it opens
//     and reads the following lines again as rows of their own, so one stray
//     quote costs one error, not the rest of the file.
//   - A message quotes a value only when it is certainly its column's own
//     cell, since a stray quote or a lost comma moves other cells,
//     passwords among them, into a value: never the password column, never
//     a quoted value that runs on into later lines (its lines are named
//     instead) or holds a comma, and never the last value of a row with
//     fewer than seven fields. Such values are described by their length.
//   - A row may take at most MaxRowBytes; a longer one is reported and
//     skipped, which bounds memory whatever the input.
//   - Login names are duplicates when strings.EqualFold says so; ids are
//     compared exactly ("0042" and "42" are two people).
//   - Records holds only rows without errors. A file with any error is
//     rejected as a whole (Result.Err), so the partial list is informational.
//   - A file that starts with a UTF-16 byte order mark gets one error that
//     says so, rather than one per cell.
package csv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/rosterd/roster/sources"
)

// Column numbers as errors name them.
const (
	colID = iota + 1
	colFirstName
	colLastName
	colLogin
	colEmail
	colGroups
	colPassword

	minFields = colLogin
	maxFields = colPassword
)

var columnNames = [maxFields + 1]string{"", "id", "first_name", "last_name", "login", "email", "groups", "password"}

// ColumnName returns the name errors use for a 1-based column, or "" for a
// column beyond the seventh.
func ColumnName(col int) string {
	if col < 1 || col > maxFields {
		return ""
	}
	return columnNames[col]
}

// columnName is ColumnName, with the attribute paths of extra columns.
func (p *parser) columnName(col int) string {
	if i := col - maxFields - 1; i >= 0 && i < len(p.opts.Extra) {
		return p.opts.Extra[i]
	}
	return ColumnName(col)
}

const (
	// DefaultPasswordMinLength applies when Options.PasswordMinLength is 0.
	DefaultPasswordMinLength = 8
	// DefaultMaxErrors applies when Options.MaxErrors is 0.
	DefaultMaxErrors = 1000
	// MaxRowBytes bounds one row, so that a file without line breaks, or
	// with a quote that never closes, cannot make the reader hold it whole.
	MaxRowBytes = 1 << 20

	progressEvery  = 10000
	ctxCheckEvery  = 4096
	readBufferSize = 64 << 10
)

var (
	utf8BOM    = []byte{0xEF, 0xBB, 0xBF}
	utf16LEBOM = []byte{0xFF, 0xFE}
	utf16BEBOM = []byte{0xFE, 0xFF}
)

// Options tune Read. The zero value reads clear-text initial passwords with
// the spec's defaults.
type Options struct {
	// PasswordMinLength is the least number of characters (runes) of an
	// initial password; 0 or less means DefaultPasswordMinLength.
	PasswordMinLength int
	// HashedPasswords says that column 7 holds password hashes that roster
	// wrote into a raw record (see Write), not clear passwords. They go to
	// Record.PasswordHash, must be argon2id ("$argon2id$...") or bcrypt
	// ("$2a$", "$2b$", "$2y$"), and PasswordMinLength does not apply.
	HashedPasswords bool
	// MaxErrors caps Result.Errors; 0 or less means DefaultMaxErrors. Past
	// the cap one last error says how many more were found.
	MaxErrors int
	// Progress, when set, is called with the number of physical lines read
	// every 10,000 records and once at the end, so a terminal can show a
	// long import moving.
	Progress func(lines int)
	// Each, when set, receives every valid record in file order instead of
	// Result.Records, so that a large input is never held whole; an error
	// it returns stops Read and is returned. Records of an input with
	// errors reach Each too: a caller must not act on them before Read
	// reports the input valid.
	Each func(sources.Record) error
	// Extra are the attribute paths of the columns after the seventh
	// (csv extra_columns): a row may carry up to 7+len(Extra) fields, and
	// column 8+i fills Extra[i] (sources.Record.Attributes). Errors name
	// such a column by its path.
	Extra []string
	// Check checks the values of the Extra columns beyond
	// sources.CheckAttribute (custom attributes' types); nil: nothing more.
	Check sources.AttributeCheck
	// Checked says the input was validated whole before (a raw record
	// roster has just written): ids and logins are not checked for
	// duplicates again, which spares a map of every id and login.
	Checked bool
	// Redact, when set, is called for every row with errors, in file
	// order and in turn with Each's records, with the bytes of the row
	// that may hold an initial password: its password cell, or, where a
	// stray quote or a lost comma moved the cells, everything from the
	// sixth comma (or the last value) to the row's end; a line too long to
	// read whole, and all of a UTF-16 file, entirely. A raw record of an
	// invalid input blanks them, since a password is never kept in clear
	// (SPEC §5). Valid rows carry their cell in Record.PasswordAt.
	Redact func(sources.Span)
}

// Result is what Read found in a whole input.
type Result struct {
	// Records are the rows without errors, in file order.
	Records []sources.Record
	// Warnings are problems that were repaired, such as a removed byte order
	// mark; they do not make the input invalid.
	Warnings []string
	// Errors are every problem found, in line order, capped by MaxErrors.
	Errors []sources.FieldError
	// IDs, when Read was given Each, maps every record's id to its line:
	// the duplicate check's own map, so that a caller holding no records
	// need not build a second one.
	IDs map[string]int
	// SHA256 is the hex digest of every byte read: the content fingerprint
	// that lets a sync of an unchanged file be skipped.
	SHA256 string
	// Lines is the number of physical lines read, blank ones included.
	Lines int
}

// Err returns nil when the input is valid and a *sources.ValidationError
// holding every error otherwise.
func (r *Result) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return &sources.ValidationError{Errors: r.Errors}
}

// Read reads and validates a whole CSV input in one pass, holding at most one
// row besides the records it returns. Its error is only for failed reads and
// cancellation; validation problems are in Result.Errors. Cancellation is
// noticed between lines, so a reader that blocks forever must be closed by
// the caller.
func Read(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	if opts.PasswordMinLength <= 0 {
		opts.PasswordMinLength = DefaultPasswordMinLength
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	h := sha256.New()
	p := &parser{
		ctx:    ctx,
		opts:   opts,
		br:     bufio.NewReaderSize(io.TeeReader(r, h), readBufferSize),
		ids:    make(map[string]int),
		logins: make(map[string]int),
		res:    &Result{},
	}
	if err := p.run(); err != nil {
		return nil, err
	}
	// The duplicate maps are garbage now; drop them before the records are
	// assembled, the moment memory peaks.
	if opts.Each != nil && !opts.Checked {
		p.res.IDs = p.ids
	}
	p.ids, p.logins = nil, nil
	p.res.Records = p.records.all()
	if p.suppressed > 0 {
		verb := "are"
		if p.suppressed == 1 {
			verb = "is"
		}
		p.res.Errors = append(p.res.Errors, sources.NewFieldError(p.firstSuppressed, 0, "",
			"%s %s not listed; only the first %d are", sources.Plural(p.suppressed, "more error"), verb, opts.MaxErrors))
	}
	p.res.SHA256 = hex.EncodeToString(h.Sum(nil))
	p.res.Lines = p.lines
	if opts.Progress != nil {
		opts.Progress(p.lines)
	}
	return p.res, nil
}

// recordChunks collects records in chunks that double in size up to a
// bound. One growing slice would copy every record at each growth and hold
// the old and the new array at once; with a million records of some 150
// bytes each that costs more than everything else the reader keeps.
type recordChunks struct {
	chunks [][]sources.Record
	n      int
}

const (
	firstChunk = 256
	maxChunk   = 1 << 16
)

func (c *recordChunks) add(r sources.Record) {
	last := len(c.chunks) - 1
	if last < 0 || len(c.chunks[last]) == cap(c.chunks[last]) {
		size := firstChunk
		if last >= 0 {
			size = min(2*cap(c.chunks[last]), maxChunk)
		}
		c.chunks = append(c.chunks, make([]sources.Record, 0, size))
		last++
	}
	c.chunks[last] = append(c.chunks[last], r)
	c.n++
}

// all returns the records as one slice of exactly their number, letting go
// of each chunk once it is copied.
func (c *recordChunks) all() []sources.Record {
	switch len(c.chunks) {
	case 0:
		return nil
	case 1:
		return c.chunks[0]
	}
	out := make([]sources.Record, 0, c.n)
	for i, ch := range c.chunks {
		out = append(out, ch...)
		c.chunks[i] = nil
	}
	return out
}

// physLine is one physical line without its terminator.
type physLine struct {
	n       int
	data    []byte
	tooLong bool
	// off is where data starts in the input, end where it ends (the
	// terminator excluded; data is empty for a line too long).
	off, end int64
}

// fieldPos locates one parsed field in parser.buf.
type fieldPos struct {
	line       int // where the field starts
	last       int // where it ends: after line when a quoted value spans lines
	start, end int
	// raw is where the value stands in the input: without the blanks
	// around it, with its quotes.
	raw sources.Span
}

type parser struct {
	ctx  context.Context
	opts Options
	br   *bufio.Reader

	lines   int        // physical lines read from br
	read    int64      // bytes read from br
	bomLen  int64      // length of the byte order mark that starts the input
	scratch []byte     // assembles a line longer than br's buffer
	pending []physLine // lines to read again after a quote that never closed
	utf16   bool       // the input is UTF-16: count its lines, parse nothing

	// The row being parsed: field contents with quotes removed, where each
	// field lies, the line the row ends on, and owned copies of its
	// continuation lines, kept in case they must be read again.
	buf     []byte
	fields  []fieldPos
	endLine int
	kept    []physLine

	// First line of every id and every case-folded login seen. The keys
	// share the records' memory, so they cost little beyond the map itself.
	ids    map[string]int
	logins map[string]int

	records         recordChunks
	res             *Result
	suppressed      int
	firstSuppressed int
}

func (p *parser) run() error {
	for n := 1; ; n++ {
		ok, err := p.readRecord()
		if err != nil {
			return err
		}
		if !ok {
			if p.utf16 {
				p.redact(sources.Span{Start: p.bomLen, End: p.read})
			}
			return nil
		}
		if err := p.validate(); err != nil {
			return err
		}
		if p.opts.Progress != nil && n%progressEvery == 0 {
			p.opts.Progress(p.lines)
		}
	}
}

func (p *parser) report(e sources.FieldError) {
	if len(p.res.Errors) < p.opts.MaxErrors {
		p.res.Errors = append(p.res.Errors, e)
		return
	}
	if p.suppressed == 0 {
		p.firstSuppressed = e.Line
	}
	p.suppressed++
}

// readRecord parses the next row into p.buf and p.fields, reporting and
// skipping malformed rows. It returns false at the end of the input.
func (p *parser) readRecord() (bool, error) {
	for {
		l, ok, err := p.nextLine()
		if err != nil || !ok {
			return false, err
		}
		switch {
		case p.utf16:
			continue
		case l.tooLong:
			p.report(sources.NewFieldError(l.n, 0, "", "the line is longer than %d bytes; a row holds at most that", MaxRowBytes))
			p.redact(sources.Span{Start: l.off, End: l.end})
			continue
		case isBlank(l.data):
			continue
		}
		ok, err = p.parseRecord(l)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
}

func (p *parser) nextLine() (physLine, bool, error) {
	if len(p.pending) > 0 {
		l := p.pending[0]
		p.pending[0] = physLine{}
		p.pending = p.pending[1:]
		return l, true, nil
	}
	return p.readLine()
}

// readLine reads one physical line from the input. Its data is valid only
// until the next call. A line longer than MaxRowBytes is consumed but not
// kept, and comes back marked tooLong.
func (p *parser) readLine() (physLine, bool, error) {
	if p.lines%ctxCheckEvery == 0 {
		if err := p.ctx.Err(); err != nil {
			return physLine{}, false, fmt.Errorf("csv: reading stopped after line %d: %w", p.lines, err)
		}
	}
	p.scratch = p.scratch[:0]
	var data, chunk []byte
	long, read := false, false
	start := p.read
	for {
		var err error
		chunk, err = p.br.ReadSlice('\n')
		p.read += int64(len(chunk))
		read = read || len(chunk) > 0
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return physLine{}, false, fmt.Errorf("csv: reading line %d: %w", p.lines+1, err)
		}
		switch {
		case long:
		case len(p.scratch)+len(chunk) > MaxRowBytes+2: // +2: the line's own CR LF
			long = true
			p.scratch = p.scratch[:0]
		case len(p.scratch) == 0 && !errors.Is(err, bufio.ErrBufferFull):
			data = chunk // the common case: the whole line is in br's buffer
		default:
			p.scratch = append(p.scratch, chunk...)
			data = p.scratch
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
	}
	if !read {
		return physLine{}, false, nil
	}
	p.lines++
	end := p.read
	if bytes.HasSuffix(chunk, []byte{'\n'}) {
		end--
		if bytes.HasSuffix(chunk, []byte("\r\n")) {
			end--
		}
	}
	data = bytes.TrimSuffix(data, []byte{'\n'})
	data = bytes.TrimSuffix(data, []byte{'\r'})
	if p.lines == 1 {
		switch {
		case bytes.HasPrefix(data, utf8BOM):
			data = data[len(utf8BOM):]
			start += int64(len(utf8BOM))
			p.res.Warnings = append(p.res.Warnings, "line 1: a UTF-8 byte order mark was removed")
		case bytes.HasPrefix(data, utf16LEBOM), bytes.HasPrefix(data, utf16BEBOM):
			p.utf16 = true
			p.bomLen = int64(len(utf16LEBOM))
			p.report(sources.NewFieldError(1, 0, "", "the file is UTF-16 encoded (it starts with a UTF-16 byte order mark); save it as UTF-8"))
		}
	}
	return physLine{n: p.lines, data: data, tooLong: long, off: start, end: end}, true, nil
}

// redact hands a span that may hold a password to Options.Redact.
func (p *parser) redact(s sources.Span) {
	if p.opts.Redact != nil && !s.Empty() {
		p.opts.Redact(s)
	}
}

// rowCut is where the part of a row that may hold a password starts: after
// its sixth comma (the password is the seventh value), or after its last
// comma when it has fewer (a value that lost the commas before it), or
// the row's start when it has none.
func rowCut(l physLine) int64 {
	commas, last := 0, -1
	for i, c := range l.data {
		if c == ',' {
			commas++
			last = i
			if commas == colPassword-1 {
				break
			}
		}
	}
	return l.off + int64(last+1)
}

// keep stores an owned copy of a continuation line, to be read again if the
// quoted value it continues turns out never to close.
func (p *parser) keep(l physLine) []byte {
	l.data = bytes.Clone(l.data)
	p.kept = append(p.kept, l)
	return l.data
}

// parseRecord splits the row that starts with first into fields, reading
// more lines while a quoted value spans them. It returns false when the row
// is malformed; the problem is then reported and the row dropped.
func (p *parser) parseRecord(first physLine) (bool, error) {
	p.buf = p.buf[:0]
	p.fields = p.fields[:0]
	clear(p.kept)
	p.kept = p.kept[:0]

	line, data, i := first.n, first.data, 0
	cut, off, lineEnd := rowCut(first), first.off, first.end
	for {
		col := len(p.fields) + 1
		f := fieldPos{line: line, start: len(p.buf)}
		j := skipBlank(data, i)
		if j == len(data) || data[j] != '"' {
			end := len(data)
			if k := bytes.IndexByte(data[i:], ','); k >= 0 {
				end = i + k
			}
			if bytes.IndexByte(data[i:end], '"') >= 0 {
				p.report(sources.NewFieldError(line, col, p.columnName(col),
					`a quote (") stands inside an unquoted value; quote the whole value and double the quote inside ("")`))
				p.redact(sources.Span{Start: cut, End: lineEnd})
				return false, nil
			}
			p.buf = append(p.buf, data[i:end]...)
			a, b := j, end
			for b > a && (data[b-1] == ' ' || data[b-1] == '\t') {
				b--
			}
			f.raw = sources.Span{Start: off + int64(a), End: off + int64(b)}
			f.end, f.last = len(p.buf), line
			p.fields = append(p.fields, f)
			if end == len(data) {
				p.endLine = line
				return true, nil
			}
			i = end + 1
			continue
		}

		f.raw.Start = off + int64(j)
		i = j + 1
		for {
			k := bytes.IndexByte(data[i:], '"')
			if k < 0 {
				p.buf = append(p.buf, data[i:]...)
				p.buf = append(p.buf, '\n')
				next, ok, err := p.nextLine()
				if err != nil {
					return false, err
				}
				if !ok || next.tooLong || len(p.buf)+len(next.data) > MaxRowBytes {
					if ok {
						p.keep(next)
					}
					p.unterminated(f.line, col)
					// The lines after the first are read again as rows.
					p.redact(sources.Span{Start: cut, End: first.end})
					return false, nil
				}
				line, data, i = next.n, p.keep(next), 0
				off, lineEnd = next.off, next.end
				continue
			}
			p.buf = append(p.buf, data[i:i+k]...)
			i += k + 1
			if i < len(data) && data[i] == '"' {
				p.buf = append(p.buf, '"')
				i++
				continue
			}
			break
		}
		f.end, f.last = len(p.buf), line
		f.raw.End = off + int64(i)
		i = skipBlank(data, i)
		switch {
		case i == len(data):
			p.fields = append(p.fields, f)
			p.endLine = line
			return true, nil
		case data[i] == ',':
			p.fields = append(p.fields, f)
			i++
		case line != f.line:
			// A value that spans lines and then closes badly is far more
			// likely a stray opening quote than a real multi-line value.
			p.unterminated(f.line, col)
			p.redact(sources.Span{Start: cut, End: first.end})
			return false, nil
		default:
			p.report(sources.NewFieldError(line, col, p.columnName(col),
				"text follows the closing quote; a quoted value must end at a comma or the end of the line"))
			p.redact(sources.Span{Start: cut, End: lineEnd})
			return false, nil
		}
	}
}

// unterminated reports a quoted value opened on line that never closes, and
// queues the lines after it to be read again as rows of their own.
func (p *parser) unterminated(line, col int) {
	p.report(sources.NewFieldError(line, col, p.columnName(col),
		`a quoted value starts here but its closing quote (") is missing`))
	var again []physLine
	for _, l := range p.kept {
		if l.n > line {
			again = append(again, l)
		}
	}
	clear(p.kept)
	p.kept = p.kept[:0]
	p.pending = append(again, p.pending...)
}

func skipBlank(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	return i
}

func isBlank(data []byte) bool {
	return skipBlank(data, 0) == len(data)
}

// validate checks the parsed row column by column, so that its errors come
// in column order, and keeps it as a record when it has none.
func (p *parser) validate() error {
	n := len(p.fields)
	if most := maxFields + len(p.opts.Extra); n > most {
		// Usually an unquoted comma has shifted the row; every other error
		// in it would be noise.
		f := p.fields[most]
		p.report(sources.NewFieldError(f.line, most+1, "", "too many fields (%d); a row has at most %d", n, most))
		p.redact(sources.Span{Start: p.fields[colPassword-1].raw.Start, End: p.fields[n-1].raw.End})
		return nil
	}

	rowOK := true
	fail := func(e sources.FieldError) {
		p.report(e)
		rowOK = false
	}
	// One string for the whole row: every field is a substring of it.
	row := string(p.buf)
	rec := sources.Record{Line: p.fields[0].line}
	for col := 1; col <= maxFields; col++ {
		name := p.columnName(col)
		if col > n {
			if col <= minFields {
				fail(sources.NewFieldError(p.endLine, col, name,
					"the field is missing; a row has at least %d fields, this one has %d", minFields, n))
			}
			continue
		}
		f := p.fields[col-1]
		v, ok := p.cell(row, f, col)
		if !ok {
			rowOK = false
			continue
		}
		if v == "" && col <= minFields {
			fail(sources.NewFieldError(f.line, col, name, "a value is required"))
			continue
		}
		switch col {
		case colID:
			p.unique(p.ids, v, row, f, col, fail)
			rec.ExternalID = v
		case colFirstName:
			rec.GivenName = v
		case colLastName:
			rec.FamilyName = v
		case colLogin:
			v = sources.NormalizeLogin(v)
			if why := sources.LoginProblem(v); why != "" {
				fail(sources.NewFieldError(f.line, col, name, "%s %s", p.subject(row, f, col, v), why))
			}
			p.unique(p.logins, sources.FoldKey(v), row, f, col, fail)
			rec.UserName = v
		case colEmail:
			if v != "" && !sources.ValidEmail(v) {
				fail(sources.NewFieldError(f.line, col, name, "%s is not a valid e-mail address", p.subject(row, f, col, v)))
			}
			rec.Email = v
		case colGroups:
			rec.Groups = splitGroups(v)
			for _, g := range rec.Groups {
				if !p.allowedChars(row, f, col, g) {
					rowOK = false
					break
				}
			}
		case colPassword:
			switch {
			case v == "":
			case p.opts.HashedPasswords:
				if !validHash(v) {
					fail(sources.NewFieldError(f.line, col, name,
						"the value is not a password hash written by roster ($argon2id$... or bcrypt $2a$, $2b$, $2y$)"))
				}
				rec.PasswordHash = v
			default:
				if utf8.RuneCountInString(v) < p.opts.PasswordMinLength {
					fail(sources.NewFieldError(f.line, col, name,
						"the password is shorter than %d characters", p.opts.PasswordMinLength))
				}
				rec.Password, rec.PasswordAt = v, f.raw
			}
		}
	}
	if len(p.opts.Extra) > 0 {
		rec.Attributes = make([]sources.Attribute, len(p.opts.Extra))
		for i, path := range p.opts.Extra {
			rec.Attributes[i].Path = path
			col := maxFields + 1 + i
			if col > n {
				continue
			}
			f := p.fields[col-1]
			v, ok := p.cell(row, f, col)
			if !ok {
				rowOK = false
				continue
			}
			if err := p.opts.Check.Check(path, v); err != "" {
				fail(sources.NewFieldError(f.line, col, path, "%s %s", p.subject(row, f, col, v), err))
				continue
			}
			rec.Attributes[i].Value = v
		}
	}
	switch {
	case !rowOK:
		// The password cell, or the last value of a short row: it may
		// be a password that lost the commas before it.
		p.redact(p.fields[min(n, colPassword)-1].raw)
	case p.opts.Each != nil:
		return p.opts.Each(rec)
	default:
		p.records.add(rec)
	}
	return nil
}

// unique reports the field's value when an earlier row used its key, and
// remembers the key's first line otherwise.
func (p *parser) unique(seen map[string]int, key, row string, f fieldPos, col int, fail func(sources.FieldError)) {
	if p.opts.Checked {
		return
	}
	if first, dup := seen[key]; dup {
		v := strings.TrimSpace(row[f.start:f.end])
		fail(sources.NewFieldError(f.line, col, p.columnName(col), "%s is already used on line %d", p.subject(row, f, col, v), first))
		return
	}
	seen[p.own(key)] = f.line
}

// own returns a key for the duplicate maps. Records kept share their
// row's memory with the keys; records handed to Each are gone, and a key
// that shared their row would keep the whole row alive.
func (p *parser) own(key string) string {
	if p.opts.Each != nil {
		return strings.Clone(key)
	}
	return key
}

// cell returns the trimmed text of a field after checking its encoding and
// characters, reporting what is wrong. It never quotes a password, nor any
// value that may hold one (see hiddenBecause).
func (p *parser) cell(row string, f fieldPos, col int) (string, bool) {
	name := p.columnName(col)
	raw := row[f.start:f.end]
	if !utf8.ValidString(raw) {
		if p.hiddenBecause(row, f, col) != "" {
			p.report(sources.NewFieldError(f.line, col, name, "the value is not valid UTF-8; save the file as UTF-8"))
		} else {
			p.report(sources.NewFieldError(f.line, col, name,
				"the value is not valid UTF-8 (byte 0x%02X); save the file as UTF-8", raw[firstInvalidUTF8(raw)]))
		}
		return "", false
	}
	v := strings.TrimSpace(raw)
	// Each group is trimmed on its own, so a line break between two groups
	// is white space around a name, not inside it; splitGroups' caller
	// checks the names.
	if col == colGroups || p.allowedChars(row, f, col, v) {
		return v, true
	}
	return "", false
}

// hiddenBecause says why a message must not quote the value of field f in
// column col, or returns "" when it may. A message quotes only what is
// certainly the column's own cell, because an unbalanced quote or a
// missing comma moves other cells, passwords among them, into a value:
//
//   - the password column is never quoted;
//   - a value holding a line break ran on from its row into the next ones
//     (a quote opened and closed on another line), and one holding a comma
//     was quoted around several cells: either may hold a password cell;
//   - the last value of a row with fewer than seven fields may be a
//     password that lost the commas before it ("1,Ann,Lee,alee,Secret").
func (p *parser) hiddenBecause(row string, f fieldPos, col int) string {
	raw := row[f.start:f.end]
	switch {
	case col == colPassword:
		return "it is a password"
	case f.last > f.line:
		return fmt.Sprintf("it runs on to line %d and may hold other rows", f.last)
	case strings.IndexByte(raw, '\n') >= 0:
		return "it holds a line break and may hold other rows"
	case strings.IndexByte(raw, ',') >= 0:
		return "a quoted value with commas may hold other cells"
	case len(p.fields) < maxFields && col == len(p.fields):
		return fmt.Sprintf("the last value of a row of %d fields may be a password", len(p.fields))
	}
	return ""
}

// subject is how a message names the value v of field f: quoted, or, when
// that is not safe, described without a character of it.
func (p *parser) subject(row string, f fieldPos, col int, v string) string {
	if why := p.hiddenBecause(row, f, col); why != "" {
		return fmt.Sprintf("the value (%d characters, not shown: %s)", utf8.RuneCountInString(v), why)
	}
	return sources.QuoteValue(v)
}

// allowedChars reports a forbidden character in v, the value of field f
// or, in the groups column, one group of it.
func (p *parser) allowedChars(row string, f fieldPos, col int, v string) bool {
	r, bad := sources.ForbiddenRune(v)
	if !bad {
		return true
	}
	var what string
	switch r {
	case '\n', '\r':
		what = "a line break"
	case 0xFEFF:
		what = "a byte order mark (U+FEFF)"
	default:
		what = fmt.Sprintf("the control character U+%04X", r)
	}
	name := p.columnName(col)
	switch {
	case col == colPassword:
		p.report(sources.NewFieldError(f.line, col, name, "the password contains a control character or line break"))
	case f.last > f.line:
		// Far more often a quote that was never closed than a value
		// meant to hold several lines; it swallowed the rows after it.
		p.report(sources.NewFieldError(f.line, col, name,
			`the quoted value runs on to line %d, but a value holds no line break: is its closing quote (") missing? (not shown: it may hold other rows)`, f.last))
	default:
		p.report(sources.NewFieldError(f.line, col, name, "%s contains %s", p.subject(row, f, col, v), what))
	}
	return false
}

func firstInvalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return 0
}
