package csv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/rosterd/roster/sources"
)

// Rewriter copies an input to a task's raw record byte for byte (SPEC §5),
// replacing only the spans it is given: initial password cells by their
// hashes, or the parts of an invalid input that may hold a password by
// nothing. Byte order mark, line ends, quoting and padding stay as they
// came. The spans come from Read (Record.PasswordAt, Options.Redact) and
// must be given in file order.
type Rewriter struct {
	src io.Reader
	dst io.Writer
	h   hash.Hash
	pos int64
}

// NewRewriter copies src to dst.
func NewRewriter(dst io.Writer, src io.Reader) *Rewriter {
	return &Rewriter{src: src, dst: dst, h: sha256.New()}
}

// errShort is an input shorter than the spans Read found in it.
var errShort = errors.New("csv: the input is shorter than when it was read: it changed in between")

// IsShort reports whether err is a Rewriter's input that ended before a
// span Read found in it: the input changed since it was read.
func IsShort(err error) bool { return errors.Is(err, errShort) }

// Replace copies the input up to s and writes with in s's place. A span
// before one already replaced, or overlapping it, is an error.
func (w *Rewriter) Replace(s sources.Span, with string) error {
	if s.Start < w.pos || s.End < s.Start {
		return fmt.Errorf("csv: span %d-%d given after %d: spans must come in file order", s.Start, s.End, w.pos)
	}
	if err := w.copy(io.MultiWriter(w.dst, w.h), s.Start-w.pos); err != nil {
		return err
	}
	if err := w.copy(w.h, s.End-s.Start); err != nil {
		return err
	}
	w.pos = s.End
	_, err := io.WriteString(w.dst, with)
	return err
}

func (w *Rewriter) copy(dst io.Writer, n int64) error {
	got, err := io.CopyN(dst, w.src, n)
	if errors.Is(err, io.EOF) && got < n {
		return errShort
	}
	return err
}

// Finish copies the rest of the input and returns the hex SHA-256 of every
// byte read from it, replaced ones included: equal to Result.SHA256 when
// the input is the one Read read.
func (w *Rewriter) Finish() (string, error) {
	if _, err := io.Copy(io.MultiWriter(w.dst, w.h), w.src); err != nil {
		return "", err
	}
	return hex.EncodeToString(w.h.Sum(nil)), nil
}

// Quote returns v as one CSV value: as it is when it needs no quotes (a
// bcrypt hash), else in double quotes with inner quotes doubled (an
// argon2id hash holds commas).
func Quote(v string) string {
	if !strings.ContainsAny(v, ",\"\r\n") && strings.TrimSpace(v) == v {
		return v
	}
	return `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
}
