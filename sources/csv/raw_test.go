package csv

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rosterd/roster/sources"
)

// rewrite reads in and copies it as a raw record: valid rows' passwords
// replaced by "H(password)", the spans of rows with errors by nothing.
func rewrite(t *testing.T, in string) (string, *Result) {
	t.Helper()
	var raw bytes.Buffer
	rw := NewRewriter(&raw, strings.NewReader(in))
	opts := Options{
		Redact: func(s sources.Span) {
			if err := rw.Replace(s, ""); err != nil {
				t.Fatal(err)
			}
		},
		Each: func(r sources.Record) error {
			if r.Password == "" {
				return nil
			}
			return rw.Replace(r.PasswordAt, Quote("H("+r.Password+")"))
		},
	}
	res, err := Read(context.Background(), strings.NewReader(in), opts)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := rw.Finish()
	if err != nil || sum != res.SHA256 {
		t.Fatalf("Finish: %s %v, want %s", sum, err, res.SHA256)
	}
	return raw.String(), res
}

// TestRewriterKeepsTheInput: a raw record is the input byte for byte
// (byte order mark, CRLF, quoting, padding, blank lines) with only the
// password cells replaced.
func TestRewriterKeepsTheInput(t *testing.T) {
	in := "\uFEFF1, Jane ,Doe,jdoe,jane@example.com,A|B,  Secret-One  \r\n" +
		"\r\n" +
		"2,\"Müller, Jr.\",Hans,hm,,, \"Se,cr\"\"et2\" \r\n" +
		"3,Zoë,Weiß,zw,,,\r\n" +
		"4,Max,Bauer,mb,,,Plain-Pass3,,\n"
	want := "\uFEFF1, Jane ,Doe,jdoe,jane@example.com,A|B,  H(Secret-One)  \r\n" +
		"\r\n" +
		"2,\"Müller, Jr.\",Hans,hm,,, \"H(Se,cr\"\"et2)\" \r\n" +
		"3,Zoë,Weiß,zw,,,\r\n" +
		"4,Max,Bauer,mb,,,H(Plain-Pass3),,\n"
	// Two empty extra columns pad row 4.
	var raw bytes.Buffer
	rw := NewRewriter(&raw, strings.NewReader(in))
	res, err := Read(context.Background(), strings.NewReader(in), Options{Extra: []string{"title", "nickName"},
		Each: func(r sources.Record) error {
			if r.Password == "" {
				return nil
			}
			return rw.Replace(r.PasswordAt, Quote("H("+r.Password+")"))
		}})
	if err != nil || len(res.Errors) != 0 {
		t.Fatalf("Read: %v %q", err, messages(res.Errors))
	}
	if _, err := rw.Finish(); err != nil {
		t.Fatal(err)
	}
	if raw.String() != want {
		t.Errorf("raw record\n got %q\nwant %q", raw.String(), want)
	}
}

// TestRewriterBlanksInvalidRows: in an invalid input every place a
// password may stand is blanked, whatever moved the cells, and every
// other byte stays.
func TestRewriterBlanksInvalidRows(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"short password", "1,Ann,Lee,alee,,,Sh0rt\n2,Bob,Ray,bray,,,Long-Enough\n",
			"1,Ann,Lee,alee,,,\n2,Bob,Ray,bray,,,H(Long-Enough)\n"},
		{"an error elsewhere in the row", "1,Ann,Lee,alee,bad@,,Secret-123\n", "1,Ann,Lee,alee,bad@,,\n"},
		{"too many fields", "1,Ann,Lee,alee,,,Secret-123,more\n", "1,Ann,Lee,alee,,,\n"},
		{"a stray quote", "1,Ann \"x\",Lee,alee,,,Secret-123\n", "1,Ann \"x\",Lee,alee,,,\n"},
		{"a quote that never closes", "1,\"Ann,Lee,alee,,,Secret-123\n2,Bob,Ray,bray,,,Secret-456\n",
			"1,\"Ann,Lee,alee,,,\n2,Bob,Ray,bray,,,H(Secret-456)\n"},
		{"lost commas", "1,Ann,Lee\tSecret-123\n", "1,Ann,\n"},
		{"UTF-16", "\xff\xfe1\x00,\x00S\x00", "\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res := rewrite(t, tt.in)
			if len(res.Errors) == 0 {
				t.Fatalf("the input is valid")
			}
			if got != tt.want {
				t.Errorf("raw record\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
