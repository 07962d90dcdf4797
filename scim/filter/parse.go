package filter

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on untrusted input. The length keeps a single request's parsing
// cost small; the depth keeps recursion, in this parser and in whatever
// walks the tree later, far from the stack limit.
const (
	MaxLength = 8 << 10 // bytes
	MaxDepth  = 50      // nested parentheses and brackets
)

// Error is a syntax error in a filter or PATCH path. The SCIM layer answers
// it with 400 and scimType invalidFilter or invalidPath.
type Error struct {
	// Pos is the 0-based byte offset in Input where the problem was found.
	Pos int
	// Msg says what was expected and what was found instead.
	Msg string
	// Input is the text that failed to parse.
	Input string

	what string // "filter" or "path"
}

func (e *Error) Error() string {
	what := e.what
	if what == "" {
		what = "filter"
	}
	return fmt.Sprintf("invalid %s at position %d: %s", what, e.Pos, e.Msg)
}

// Parse parses a whole filter (RFC 7644 §3.4.2.2, Figure 1).
func Parse(s string) (Expr, error) {
	p := &parser{in: s, what: "filter"}
	if err := p.checkInput(); err != nil {
		return nil, err
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return e, nil
}

// ParsePath parses the "path" of a PATCH operation (RFC 7644 §3.5.2,
// Figure 7): an attribute path such as name.givenName or
// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager, or a
// value path such as members[value eq "2819c223"], optionally followed by a
// sub-attribute as in emails[type eq "work"].value.
//
// A bare schema URN such as
// urn:ietf:params:scim:schemas:extension:enterprise:2.0:User parses with its
// last segment as Attr.Name ("User"), since only the schema can tell an
// extension from an attribute; callers that accept whole-extension paths
// recognise it by its Attr.String().
func ParsePath(s string) (*Path, error) {
	p := &parser{in: s, what: "path"}
	if err := p.checkInput(); err != nil {
		return nil, err
	}
	p.skipSpaces()
	start := p.pos
	tok := p.word()
	if tok == "" {
		return nil, p.errf(start, "expected an attribute path, got %s", p.describe(start))
	}
	attr, err := p.attrPath(tok, start)
	if err != nil {
		return nil, err
	}
	path := &Path{Attr: attr}
	if p.peek() == '[' {
		if path.Filter, err = p.valueFilter(attr, tok); err != nil {
			return nil, err
		}
		if p.peek() == '.' {
			p.pos++
			subPos := p.pos
			sub := p.word()
			if off, why := checkName(sub); off >= 0 {
				if sub == "" {
					why = fmt.Sprintf("expected a sub-attribute name after \"].\", got %s", p.describe(subPos))
				}
				return nil, p.errf(subPos+off, "%s", why)
			}
			path.Sub = sub
		}
	}
	p.skipSpaces()
	if p.pos < len(p.in) {
		at := p.pos
		if _, isOp := ops[strings.ToLower(p.word())]; isOp && path.Filter == nil {
			return nil, p.errf(at, "a PATCH path is not a filter; select values with brackets, as in %s", clip(tok+`[value eq "..."]`))
		}
		return nil, p.errf(at, "unexpected %s after the path %s", p.describe(at), clip(strings.TrimRight(p.in[start:at], " \t")))
	}
	return path, nil
}

type parser struct {
	in    string
	pos   int
	depth int
	what  string    // "filter" or "path", for messages
	outer *AttrPath // the attribute whose value filter is being parsed, or nil
}

func (p *parser) errf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Input: p.in, what: p.what}
}

func (p *parser) checkInput() error {
	if len(p.in) > MaxLength {
		return p.errf(MaxLength, "the %s is %d bytes long; the limit is %d", p.what, len(p.in), MaxLength)
	}
	if !utf8.ValidString(p.in) {
		i := 0
		for i < len(p.in) {
			r, n := utf8.DecodeRuneInString(p.in[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return p.errf(i, "invalid UTF-8")
	}
	if strings.Trim(p.in, " \t") == "" {
		return p.errf(0, "empty %s", p.what)
	}
	return nil
}

func (p *parser) peek() byte {
	if p.pos < len(p.in) {
		return p.in[p.pos]
	}
	return 0
}

// skipSpaces advances past spaces and tabs and reports how many it passed.
func (p *parser) skipSpaces() int {
	start := p.pos
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
	return p.pos - start
}

// word consumes and returns the run of non-delimiter bytes at p.pos.
func (p *parser) word() string {
	start := p.pos
	for p.pos < len(p.in) && !isDelim(p.in[p.pos]) {
		p.pos++
	}
	return p.in[start:p.pos]
}

// wordAt returns the word at i without consuming it.
func (p *parser) wordAt(i int) string {
	j := i
	for j < len(p.in) && !isDelim(p.in[j]) {
		j++
	}
	return p.in[i:j]
}

// describe names what is at i, for the "got ..." part of a message.
func (p *parser) describe(i int) string {
	if i >= len(p.in) {
		return "the end of the " + p.what
	}
	switch c := p.in[i]; {
	case c == ' ' || c == '\t':
		return "a space"
	case c == '"':
		j := strings.IndexByte(p.in[i+1:], '"')
		if j < 0 {
			return clip(p.in[i:])
		}
		return clip(p.in[i : i+j+2])
	case isDelim(c):
		return fmt.Sprintf("%q", string(c))
	}
	return clip(p.wordAt(i))
}

func (p *parser) enter(at int) error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errf(at, "the %s nests deeper than %d levels of parentheses and brackets", p.what, MaxDepth)
	}
	return nil
}

// logical looks past the current position for a binary operator. It
// returns "and" or "or" and the position after the operator and the spaces
// that must follow it, or "" when no operator follows, leaving p.pos alone.
func (p *parser) logical() (string, int, error) {
	i := p.pos
	for i < len(p.in) && isSpace(p.in[i]) {
		i++
	}
	if i == p.pos {
		return "", 0, nil
	}
	w := p.wordAt(i)
	kw := strings.ToLower(w)
	if kw != "and" && kw != "or" {
		return "", 0, nil
	}
	j := i + len(w)
	k := j
	for k < len(p.in) && isSpace(p.in[k]) {
		k++
	}
	switch {
	case k == len(p.in):
		return "", 0, p.errf(k, "expected a filter after %q, got %s", w, p.describe(k))
	case k == j:
		return "", 0, p.errf(j, "expected a space after %q, got %s", w, p.describe(j))
	}
	return kw, k, nil
}

// or parses FILTER *(SP "or" SP FILTER), grouping to the left.
func (p *parser) or() (Expr, error) {
	left, err := p.and()
	for err == nil {
		var kw string
		var next int
		if kw, next, err = p.logical(); err != nil || kw != "or" {
			break
		}
		p.pos = next
		var right Expr
		if right, err = p.and(); err == nil {
			left = &Or{Left: left, Right: right}
		}
	}
	if err != nil {
		return nil, err
	}
	return left, nil
}

// and parses unary *(SP "and" SP unary), grouping to the left.
func (p *parser) and() (Expr, error) {
	left, err := p.unary()
	for err == nil {
		var kw string
		var next int
		if kw, next, err = p.logical(); err != nil || kw != "and" {
			break
		}
		p.pos = next
		var right Expr
		if right, err = p.unary(); err == nil {
			left = &And{Left: left, Right: right}
		}
	}
	if err != nil {
		return nil, err
	}
	return left, nil
}

// unary parses a parenthesised filter, "not" "(" FILTER ")", an attribute
// expression or a value path.
func (p *parser) unary() (Expr, error) {
	p.skipSpaces()
	start := p.pos
	if p.peek() == '(' {
		return p.group()
	}
	// "not" is a keyword only when a parenthesis follows; otherwise it is
	// an attribute name, as in `not pr`, and attrExp sorts it out.
	if w := p.wordAt(start); strings.EqualFold(w, "not") {
		p.pos += len(w)
		p.skipSpaces()
		if p.peek() == '(' {
			x, err := p.group()
			if err != nil {
				return nil, err
			}
			return &Not{X: x}, nil
		}
		p.pos = start
	}
	return p.attrExp()
}

func (p *parser) group() (Expr, error) {
	open := p.pos
	if err := p.enter(open); err != nil {
		return nil, err
	}
	p.pos++
	p.skipSpaces()
	if p.peek() == ')' {
		return nil, p.errf(open, "empty parentheses")
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if err := p.closeGroup(open, ')'); err != nil {
		return nil, err
	}
	p.depth--
	return e, nil
}

// closeGroup consumes the closing parenthesis or bracket for the one at open.
func (p *parser) closeGroup(open int, closer byte) error {
	p.skipSpaces()
	if p.pos == len(p.in) {
		return p.errf(p.pos, "missing %q to close the %q at position %d", string(closer), p.in[open:open+1], open)
	}
	if p.in[p.pos] == closer {
		p.pos++
		return nil
	}
	return p.unexpected(fmt.Sprintf("%q to close the %q at position %d", string(closer), p.in[open:open+1], open))
}

// end checks that nothing but spaces follows a complete filter.
func (p *parser) end() error {
	p.skipSpaces()
	switch {
	case p.pos == len(p.in):
		return nil
	case p.in[p.pos] == ')':
		return p.errf(p.pos, "unexpected \")\" without a matching \"(\"")
	case p.in[p.pos] == ']':
		return p.errf(p.pos, "unexpected \"]\" without a matching \"[\"")
	}
	return p.unexpected("the end of the filter")
}

// unexpected reports what was found where a logical operator or want
// should have been.
func (p *parser) unexpected(want string) error {
	at := p.pos
	if w := strings.ToLower(p.wordAt(at)); (w == "and" || w == "or") && at > 0 && !isSpace(p.in[at-1]) {
		return p.errf(at, "expected a space before %q", p.wordAt(at))
	}
	return p.errf(at, "expected \"and\", \"or\" or %s, got %s", want, p.describe(at))
}

// attrExp parses attrPath SP "pr", attrPath SP compareOp SP compValue, or
// a value path.
func (p *parser) attrExp() (Expr, error) {
	start := p.pos
	tok := p.word()
	if tok == "" {
		return nil, p.errf(start, "expected an attribute path, \"(\" or \"not\", got %s", p.describe(start))
	}
	attr, err := p.attrPath(tok, start)
	if err != nil {
		return nil, err
	}
	if p.peek() == '[' {
		f, err := p.valueFilter(attr, tok)
		if err != nil {
			return nil, err
		}
		if p.peek() != '.' {
			return &ValuePath{Attr: attr, Filter: f}, nil
		}
		// Entra ID writes `emails[type eq "work"].value eq "x"`, outside
		// the RFC grammar; it means `emails[type eq "work" and value eq
		// "x"]`, and is read as that.
		p.pos++
		subStart := p.pos
		sub := p.word()
		if off, why := checkName(sub); off >= 0 {
			return nil, p.errf(subStart+off, "after \"].\": %s", why)
		}
		cmp, err := p.comparison(AttrPath{Name: sub}, sub)
		if err != nil {
			return nil, err
		}
		return &ValuePath{Attr: attr, Filter: &And{Left: f, Right: cmp}}, nil
	}
	if p.outer != nil {
		switch {
		case attr.URN != "":
			return nil, p.errf(start, "inside the value filter of %q, attributes are its sub-attributes and take no schema URI; got %s", p.outer.String(), clip(tok))
		case attr.Sub != "":
			return nil, p.errf(start, "inside the value filter of %q, attributes are its sub-attributes, which have no sub-attributes of their own; got %s", p.outer.String(), clip(tok))
		}
	}
	return p.comparison(attr, tok)
}

// comparison parses what follows an attribute path: SP "pr", or SP
// compareOp SP compValue; tok is the path as written, for messages.
func (p *parser) comparison(attr AttrPath, tok string) (Expr, error) {
	// A bare "not" that reached here was not followed by "(", so unless an
	// operator follows it the author meant the keyword.
	isNot := strings.EqualFold(tok, "not")
	if p.skipSpaces() == 0 {
		if isNot {
			return nil, p.errf(p.pos, "expected \"(\" after \"not\", got %s", p.describe(p.pos))
		}
		if p.pos == len(p.in) {
			return nil, p.errf(p.pos, "expected a comparison operator after %s, got %s", clip(tok), p.describe(p.pos))
		}
		return nil, p.errf(p.pos, "expected a space after %s, got %s", clip(tok), p.describe(p.pos))
	}
	opPos := p.pos
	w := p.word()
	op, ok := ops[strings.ToLower(w)]
	if !ok {
		if isNot {
			return nil, p.errf(opPos, "expected \"(\" after \"not\", got %s", p.describe(opPos))
		}
		return nil, p.errf(opPos, "expected a comparison operator after %s, got %s", clip(tok), p.describe(opPos))
	}
	if op == "pr" {
		after := p.pos
		p.skipSpaces()
		if p.startsValue() {
			return nil, p.errf(p.pos, "%q takes no value, got %s", w, p.describe(p.pos))
		}
		p.pos = after
		return &Present{Attr: attr}, nil
	}
	if p.skipSpaces() == 0 {
		if p.pos == len(p.in) {
			return nil, p.errf(p.pos, "expected a value after %q, got %s", w, p.describe(p.pos))
		}
		return nil, p.errf(p.pos, "expected a space after %q, got %s", w, p.describe(p.pos))
	}
	valPos := p.pos
	v, err := p.value(w)
	if err != nil {
		return nil, err
	}
	switch op {
	case Gt, Ge, Lt, Le:
		if v.Kind != KindString && v.Kind != KindNumber {
			return nil, p.errf(valPos, "%q orders strings, numbers and dates; it cannot compare with %s", w, v.Kind)
		}
	case Co, Sw, Ew:
		if v.Kind != KindString {
			return nil, p.errf(valPos, "%q needs a string value, got %s", w, clip(p.in[valPos:p.pos]))
		}
	}
	return &Compare{Attr: attr, Op: op, Value: v}, nil
}

// startsValue reports whether a comparison value begins at p.pos, to
// explain an error after "pr" better than "expected and or or".
func (p *parser) startsValue() bool {
	switch c := p.peek(); {
	case c == '"' || c == '-' || isDigit(c):
		return true
	}
	switch strings.ToLower(p.wordAt(p.pos)) {
	case "true", "false", "null":
		return true
	}
	return false
}

// value parses compValue: false / null / true / number / string.
func (p *parser) value(op string) (Value, error) {
	start := p.pos
	if p.peek() == '"' {
		s, next, at, why := unquote(p.in, start)
		if at >= 0 {
			return Value{}, p.errf(at, "%s", why)
		}
		p.pos = next
		return Value{Kind: KindString, Str: s}, nil
	}
	w := p.word()
	switch strings.ToLower(w) {
	case "true":
		return Value{Kind: KindTrue, Bool: true}, nil
	case "false":
		return Value{Kind: KindFalse}, nil
	case "null":
		return Value{Kind: KindNull}, nil
	case "":
		return Value{}, p.errf(start, "expected a value after %q, got %s", op, p.describe(start))
	}
	if c := w[0]; isDigit(c) || c == '-' || c == '+' || c == '.' {
		if off, why := checkNumber(w); off >= 0 {
			return Value{}, p.errf(start+off, "%s", why)
		}
		return Value{Kind: KindNumber, Num: json.Number(w)}, nil
	}
	return Value{}, p.errf(start, "expected a value (a string in double quotes, a number, true, false or null) after %q, got %s", op, clip(w))
}

// valueFilter parses "[" valFilter "]" after attr, whose text is tok.
func (p *parser) valueFilter(attr AttrPath, tok string) (Expr, error) {
	open := p.pos
	if p.outer != nil {
		return nil, p.errf(open, "value filters cannot be nested: %s is inside the value filter of %q", clip(tok), p.outer.String())
	}
	if attr.Sub != "" {
		return nil, p.errf(open, "a value filter selects values of a multi-valued attribute, but %s is a sub-attribute", clip(tok))
	}
	if err := p.enter(open); err != nil {
		return nil, err
	}
	p.pos++
	p.skipSpaces()
	if p.peek() == ']' {
		return nil, p.errf(open, "empty value filter after %s", clip(tok))
	}
	p.outer = &attr
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if err := p.closeGroup(open, ']'); err != nil {
		return nil, err
	}
	p.outer = nil
	p.depth--
	return e, nil
}

// attrPath splits and validates tok, which starts at start, as
// [URI ":"] ATTRNAME ["." ATTRNAME]. The URI is everything before the last
// colon, because schema URNs contain colons and dots ("...:2.0:User").
func (p *parser) attrPath(tok string, start int) (AttrPath, error) {
	var a AttrPath
	name, at := tok, start
	if i := strings.LastIndexByte(tok, ':'); i >= 0 {
		if off, why := checkURI(tok[:i]); off >= 0 {
			return a, p.errf(start+off, "%s", why)
		}
		a.URN = tok[:i]
		name, at = tok[i+1:], start+i+1
		if name == "" {
			return a, p.errf(at, "expected an attribute name after the schema URI %s", clip(a.URN))
		}
	}
	var hasSub bool
	a.Name, a.Sub, hasSub = strings.Cut(name, ".")
	if off, why := checkName(a.Name); off >= 0 {
		return a, p.errf(at+off, "%s", why)
	}
	if !hasSub {
		return a, nil
	}
	at += len(a.Name) + 1
	if i := strings.IndexByte(a.Sub, '.'); i >= 0 {
		return a, p.errf(at+i, "%s has more than one sub-attribute; SCIM attributes nest only one level deep", clip(tok))
	}
	if a.Sub == "" {
		return a, p.errf(at, "expected a sub-attribute name after \".\" in %s", clip(tok))
	}
	if off, why := checkName(a.Sub); off >= 0 {
		return a, p.errf(at+off, "%s", why)
	}
	return a, nil
}
