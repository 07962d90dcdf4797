package httpapi

import "strings"

// nextLink returns the target of the first link with relation type "next"
// among the Link header field values (RFC 8288), or "" when there is none.
// Several links may share one field value, separated by commas, or come in
// several fields; rel may be a token or a quoted, space-separated list of
// relation types, compared without regard to case. Malformed links are
// skipped, not guessed at.
func nextLink(values []string) string {
	for _, v := range values {
		for _, l := range parseLinks(v) {
			for rel := range strings.FieldsSeq(l.rel) {
				if strings.EqualFold(rel, "next") {
					return l.target
				}
			}
		}
	}
	return ""
}

type link struct {
	target string
	rel    string
}

// parseLinks parses one Link field value:
//
//	<uri-reference> *( ";" param ) *( "," <uri-reference> *( ";" param ) )
//
// where param is token [ "=" ( token / quoted-string ) ].
func parseLinks(s string) []link {
	var links []link
	i := 0
	for i < len(s) {
		i = skipSpaceAnd(s, i, ',')
		if i >= len(s) {
			break
		}
		if s[i] != '<' {
			// Not a link; skip to the next comma outside quotes.
			i = skipElement(s, i)
			continue
		}
		end := strings.IndexByte(s[i+1:], '>')
		if end < 0 {
			break
		}
		l := link{target: strings.TrimSpace(s[i+1 : i+1+end])}
		i += end + 2
		relSeen, garbage := false, false
		for {
			i = skipSpace(s, i)
			if i >= len(s) || s[i] != ';' {
				break
			}
			i = skipSpace(s, i+1)
			start := i
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			name := s[start:i]
			i = skipSpace(s, i)
			var val string
			if i < len(s) && s[i] == '=' {
				i = skipSpace(s, i+1)
				if i < len(s) && s[i] == '"' {
					val, i = quotedString(s, i)
				} else {
					start := i
					for i < len(s) && isTokenChar(s[i]) {
						i++
					}
					val = s[start:i]
				}
			}
			// Only the first rel parameter counts (RFC 8288, 3.3).
			if strings.EqualFold(name, "rel") && !relSeen {
				l.rel, relSeen = val, true
			}
			if name == "" && i < len(s) && s[i] != ';' && s[i] != ',' {
				// Garbage in the parameters: drop this link.
				garbage = true
				break
			}
		}
		if !garbage {
			links = append(links, l)
		}
		i = skipElement(s, i)
	}
	return links
}

// quotedString reads the quoted-string starting at s[i] == '"', undoing
// backslash escapes, and returns it and the index after its closing quote.
func quotedString(s string, i int) (string, int) {
	var b strings.Builder
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), i
}

// skipElement moves past the rest of a list element: to the index after the
// next comma that is not inside a quoted string or angle brackets.
func skipElement(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ',':
			return i + 1
		case '"':
			_, i = quotedString(s, i)
			continue
		case '<':
			if end := strings.IndexByte(s[i:], '>'); end >= 0 {
				i += end + 1
				continue
			}
			return len(s)
		}
		i++
	}
	return i
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func skipSpaceAnd(s string, i int, c byte) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == c) {
		i++
	}
	return i
}

// isTokenChar reports the tchar set of RFC 9110, 5.6.2; "*" is included so
// that extended parameters such as title* parse as names.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
