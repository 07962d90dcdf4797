package httpapi

import (
	"fmt"
	"strconv"
	"strings"
)

// pointer is a parsed RFC 6901 JSON pointer: its reference tokens with the
// ~1 and ~0 escapes undone. The empty pointer (no tokens) is the whole
// document.
type pointer struct {
	text   string
	tokens []string
}

// parsePointer parses an RFC 6901 JSON pointer such as "/data/0/a~1b".
func parsePointer(s string) (pointer, error) {
	if s == "" {
		return pointer{}, nil
	}
	if s[0] != '/' {
		return pointer{}, fmt.Errorf("JSON pointer %q must be empty or start with \"/\"", s)
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		if !strings.Contains(p, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			if p[j] != '~' {
				b.WriteByte(p[j])
				continue
			}
			if j+1 < len(p) && p[j+1] == '0' {
				b.WriteByte('~')
			} else if j+1 < len(p) && p[j+1] == '1' {
				b.WriteByte('/')
			} else {
				return pointer{}, fmt.Errorf("JSON pointer %q has a \"~\" that is not followed by 0 or 1 (write ~0 for \"~\" and ~1 for \"/\")", s)
			}
			j++
		}
		parts[i] = b.String()
	}
	return pointer{text: s, tokens: parts}, nil
}

// String returns the pointer as written.
func (p pointer) String() string { return p.text }

// lookup applies the pointer to a value decoded by encoding/json (with
// UseNumber). found is false when a step names a member or index that does
// not exist, or steps into a value that is neither object nor array.
func (p pointer) lookup(doc any) (v any, found bool) {
	v = doc
	for _, tok := range p.tokens {
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, ok := arrayIndex(tok)
			if !ok || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// arrayIndex parses an RFC 6901 array index: "0" or digits without a
// leading zero. "-" (the element after the last) never exists when reading.
func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 9 || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(tok)
	return n, err == nil
}
