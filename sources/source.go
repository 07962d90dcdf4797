// Package sources defines the contract every source type meets: it yields
// person records and reports every problem with where it was found. Sources
// know nothing of the store, of reconciliation or of SCIM.
package sources

import (
	"fmt"
	"strings"
)

// Record is one person as a source describes it. Every field is text as the
// source gave it, trimmed; the reconcile engine decides what it means.
type Record struct {
	// Line is where the record starts in its input (1-based), or its index
	// for sources without lines; errors name it.
	Line       int
	ExternalID string
	GivenName  string
	FamilyName string
	UserName   string
	Email      string
	Phone      string
	Groups     []string
	// Password is an initial password in clear text. Sources that read a
	// stored raw record set PasswordHash instead and leave Password empty.
	Password     string
	PasswordHash string
	// InitialPassword keeps Password once it is hashed, only while the
	// store keeps initial passwords for sinks (secrets.key): the store
	// encrypts it when it creates the user, and nothing else reads it.
	InitialPassword string
	// PasswordAt is where Password stands in the input's bytes (csv), so
	// that the task's raw record can keep the input as it arrived with
	// only that cell replaced by its hash (SPEC §5); zero when there is no
	// clear password.
	PasswordAt Span
	// Active is nil when the source does not say; the engine then applies
	// its own rules (activate_new, orphans, restore).
	Active *bool
	// Manager is the ExternalID of the user's manager among the same
	// source's records (an ldap source resolves the manager's DN), "", or
	// KeepManager.
	Manager string
	// Attributes are the values of the attribute paths the source's
	// configuration maps (csv extra_columns, the http source's map), in
	// the configuration's order; an empty value leaves its attribute
	// unassigned.
	Attributes []Attribute
}

// Span is a range of bytes [Start, End) of an input.
type Span struct{ Start, End int64 }

// Empty reports whether the span holds no byte.
func (s Span) Empty() bool { return s.End <= s.Start }

// KeepManager as a Record's Manager keeps the manager the user has: a
// changed-only read does not see the unchanged manager it names.
const KeepManager = "\x00keep"

// Attribute is the value a record gives an attribute path of the
// directory (SPEC §2.1), such as title or
// addresses[type eq "work"].locality. Attributes of one path that follow
// each other in a record are the values of a path that names all the
// values of a multi-valued attribute (attrs.Path.Multi, such as roles);
// for any other path the last one counts.
type Attribute struct {
	Path  string
	Value string
}

// FieldError is one validation problem in a source's input. Message is the
// complete sentence an operator reads, including the position.
type FieldError struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Message }

// NewFieldError formats the message the way every roster error reads:
// `line 17, column 5 (email): "bob@" is not a valid e-mail address`.
func NewFieldError(line, column int, field, format string, args ...any) FieldError {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d", line)
	if column > 0 {
		fmt.Fprintf(&b, ", column %d", column)
	}
	if field != "" {
		fmt.Fprintf(&b, " (%s)", field)
	}
	b.WriteString(": ")
	fmt.Fprintf(&b, format, args...)
	return FieldError{Line: line, Column: column, Field: field, Message: b.String()}
}

// ValidationError is returned when an input has one or more FieldErrors. A
// source returns it only after it has read the whole input, so that every
// problem is reported at once.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	switch len(e.Errors) {
	case 0:
		return "invalid input"
	case 1:
		return e.Errors[0].Message
	default:
		return fmt.Sprintf("%s (and %s)", e.Errors[0].Message, Plural(len(e.Errors)-1, "more error"))
	}
}
