package filter

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// isSpace reports the characters accepted where the ABNF writes SP. Tabs are
// accepted because clients that pretty-print filters use them; line breaks
// are not, since a filter arrives in one query parameter or JSON string.
func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// isDelim reports the characters that end a word: an attribute path, an
// operator, a keyword or an unquoted value. Control characters end words too,
// so that a stray line break is reported by itself rather than as part of
// the word next to it.
func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '(', ')', '[', ']', '"':
		return true
	}
	return c < 0x20 || c == 0x7f
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkName validates an ATTRNAME. RFC 7643 §2.1 allows "$" after the first
// letter, and "$ref" is the one name that starts with "$" (§2.3.7). It
// returns the offset of the first bad byte and why, or -1.
func checkName(s string) (int, string) {
	if s == "" {
		return 0, "expected an attribute name"
	}
	if strings.EqualFold(s, "$ref") {
		return -1, ""
	}
	if !isAlpha(s[0]) {
		return 0, fmt.Sprintf("invalid attribute name %s: an attribute name starts with a letter", clip(s))
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '$' {
			return i, fmt.Sprintf("invalid character %s in attribute name %s", charAt(s, i), clip(s))
		}
	}
	return -1, ""
}

// checkURI validates the schema URI before an attribute name. SCIM schema
// URIs are URNs, but the ABNF says URI, so this accepts RFC 3986's scheme
// ":" followed by its path, query and fragment characters, leaving out the
// few that delimit filters. It returns the offset of the first bad byte
// and why, or -1.
func checkURI(s string) (int, string) {
	bad := func(i int, why string) (int, string) {
		return i, fmt.Sprintf("%s is not a schema URI such as \"urn:ietf:params:scim:schemas:core:2.0:User\": %s", clip(s), why)
	}
	if s == "" || !isAlpha(s[0]) {
		return bad(0, "a URI starts with a letter")
	}
	i := 1
	for i < len(s) && (isAlpha(s[i]) || isDigit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.') {
		i++
	}
	if i == len(s) || s[i] != ':' {
		return bad(i, "expected \":\" after the URI scheme")
	}
	i++
	if i == len(s) {
		return bad(i, "nothing follows the URI scheme")
	}
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c) || isDigit(c) || strings.IndexByte("-._~!$&'*+,;=:@/?#", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return bad(i, "\"%\" must start a percent-encoded byte such as %2F")
			}
			i += 2
		default:
			return bad(i, "invalid character "+charAt(s, i))
		}
	}
	return -1, ""
}

// checkNumber validates a JSON number (RFC 7159 §6). It returns the offset
// of the first bad byte and why, or -1.
func checkNumber(s string) (int, string) {
	bad := func(i int, why string) (int, string) {
		return i, fmt.Sprintf("invalid number %s: %s", clip(s), why)
	}
	i := 0
	switch {
	case s[0] == '+':
		return bad(0, "a leading \"+\" is not allowed")
	case s[0] == '.':
		return bad(0, "expected a digit before the decimal point")
	case s[0] == '-':
		i++
	}
	switch {
	case i == len(s) || !isDigit(s[i]):
		return bad(i, "expected a digit after \"-\"")
	case s[i] == '0':
		i++
		if i < len(s) && isDigit(s[i]) {
			return bad(i, "leading zeros are not allowed")
		}
	default:
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return bad(i, "expected a digit after the decimal point")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return bad(i, "expected a digit in the exponent")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) {
		return bad(i, "unexpected "+charAt(s, i))
	}
	return -1, ""
}

// unquote decodes the JSON string that starts with the double quote at
// s[start]. The input is known to be valid UTF-8. It returns the decoded
// string and the offset just past the closing quote, or the offset of the
// fault and why.
func unquote(s string, start int) (string, int, int, string) {
	i := start + 1
	// Fast path: most filter values have no escapes, so slice the input.
	for i < len(s) && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20 {
		i++
	}
	if i < len(s) && s[i] == '"' {
		return s[start+1 : i], i + 1, -1, ""
	}
	var b strings.Builder
	b.WriteString(s[start+1 : i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, -1, ""
		case c < 0x20:
			return "", 0, i, fmt.Sprintf("control character %s in a string must be escaped", charAt(s, i))
		case c != '\\':
			_, n := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		if i+1 == len(s) {
			break
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", 0, i, "invalid escape " + clip(escapeAt(s, i, 6)) + ": \\u needs four hexadecimal digits"
			}
			n := 6
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00:
				lo, ok := rune(0), i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u'
				if ok {
					lo, ok = hex4(s, i+8)
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return "", 0, i, "invalid escape " + clip(escapeAt(s, i, 6)) + ": a high surrogate must be followed by a low surrogate escape"
				}
				r = utf16.DecodeRune(r, lo)
				n = 12
			case utf16.IsSurrogate(r):
				return "", 0, i, "invalid escape " + clip(escapeAt(s, i, 6)) + ": a low surrogate must follow a high surrogate"
			}
			b.WriteRune(r)
			i += n
			continue
		default:
			return "", 0, i, "invalid escape " + clip(escapeAt(s, i, 2)) + " in a string; JSON allows \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX"
		}
		i += 2
	}
	return "", 0, start, "unterminated string: missing the closing double quote"
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case isDigit(c):
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// escapeAt returns about n bytes of s from i, extended to a rune boundary
// so that the message stays valid UTF-8.
func escapeAt(s string, i, n int) string {
	end := min(i+n, len(s))
	for end < len(s) && !utf8.RuneStart(s[end]) {
		end++
	}
	return s[i:end]
}

// quote writes s as a JSON string. Unlike encoding/json it leaves <, > and &
// alone, because the result is a filter, not HTML, and the canonical form
// should read like what a person would type.
func quote(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// clip quotes s for an error message, shortened so that an 8 KiB token does
// not flood the log line.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// charAt quotes the character at s[i].
func charAt(s string, i int) string {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return fmt.Sprintf("%q", s[i:i+1])
	}
	return fmt.Sprintf("%q", string(r))
}
