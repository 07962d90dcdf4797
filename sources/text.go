package sources

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Plural counts n of a noun for a message: "1 error", "0 errors", "2
// errors". Every noun roster counts takes an s in the plural. It is the
// one helper for this, so that no message reads "1 errors".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// ForbiddenRune finds the first character no person's field may hold: a
// control character other than tab, or a byte order mark. s is valid UTF-8.
func ForbiddenRune(s string) (rune, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\t') || c == 0x7F {
				return rune(c), true
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsControl(r) || r == 0xFEFF {
			return r, true
		}
		i += size - 1
	}
	return 0, false
}

// ValidEmail accepts a plain addr-spec such as jane.doe@example.com: a
// dot-atom local part and a domain of at least two labels. It refuses what
// a directory should not store as a work address: display names, quoted
// local parts, comments, address literals and single-label domains.
// Letters beyond ASCII are accepted for internationalised addresses.
func ValidEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at > 64 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	return validLocalPart(local) && validDomain(domain)
}

func validLocalPart(s string) bool {
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !isAtext(r) {
			return false
		}
	}
	return true
}

// isAtext reports the characters RFC 5322 allows in a dot-atom, plus
// letters, digits and marks beyond ASCII (RFC 6531).
func isAtext(r rune) bool {
	if r < utf8.RuneSelf {
		return IsASCIIAlnum(r) || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// IsASCIIAlnum reports an ASCII letter or digit.
func IsASCIIAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	labels, last := 0, ""
	for label := range strings.SplitSeq(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if r == '-' || IsASCIIAlnum(r) {
				continue
			}
			if r < utf8.RuneSelf || !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
				return false
			}
		}
		labels++
		last = label
	}
	// A top-level domain has two letters or more and is never numeric,
	// which also keeps out bare IPv4 addresses.
	return labels >= 2 && utf8.RuneCountInString(last) >= 2 && strings.Trim(last, "0123456789") != ""
}

// FoldKey maps s to a key that two strings share exactly when
// strings.EqualFold calls them equal, so that map look-ups and EqualFold
// never disagree. Lower-case ASCII, the usual login, comes back uncopied.
func FoldKey(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune picks one fixed member of r's simple case-folding orbit (the set
// EqualFold treats as one letter): its lower-case ASCII letter when it has
// one, such as "k" for K, k and the Kelvin sign, else its smallest rune.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return foldRune(f)
		}
		least = min(least, f)
	}
	return least
}

// maxShownRunes bounds how much of a value a message quotes, so that a
// megabyte-long cell yields a readable error.
const maxShownRunes = 64

// QuoteValue quotes v for a message, Go-escaped so that control characters
// show, and cut after maxShownRunes characters.
func QuoteValue(v string) string {
	n := utf8.RuneCountInString(v)
	if n <= maxShownRunes {
		return strconv.Quote(v)
	}
	i := 0
	for range maxShownRunes {
		_, size := utf8.DecodeRuneInString(v[i:])
		i += size
	}
	return fmt.Sprintf("%q... (%d characters)", v[:i], n)
}

// MaxAttributeBytes bounds the value a source gives an attribute, as SCIM
// writes are bounded, so that every value fits the indexes that hold it.
const MaxAttributeBytes = 1024

// AttributeCheck checks a value for an attribute path beyond what
// CheckAttribute knows, such as the declared type of a custom attribute;
// it returns "" or the reason, as CheckAttribute does. The daemon builds
// it from the configuration, which sources do not read.
type AttributeCheck func(path, v string) string

// Check is CheckAttribute, then c when set.
func (c AttributeCheck) Check(path, v string) string {
	if why := CheckAttribute(path, v); why != "" || c == nil {
		return why
	}
	return c(path, v)
}

// CheckAttribute checks a value a record gives an attribute path by the
// attribute's type: an e-mail address must be one, a profile or photo URL
// an absolute http(s) URL. It returns "" for a good value, and otherwise
// the reason, to follow the quoted value in an error.
func CheckAttribute(path, v string) string {
	if v == "" {
		return ""
	}
	if len(v) > MaxAttributeBytes {
		return fmt.Sprintf("is longer than the %d bytes an attribute can hold", MaxAttributeBytes)
	}
	p := strings.ToLower(path)
	p = p[strings.LastIndexByte(p, ':')+1:]
	switch {
	case strings.HasPrefix(p, "emails"):
		if !ValidEmail(v) {
			return "is not a valid e-mail address"
		}
	case p == "profileurl" || (strings.HasPrefix(p, "photos") && strings.HasSuffix(p, ".value")):
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "is not an absolute http or https URL"
		}
	}
	return ""
}

// QuoteMember quotes a JSON string value for a message like QuoteValue,
// unless it holds a quote character: a client that escaped its quotes
// wrongly ("a@b\",\"password\":\"...") has run the value on over the
// members after it, passwords among them, so such a value is described,
// not shown.
func QuoteMember(v string) string {
	if strings.ContainsRune(v, '"') {
		return fmt.Sprintf("the value (%d characters, not shown: it holds a quote and may hold other members)", utf8.RuneCountInString(v))
	}
	return QuoteValue(v)
}

// LoginProblem applies roster's identifier profile to a login name, from
// every source and SCIM alike (after RFC 8265's UsernameCaseMapped): a
// login may hold no invisible format character (text direction controls
// such as U+202E, zero-width joiners), which would show one login as
// another, and no compatibility character that Unicode folds into a
// plainer one (fullwidth "ｊdoe" beside "jdoe"). It returns "" for a good
// login, else the reason, to follow the quoted login in an error.
// Canonical equivalents (a composed "ü" and u with a combining
// diaeresis) are not refused, as that would refuse files saved in
// normalization form D: NormalizeLogin makes them one login.
func LoginProblem(v string) string {
	for _, r := range v {
		if unicode.Is(unicode.Cf, r) {
			return fmt.Sprintf("holds the invisible format character U+%04X; a login may not", r)
		}
	}
	if k := norm.NFKC.String(v); k != norm.NFC.String(v) {
		return fmt.Sprintf("holds compatibility characters that stand for plainer ones (such as fullwidth letters); write it as %q", k)
	}
	return ""
}

// NormalizeLogin returns a login in Unicode normalization form C, the
// form roster stores and compares logins in, so that "jose" with a
// combining acute accent (as macOS file names and some editors save it)
// and "jos\u00e9" are one login, not two users. Every source and SCIM
// pass logins through it before they check or store them.
func NormalizeLogin(v string) string { return norm.NFC.String(v) }
