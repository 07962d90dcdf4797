package csv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/rosterd/roster/sources"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/bad")

const (
	bcryptHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	argonHash  = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
)

func read(t testing.TB, in string, opts Options) *Result {
	t.Helper()
	res, err := Read(context.Background(), strings.NewReader(in), opts)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	checkPasswordAt(t, []byte(in), res)
	return res
}

// checkPasswordAt checks that each record's PasswordAt is where its
// password stands in the input, and clears it so that tests compare the
// records' contents.
func checkPasswordAt(t testing.TB, in []byte, res *Result) {
	t.Helper()
	for i := range res.Records {
		r := &res.Records[i]
		if r.Password == "" {
			if r.PasswordAt != (sources.Span{}) {
				t.Errorf("line %d: PasswordAt %+v without a password", r.Line, r.PasswordAt)
			}
			continue
		}
		s := r.PasswordAt
		if s.Empty() || s.Start < 0 || s.End > int64(len(in)) {
			t.Errorf("line %d: PasswordAt %+v outside the input of %d bytes", r.Line, s, len(in))
			continue
		}
		cell := string(in[s.Start:s.End])
		if strings.HasPrefix(cell, `"`) {
			cell = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(cell, `"`), `"`), `""`, `"`)
		}
		if strings.TrimSpace(cell) != r.Password {
			t.Errorf("line %d: PasswordAt %+v holds %q, not the password", r.Line, s, in[s.Start:s.End])
		}
		r.PasswordAt = sources.Span{}
	}
}

func messages(errs []sources.FieldError) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Message
	}
	return out
}

// withoutLines clears Line so that records read from different layouts of
// the same data compare equal.
func withoutLines(recs []sources.Record) []sources.Record {
	out := make([]sources.Record, len(recs))
	for i, r := range recs {
		r.Line = 0
		out[i] = r
	}
	return out
}

func person(line int, id, first, last, login, email string, groups ...string) sources.Record {
	if len(groups) == 0 {
		groups = nil
	}
	return sources.Record{Line: line, ExternalID: id, GivenName: first, FamilyName: last, UserName: login, Email: email, Groups: groups}
}

func withPassword(r sources.Record, pw string) sources.Record {
	r.Password = pw
	return r
}

func TestReadValidFile(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.csv")
	if err != nil {
		t.Fatal(err)
	}
	res := read(t, string(data), Options{})
	if len(res.Errors) != 0 || len(res.Warnings) != 0 {
		t.Fatalf("errors %q, warnings %q", messages(res.Errors), res.Warnings)
	}
	want := []sources.Record{
		person(1, "00042", "Jane", "Doe", "jdoe", "jane.doe@example.com", "Engineering", "Berlin"),
		person(2, "1001", "Hans", "Müller, Jr.", "hmueller", "", "Sales"),
		withPassword(person(3, "1002", `Anna "Ani"`, "Schmidt", "aschmidt", "anna.schmidt@example.com", "Support", "HR"), "Initial-Passw0rd"),
		person(4, "1003", "Zoë", "Weiß", "zweiss", ""),
		person(6, "1004", "Jürgen", "Groß", "jgross", "juergen.gross@example.com"),
		person(8, "1005", "Lena", "Koch", "lkoch", "lena.koch@example.com", "HR"),
	}
	if !reflect.DeepEqual(res.Records, want) {
		t.Errorf("records\n got %+v\nwant %+v", res.Records, want)
	}
	if res.Lines != 8 {
		t.Errorf("Lines = %d, want 8", res.Lines)
	}
	sum := sha256.Sum256(data)
	if res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 = %s, want the digest of the file", res.SHA256)
	}
	if err := res.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}

	crlf := strings.ReplaceAll(string(data), "\n", "\r\n")
	res2 := read(t, crlf, Options{})
	if len(res2.Errors) != 0 || !reflect.DeepEqual(res2.Records, res.Records) {
		t.Errorf("the file with CRLF line ends reads differently: errors %q", messages(res2.Errors))
	}
}

func TestReadStaffExample(t *testing.T) {
	f, err := os.Open("../../deploy/examples/staff.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Read(context.Background(), f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("deploy/examples/staff.csv is invalid: %v\n%s", err, strings.Join(messages(res.Errors), "\n"))
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	if len(res.Records) != 40 {
		t.Errorf("%d records, want 40", len(res.Records))
	}
	passwords, noEmail := 0, 0
	for _, r := range res.Records {
		if r.Password != "" {
			passwords++
		}
		if r.Email == "" {
			noEmail++
		}
	}
	if passwords < 5 || noEmail < 2 {
		t.Errorf("%d initial passwords and %d rows without e-mail; the sample should show both", passwords, noEmail)
	}
}

func TestReadFormat(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []sources.Record
		warnings []string
		lines    int
	}{
		{
			name:  "LF",
			in:    "1,Jane,Doe,jdoe,,,\n2,Max,Bauer,mbauer,,,\n",
			want:  []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", ""), person(2, "2", "Max", "Bauer", "mbauer", "")},
			lines: 2,
		},
		{
			name:  "CRLF",
			in:    "1,Jane,Doe,jdoe,,,\r\n2,Max,Bauer,mbauer,,,\r\n",
			want:  []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", ""), person(2, "2", "Max", "Bauer", "mbauer", "")},
			lines: 2,
		},
		{
			name:  "no line end after the last row",
			in:    "1,Jane,Doe,jdoe\r\n2,Max,Bauer,mbauer",
			want:  []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", ""), person(2, "2", "Max", "Bauer", "mbauer", "")},
			lines: 2,
		},
		{
			name:  "blank and white space lines skipped",
			in:    "\n1,Jane,Doe,jdoe\n\n \t \r\n2,Max,Bauer,mbauer\n\n",
			want:  []sources.Record{person(2, "1", "Jane", "Doe", "jdoe", ""), person(5, "2", "Max", "Bauer", "mbauer", "")},
			lines: 6,
		},
		{
			name:  "quoted comma",
			in:    `1,Hans,"Müller, Jr.",hmueller` + "\n",
			want:  []sources.Record{person(1, "1", "Hans", "Müller, Jr.", "hmueller", "")},
			lines: 1,
		},
		{
			name:  "doubled quotes",
			in:    `1,"Maximilian ""Max""",Bauer,"mbauer"` + "\n",
			want:  []sources.Record{person(1, "1", `Maximilian "Max"`, "Bauer", "mbauer", "")},
			lines: 1,
		},
		{
			name:  "empty quoted optional value",
			in:    `1,Jane,Doe,jdoe,"","",""` + "\n",
			want:  []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", "")},
			lines: 1,
		},
		{
			name: "line break inside quotes keeps the line of the row and of the next rows",
			in:   "1,Jane,\"Doe\n\",jdoe,,\"Sales|\r\nHR\"\n2,Max,Bauer,mbauer\n",
			want: []sources.Record{
				person(1, "1", "Jane", "Doe", "jdoe", "", "Sales", "HR"),
				person(4, "2", "Max", "Bauer", "mbauer", ""),
			},
			lines: 4,
		},
		{
			name:     "byte order mark removed with a warning",
			in:       "\ufeff1,Jane,Doe,jdoe\n",
			want:     []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", "")},
			warnings: []string{"line 1: a UTF-8 byte order mark was removed"},
			lines:    1,
		},
		{
			name:     "byte order mark before a quoted first value",
			in:       "\ufeff\"1\",Jane,Doe,jdoe\r\n",
			want:     []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", "")},
			warnings: []string{"line 1: a UTF-8 byte order mark was removed"},
			lines:    1,
		},
		{
			name: "4, 5 and 6 fields",
			in:   "1,Jane,Doe,jdoe\n2,Max,Bauer,mbauer,max@example.com\n3,Anna,Schmidt,aschmidt,,HR\n",
			want: []sources.Record{
				person(1, "1", "Jane", "Doe", "jdoe", ""),
				person(2, "2", "Max", "Bauer", "mbauer", "max@example.com"),
				person(3, "3", "Anna", "Schmidt", "aschmidt", "", "HR"),
			},
			lines: 3,
		},
		{
			name:  "leading zeros and other number-like text kept",
			in:    "000123,Jane,Doe,0042,,,\n1e5,Max,Bauer,2026-01-01,,,\n",
			want:  []sources.Record{person(1, "000123", "Jane", "Doe", "0042", ""), person(2, "1e5", "Max", "Bauer", "2026-01-01", "")},
			lines: 2,
		},
		{
			name:  "surrounding white space trimmed, quoted or not",
			in:    "  1 ,\tJane\t, \"Doe \" , \" jdoe\" , jane@example.com ,\u00a0HR\u00a0,  Passwort-123  \n",
			want:  []sources.Record{withPassword(person(1, "1", "Jane", "Doe", "jdoe", "jane@example.com", "HR"), "Passwort-123")},
			lines: 1,
		},
		{
			name:  "inner white space and tabs kept",
			in:    "1,Anna Lena,de\tVries,alena,,,\n",
			want:  []sources.Record{person(1, "1", "Anna Lena", "de\tVries", "alena", "")},
			lines: 1,
		},
		{
			name:  "groups split, trimmed, emptied and deduplicated ignoring case",
			in:    "1,Jane,Doe,jdoe,,Engineering | Berlin||engineering|BERLIN| |Sales,\n2,Max,Bauer,mbauer,,|,\n",
			want:  []sources.Record{person(1, "1", "Jane", "Doe", "jdoe", "", "Engineering", "Berlin", "Sales"), person(2, "2", "Max", "Bauer", "mbauer", "")},
			lines: 2,
		},
		{
			name:  "password counted in characters, not bytes",
			in:    "1,Jane,Doe,jdoe,,,Grüße123\n",
			want:  []sources.Record{withPassword(person(1, "1", "Jane", "Doe", "jdoe", ""), "Grüße123")},
			lines: 1,
		},
		{
			name:  "empty input",
			in:    "",
			lines: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := read(t, tt.in, Options{})
			if len(res.Errors) != 0 {
				t.Fatalf("errors: %q", messages(res.Errors))
			}
			if !reflect.DeepEqual(res.Records, tt.want) {
				t.Errorf("records\n got %+v\nwant %+v", res.Records, tt.want)
			}
			if !reflect.DeepEqual(res.Warnings, tt.warnings) {
				t.Errorf("warnings = %q, want %q", res.Warnings, tt.warnings)
			}
			if res.Lines != tt.lines {
				t.Errorf("Lines = %d, want %d", res.Lines, tt.lines)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opts Options
		want []string
		// records is how many rows are still returned as valid.
		records int
	}{
		{
			name: "logins outside the identifier profile",
			in:   "1,Jane,Doe,\uff4adoe,,,\n2,Eve,Fox,eve\u202e,,,\n3,Ann,Lee,ann,,,\n",
			want: []string{
				`line 1, column 4 (login): "ｊdoe" holds compatibility characters that stand for plainer ones (such as fullwidth letters); write it as "jdoe"`,
				`line 2, column 4 (login): "eve\u202e" holds the invisible format character U+202E; a login may not`,
			},
			records: 1,
		},
		{
			// One login composed and decomposed (as macOS saves it): one
			// login, so the second is a duplicate.
			name: "a login in both normalization forms",
			in:   "1,Jose,Ruiz,jose\u0301,,,\n2,Jose,Diaz,jos\u00e9,,,\n",
			want: []string{
				`line 2, column 4 (login): "josé" is already used on line 1`,
			},
			records: 1,
		},
		{
			name:    "missing required value",
			in:      "1,Jane,Doe,jdoe\n2, ,Bauer,mbauer\n3,Anna,\"\",aschmidt\n,Eve,Fox,\n",
			want:    []string{`line 2, column 2 (first_name): a value is required`, `line 3, column 3 (last_name): a value is required`, `line 4, column 1 (id): a value is required`, `line 4, column 4 (login): a value is required`},
			records: 1,
		},
		{
			name: "missing required fields",
			in:   "1,Jane,Doe\n2\n",
			want: []string{
				`line 1, column 4 (login): the field is missing; a row has at least 4 fields, this one has 3`,
				`line 2, column 2 (first_name): the field is missing; a row has at least 4 fields, this one has 1`,
				`line 2, column 3 (last_name): the field is missing; a row has at least 4 fields, this one has 1`,
				`line 2, column 4 (login): the field is missing; a row has at least 4 fields, this one has 1`,
			},
		},
		{
			name: "too many fields",
			in:   "1,Hans,Müller, Jr.,hmueller,,Sales,\n2,Jane,Doe,jdoe,,,,\n",
			want: []string{`line 1, column 8: too many fields (8); a row has at most 7`, `line 2, column 8: too many fields (8); a row has at most 7`},
		},
		{
			name: "invalid e-mail",
			in:   "1,Bob,Smith,bsmith,bob@,,\n2,Eve,Fox,efox,Eve Fox <eve@example.com>,,\n3,Ann,Lee,alee,ann lee@example.com,,\n4,Joe,Ray,jray,joe@localhost,,\n5,Kim,Ito,kito,kim..ito@example.com,,\n",
			want: []string{
				`line 1, column 5 (email): "bob@" is not a valid e-mail address`,
				`line 2, column 5 (email): "Eve Fox <eve@example.com>" is not a valid e-mail address`,
				`line 3, column 5 (email): "ann lee@example.com" is not a valid e-mail address`,
				`line 4, column 5 (email): "joe@localhost" is not a valid e-mail address`,
				`line 5, column 5 (email): "kim..ito@example.com" is not a valid e-mail address`,
			},
		},
		{
			name: "invalid UTF-8",
			in:   "1,J\xfcrgen,Wei\xdf,jweiss,,,\n2,Max,Bauer,mbauer,,,Geheim-\xff-2026\n",
			want: []string{
				`line 1, column 2 (first_name): the value is not valid UTF-8 (byte 0xFC); save the file as UTF-8`,
				`line 1, column 3 (last_name): the value is not valid UTF-8 (byte 0xDF); save the file as UTF-8`,
				`line 2, column 7 (password): the value is not valid UTF-8; save the file as UTF-8`,
			},
		},
		{
			name: "UTF-16",
			in:   "\xff\xfe1\x00,\x00\n\x00",
			want: []string{`line 1: the file is UTF-16 encoded (it starts with a UTF-16 byte order mark); save it as UTF-8`},
		},
		{
			name:    "bare quote",
			in:      "1,Max \"Maxi\",Bauer,mbauer\n2,Jane,Doe,jdoe\n3,Eve,Fox,efox,,,Pass\"word-123\n",
			want:    []string{`line 1, column 2 (first_name): a quote (") stands inside an unquoted value; quote the whole value and double the quote inside ("")`, `line 3, column 7 (password): a quote (") stands inside an unquoted value; quote the whole value and double the quote inside ("")`},
			records: 1,
		},
		{
			name:    "text after a closing quote",
			in:      "1,\"Max\" Maxi,Bauer,mbauer\n2,Jane,Doe,jdoe\n",
			want:    []string{`line 1, column 2 (first_name): text follows the closing quote; a quoted value must end at a comma or the end of the line`},
			records: 1,
		},
		{
			name:    "unterminated quote at the end of the input",
			in:      "1,Jane,Doe,jdoe\n2,Max,\"Bauer,mbauer\n3,Anna,Schmidt,aschmidt\n",
			want:    []string{`line 2, column 3 (last_name): a quoted value starts here but its closing quote (") is missing`},
			records: 2,
		},
		{
			name:    "unterminated quote closed by a later row's quote",
			in:      "1,\"Jane,Doe,jdoe\n2,Max,Bauer,mbauer\n3,Hans,\"Müller, Jr.\",hmueller\n4,Anna,Schmidt,aschmidt\n",
			want:    []string{`line 1, column 2 (first_name): a quoted value starts here but its closing quote (") is missing`},
			records: 3,
		},
		{
			name:    "duplicate id",
			in:      "0042,Jane,Doe,jdoe\n42,Max,Bauer,mbauer\n0042,Anna,Schmidt,aschmidt\n0042,Eve,Fox,efox\n",
			want:    []string{`line 3, column 1 (id): "0042" is already used on line 1`, `line 4, column 1 (id): "0042" is already used on line 1`},
			records: 2,
		},
		{
			name:    "duplicate login ignores case",
			in:      "1,Jane,Doe,jdoe\n2,Max,Bauer,mbauer\n3,Jana,Doe,JDoe,,,\n",
			want:    []string{`line 3, column 4 (login): "JDoe" is already used on line 1`},
			records: 2,
		},
		{
			name:    "duplicate login with Unicode case folding",
			in:      "1,Jürgen,Weiß,JÜRGEN.WEISS\n2,Jürgen,Weiss,jürgen.weiss,,,\n3,Kai,Kelvin,\u212aai\n4,Kai,Kelvin,kai,,,\n",
			want:    []string{`line 2, column 4 (login): "jürgen.weiss" is already used on line 1`, `line 4, column 4 (login): "kai" is already used on line 3`},
			records: 2,
		},
		{
			name: "duplicate rows name their own lines",
			in:   "1,Jane,Doe,jdoe\n\n1,Jane,Doe,jdoe,,,\n",
			want: []string{`line 3, column 1 (id): "1" is already used on line 1`, `line 3, column 4 (login): "jdoe" is already used on line 1`},
			// the first row is fine
			records: 1,
		},
		{
			name:    "short password",
			in:      "1,Jane,Doe,jdoe,,,Welcome-2026\n2,Max,Bauer,mbauer,,,abc\n3,Eve,Fox,efox,,,Grüße\n",
			want:    []string{`line 2, column 7 (password): the password is shorter than 8 characters`, `line 3, column 7 (password): the password is shorter than 8 characters`},
			records: 1,
		},
		{
			name:    "short password with a configured minimum",
			in:      "1,Jane,Doe,jdoe,,,Welcome-2026\n2,Max,Bauer,mbauer,,,abcdefghij\n",
			opts:    Options{PasswordMinLength: 12},
			want:    []string{`line 2, column 7 (password): the password is shorter than 12 characters`},
			records: 1,
		},
		{
			name: "control characters and line breaks",
			in:   "1,Max\x07,Bauer,mbauer\n2,\"Anna\nMaria\",Schmidt,aschmidt\n3,Eve,Fox\x00,efox\n4,Joe,Ray,jray,,Sales\u0085HR,\n5,Kim,Ito,kito,,,Pass\x1bword-123\n6,Ann,Lee,\"a\rlee\",,,\n",
			want: []string{
				`line 1, column 2 (first_name): "Max\a" contains the control character U+0007`,
				`line 2, column 2 (first_name): the quoted value runs on to line 3, but a value holds no line break: is its closing quote (") missing? (not shown: it may hold other rows)`,
				`line 4, column 3 (last_name): "Fox\x00" contains the control character U+0000`,
				`line 5, column 6 (groups): "Sales\u0085HR" contains the control character U+0085`,
				`line 6, column 7 (password): the password contains a control character or line break`,
				`line 7, column 4 (login): "a\rlee" contains a line break`,
			},
		},
		{
			name: "byte order mark inside a value",
			in:   "1,Jane,Doe,jdoe\n\ufeff2,Max,Bauer,mbauer\n",
			want: []string{`line 2, column 1 (id): "\ufeff2" contains a byte order mark (U+FEFF)`},
			// the first row is fine
			records: 1,
		},
		{
			name: "invalid password hash",
			in:   "1,Jane,Doe,jdoe,,,Welcome-2026\n2,Max,Bauer,mbauer,,,$2b$10$tooshort\n3,Eve,Fox,efox,,,\"$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"\n",
			opts: Options{HashedPasswords: true},
			want: []string{
				`line 1, column 7 (password): the value is not a password hash written by roster ($argon2id$... or bcrypt $2a$, $2b$, $2y$)`,
				`line 2, column 7 (password): the value is not a password hash written by roster ($argon2id$... or bcrypt $2a$, $2b$, $2y$)`,
				`line 3, column 7 (password): the value is not a password hash written by roster ($argon2id$... or bcrypt $2a$, $2b$, $2y$)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := read(t, tt.in, tt.opts)
			if got := messages(res.Errors); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %q\nwant %q", got, tt.want)
			}
			if len(res.Records) != tt.records {
				t.Errorf("%d valid records, want %d", len(res.Records), tt.records)
			}
			checkErrors(t, res)
			var verr *sources.ValidationError
			if err := res.Err(); !errors.As(err, &verr) || len(verr.Errors) != len(tt.want) {
				t.Errorf("Err() = %v, want a *sources.ValidationError with %d errors", err, len(tt.want))
			}
		})
	}
}

// checkErrors asserts what holds for every error of every input.
func checkErrors(t testing.TB, res *Result) {
	t.Helper()
	last := 0
	for _, e := range res.Errors {
		if e.Line < 1 || e.Message == "" {
			t.Errorf("error %+v has no line or no message", e)
		}
		if e.Line < last {
			t.Errorf("error %q comes after one on line %d", e.Message, last)
		}
		last = e.Line
		if e.Column > 0 && e.Column <= maxFields && e.Field != ColumnName(e.Column) {
			t.Errorf("error %q: column %d is named %q", e.Message, e.Column, e.Field)
		}
		if e.Line > res.Lines {
			t.Errorf("error %q is past the last line %d", e.Message, res.Lines)
		}
	}
}

func TestReadSeveralErrors(t *testing.T) {
	in := "1,Jane,Doe,jdoe,jane@example.com\n" +
		"2,,Bauer,mbauer,max@,,short\n" +
		"3,Anna\n" +
		"1,Hans,\"Müller, Jr.\",hmueller\n" +
		"4,Jana,Doe,JDOE,,,,\n" +
		"5,\"Lena,Koch,lkoch\n" +
		"6,Eve,Fox,efox,eve@example.com\n"
	res := read(t, in, Options{})
	want := []string{
		`line 2, column 2 (first_name): a value is required`,
		`line 2, column 5 (email): "max@" is not a valid e-mail address`,
		`line 2, column 7 (password): the password is shorter than 8 characters`,
		`line 3, column 3 (last_name): the field is missing; a row has at least 4 fields, this one has 2`,
		`line 3, column 4 (login): the field is missing; a row has at least 4 fields, this one has 2`,
		`line 4, column 1 (id): "1" is already used on line 1`,
		`line 5, column 8: too many fields (8); a row has at most 7`,
		`line 6, column 2 (first_name): a quoted value starts here but its closing quote (") is missing`,
	}
	if got := messages(res.Errors); !reflect.DeepEqual(got, want) {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
	if len(res.Records) != 2 || res.Records[1].ExternalID != "6" || res.Records[1].Line != 7 {
		t.Errorf("records %+v, want rows 1 and 6", res.Records)
	}
	checkErrors(t, res)
}

func TestReadMaxErrors(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 25; i++ {
		b.WriteString("x,,,\n")
	}
	res := read(t, b.String(), Options{MaxErrors: 10})
	if len(res.Errors) != 11 {
		t.Fatalf("%d errors, want 10 and a summary", len(res.Errors))
	}
	// 25 rows of 4 errors (id is a duplicate from the second row on): 10 listed.
	want := `line 3: 89 more errors are not listed; only the first 10 are`
	if got := res.Errors[10].Message; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if res.Lines != 25 {
		t.Errorf("Lines = %d, want 25: the reader must go on to the end", res.Lines)
	}
	checkErrors(t, res)
	// One error beyond the bound is one, not "1 more errors".
	res = read(t, b.String(), Options{MaxErrors: 98})
	if got, want := res.Errors[len(res.Errors)-1].Message, "1 more error is not listed; only the first 98 are"; !strings.HasSuffix(got, want) {
		t.Errorf("summary %q, want it to end in %q", got, want)
	}

	res = read(t, strings.Repeat(",,,\n", 400), Options{})
	if len(res.Errors) != DefaultMaxErrors+1 {
		t.Errorf("%d errors, want the default cap %d and a summary", len(res.Errors), DefaultMaxErrors)
	}
}

func TestReadLongLines(t *testing.T) {
	long := strings.Repeat("x", MaxRowBytes+10)
	in := "1,Jane,Doe,jdoe\n2,Max," + long + ",mbauer\n3,Anna,Schmidt,aschmidt\n"
	res := read(t, in, Options{})
	want := []string{`line 2: the line is longer than 1048576 bytes; a row holds at most that`}
	if got := messages(res.Errors); !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
	if len(res.Records) != 2 || res.Records[1].Line != 3 || res.Lines != 3 {
		t.Errorf("records %+v, lines %d: the rows around a long line must be read", res.Records, res.Lines)
	}

	// A line just under the limit is a row like any other.
	okLong := strings.Repeat("y", MaxRowBytes-100)
	res = read(t, "1,Jane,Doe,jdoe,,"+okLong+"\r\n", Options{})
	if len(res.Errors) != 0 || len(res.Records) != 1 || res.Records[0].Groups[0] != okLong {
		t.Errorf("a row just under the limit: errors %q", messages(res.Errors))
	}

	// A stray quote followed by more than MaxRowBytes without a quote: the
	// lines it swallowed are read again.
	var b strings.Builder
	b.WriteString("1,\"Jane,Doe,jdoe\n")
	n := 0
	for b.Len() < MaxRowBytes+1000 {
		n++
		fmt.Fprintf(&b, "%d-", n)
		b.WriteString(strings.Repeat("z", 5000))
		b.WriteString(",Max,Bauer,m")
		b.WriteString(strings.Repeat("b", n))
		b.WriteString("\n")
	}
	res = read(t, b.String(), Options{})
	want = []string{`line 1, column 2 (first_name): a quoted value starts here but its closing quote (") is missing`}
	if got := messages(res.Errors); !reflect.DeepEqual(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
	if len(res.Records) != n {
		t.Errorf("%d records after a stray quote, want %d", len(res.Records), n)
	}
}

func TestReadPasswordsNeverInMessages(t *testing.T) {
	const pw = "Zq7Secret"
	rows := []string{
		"1,Jane,Doe,jdoe,,,Zq7Secret",          // valid
		"1,Max,Bauer,mbauer,,,Zq7Secret",       // duplicate id
		"2,Eve,Fox,efox,bad,,Zq7Secret",        // bad e-mail
		"3,Kim,Ito,kito,,,Zq7Secret\x07",       // control character
		"4,Ann,Lee,alee,,,\"Zq7Secret\nmore\"", // line break
		"5,Joe,Ray,jray,,,Zq7Secret\xff",       // invalid UTF-8
		"6,Ida,Roe,iroe,,,Zq7Secret,extra",     // too many fields
		"7,Lu,Wu,lwu,,,Zq7Secret\"x",           // bare quote
		"8,Bo,Li,bli,,,\"Zq7Secret\"x",         // text after quote
		"9,Al,Ng,ang,,,\"Zq7Secret",            // unterminated quote
	}
	in := strings.Join(rows, "\n") + "\n"
	for _, opts := range []Options{{}, {PasswordMinLength: 64}, {HashedPasswords: true}, {MaxErrors: 1}} {
		res := read(t, in, opts)
		if len(res.Errors) == 0 {
			t.Fatalf("%+v: no errors", opts)
		}
		for _, e := range res.Errors {
			if strings.Contains(e.Message, "Zq7") || strings.Contains(e.Error(), "Zq7") {
				t.Errorf("%+v: error reveals the password: %q", opts, e.Message)
			}
		}
		for _, w := range res.Warnings {
			if strings.Contains(w, pw) {
				t.Errorf("warning reveals the password: %q", w)
			}
		}
		if err := res.Err(); strings.Contains(err.Error(), "Zq7") {
			t.Errorf("Err() reveals the password: %v", err)
		}
	}
}

func TestReadHashedPasswords(t *testing.T) {
	in := "1,Jane,Doe,jdoe,,," + bcryptHash + "\n2,Max,Bauer,mbauer,,,\"" + argonHash + "\"\n3,Eve,Fox,efox,,,\n"
	res := read(t, in, Options{HashedPasswords: true})
	if len(res.Errors) != 0 {
		t.Fatalf("errors: %q", messages(res.Errors))
	}
	want := []string{bcryptHash, argonHash, ""}
	for i, r := range res.Records {
		if r.PasswordHash != want[i] || r.Password != "" {
			t.Errorf("record %d: Password %q, PasswordHash %q; want hash %q", i, r.Password, r.PasswordHash, want[i])
		}
	}
	for _, h := range []string{"$2y$12$" + bcryptHash[7:], "$2b$04$" + bcryptHash[7:]} {
		if !validHash(h) {
			t.Errorf("validHash(%q) = false", h)
		}
	}
	for _, h := range []string{
		"", "$2b$03$" + bcryptHash[7:], "$2c$10$" + bcryptHash[7:], bcryptHash + "x", bcryptHash[:59] + "!",
		"$argon2id$v=19$m=65536,t=3$c29tZXNhbHQ$RdescudvJCsgt3ub", "$argon2id$v=19$m=65536,t=3,p=4$$RdescudvJCsgt3ub",
		"$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ=$RdescudvJCsgt3ub", "$argon2id$v=x$m=1,t=1,p=1$c29tZXNhbHQ$Rdes",
	} {
		if validHash(h) {
			t.Errorf("validHash(%q) = true", h)
		}
	}
}

func TestReadStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Read(ctx, strings.NewReader("1,Jane,Doe,jdoe\n"), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestReadIOError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := iotest.TimeoutReader(strings.NewReader("1,Jane,Doe,jdoe\n"))
	if _, err := Read(context.Background(), r, Options{}); err == nil {
		t.Error("Read hid an I/O error")
	}
	_, err := Read(context.Background(), iotest.ErrReader(boom), Options{})
	if !errors.Is(err, boom) {
		t.Errorf("Read: %v, want it to wrap %v", err, boom)
	}
}

func TestReadOneByteAtATime(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.csv")
	if err != nil {
		t.Fatal(err)
	}
	whole := read(t, string(data), Options{})
	res, err := Read(context.Background(), iotest.OneByteReader(bytes.NewReader(data)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPasswordAt(t, data, res)
	if !reflect.DeepEqual(res, whole) {
		t.Errorf("reading byte by byte differs:\n%+v\n%+v", res, whole)
	}
}

func TestReadProgress(t *testing.T) {
	in := genRows(25000)
	var calls []int
	res := read(t, in, Options{Progress: func(lines int) { calls = append(calls, lines) }})
	want := []int{10000, 20000, 25000}
	if !reflect.DeepEqual(calls, want) || res.Lines != 25000 {
		t.Errorf("progress calls %v, want %v", calls, want)
	}
}

func TestFoldKeyAgreesWithEqualFold(t *testing.T) {
	words := []string{"jdoe", "JDoe", "JDOE", "jürgen", "JÜRGEN", "weiß", "WEISS", "weiss", "\u212aai", "kai", "KAI",
		"ſam", "Sam", "σς", "ΣΣ", "Σσ", "ǅ", "ǆ", "Ǆ", "", "a-b", "A-B", "İ", "i", "ı"}
	for _, a := range words {
		for _, b := range words {
			if got, want := sources.FoldKey(a) == sources.FoldKey(b), strings.EqualFold(a, b); got != want {
				t.Errorf("%q vs %q: same key %v, EqualFold %v", a, b, got, want)
			}
		}
	}
	if s := "jdoe"; sources.FoldKey(s) != s {
		t.Error("foldKey changed lower-case ASCII")
	}
}

func TestValidEmail(t *testing.T) {
	good := []string{"jane.doe@example.com", "o'brien@example.co.uk", "a+tag@sub.example.org", "x@müller.de", "jürgen@example.com",
		"first_last-1@ex-ample.com", "a@b.io", "UPPER@EXAMPLE.COM"}
	bad := []string{"", "bob@", "@example.com", "bob", "bob@example", "bob@@example.com", "a@b@example.com", "bob@.example.com",
		"bob@example..com", "bob@-example.com", "bob@example-.com", ".bob@example.com", "bob.@example.com", "b..b@example.com",
		"Bob <bob@example.com>", "bob smith@example.com", `"bob"@example.com`, "bob@[127.0.0.1]", "bob@127.0.0.1", "bob@example.c",
		"bob@exa mple.com", "bob(comment)@example.com", "bob@example.com.", strings.Repeat("a", 65) + "@example.com",
		"bob@" + strings.Repeat("a", 64) + ".com", "bob@example_test.com"}
	for _, s := range good {
		if !sources.ValidEmail(s) {
			t.Errorf("sources.ValidEmail(%q) = false, want true", s)
		}
	}
	for _, s := range bad {
		if sources.ValidEmail(s) {
			t.Errorf("sources.ValidEmail(%q) = true, want false", s)
		}
	}
}

// TestReadBadFiles compares the errors found in every testdata/bad/*.csv
// with its golden file; `go test -update` rewrites them. The CLI's tests
// read the same files.
func TestReadBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.csv")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad/*.csv: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Read(context.Background(), f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) == 0 {
				t.Fatal("no errors in a file under testdata/bad")
			}
			checkErrors(t, res)
			got := strings.Join(messages(res.Errors), "\n") + "\n"
			golden := strings.TrimSuffix(file, ".csv") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestReadBOMAndCRLFFile(t *testing.T) {
	data, err := os.ReadFile("testdata/bom_crlf.csv")
	if err != nil {
		t.Fatal(err)
	}
	res := read(t, string(data), Options{})
	if len(res.Errors) != 0 || len(res.Records) != 2 {
		t.Fatalf("errors %q, %d records", messages(res.Errors), len(res.Records))
	}
	if want := []string{"line 1: a UTF-8 byte order mark was removed"}; !reflect.DeepEqual(res.Warnings, want) {
		t.Errorf("warnings %q, want %q", res.Warnings, want)
	}
	if res.Records[0].ExternalID != "1001" || res.Records[1].FamilyName != "Weiß" {
		t.Errorf("records %+v", res.Records)
	}
}

func TestReadEach(t *testing.T) {
	data, err := os.ReadFile("testdata/valid.csv")
	if err != nil {
		t.Fatal(err)
	}
	whole := read(t, string(data), Options{})
	var got []sources.Record
	res := read(t, string(data), Options{Each: func(r sources.Record) error {
		got = append(got, r)
		return nil
	}})
	if len(res.Records) != 0 {
		t.Errorf("Each given, yet Result.Records holds %d records", len(res.Records))
	}
	checkPasswordAt(t, data, &Result{Records: got})
	if !reflect.DeepEqual(got, whole.Records) || res.SHA256 != whole.SHA256 || res.Lines != whole.Lines {
		t.Errorf("Each heard\n %+v\nwant the records Read returns\n %+v", got, whole.Records)
	}

	if len(res.IDs) != len(whole.Records) || res.IDs["00042"] != 1 || res.IDs["1005"] != 8 {
		t.Errorf("IDs = %v, want every id with its line", res.IDs)
	}

	// Duplicates are still found across records Read no longer holds.
	dup := read(t, "1,A,B,ab,,,\n2,C,D,cd,,,\n1,E,F,AB,,,\n", Options{Each: func(sources.Record) error { return nil }})
	want := []string{`line 3, column 1 (id): "1" is already used on line 1`, `line 3, column 4 (login): "AB" is already used on line 1`}
	if !reflect.DeepEqual(messages(dup.Errors), want) {
		t.Errorf("errors %q, want %q", messages(dup.Errors), want)
	}

	// Checked: an input validated before is not checked for duplicates.
	if again := read(t, "1,A,B,ab,,,\n1,E,F,AB,,,\n", Options{Checked: true}); len(again.Errors) != 0 || len(again.Records) != 2 {
		t.Errorf("Checked input: errors %q, %d records; want none and 2", messages(again.Errors), len(again.Records))
	}

	stop := errors.New("stop")
	n := 0
	_, err = Read(context.Background(), strings.NewReader(string(data)), Options{Each: func(sources.Record) error {
		n++
		return stop
	}})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("an error from Each: Read returned %v after %d records, want it at once", err, n)
	}
}

// TestReadLoginNFC: a login saved decomposed comes back in normalization
// form C, the form every source and SCIM store.
func TestReadLoginNFC(t *testing.T) {
	res, err := Read(context.Background(), strings.NewReader("1,Jose,Ruiz,jose\u0301\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].UserName != "jos\u00e9" {
		t.Errorf("records %+v, want the login jos\u00e9 composed", res.Records)
	}
}
