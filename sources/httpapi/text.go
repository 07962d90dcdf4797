package httpapi

import "fmt"

// describeRune names a forbidden character (sources.ForbiddenRune) for a
// message.
func describeRune(r rune) string {
	switch r {
	case '\n', '\r':
		return "a line break"
	case 0xFEFF:
		return "a byte order mark (U+FEFF)"
	default:
		return fmt.Sprintf("the control character U+%04X", r)
	}
}
