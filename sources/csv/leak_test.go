package csv

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/sources"
)

// TestReadSwallowedPasswordsNeverQuoted: a stray quote or a lost comma
// moves a row's password cell into another column's value; no message
// may quote that value (issue 16, defect 2).
func TestReadSwallowedPasswordsNeverQuoted(t *testing.T) {
	var valid strings.Builder
	for i := 1; i <= 2012; i++ {
		fmt.Fprintf(&valid, "%d,Ann,Lee,user%d,,,\n", i, i)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{{
		name: "the issue's file: a quote that closes a line later",
		in:   valid.String() + "2013,\"Pw,Leak,pwleak,,,\n2014,Next,Line,nextl,,,NextLinePassw0rdLEAK\"\n",
		want: []string{
			`line 2013, column 2 (first_name): the quoted value runs on to line 2014, but a value holds no line break: is its closing quote (") missing? (not shown: it may hold other rows)`,
			`line 2014, column 3 (last_name): the field is missing; a row has at least 4 fields, this one has 2`,
			`line 2014, column 4 (login): the field is missing; a row has at least 4 fields, this one has 2`,
		},
	}, {
		name: "a groups value that runs on into the next row",
		in:   "1,Ann,Lee,alee,,\"Sales\n2,Max,Bauer,mbauer,,,Passw0rdLEAK\"\n",
		want: []string{
			`line 1, column 6 (groups): the quoted value runs on to line 2, but a value holds no line break: is its closing quote (") missing? (not shown: it may hold other rows)`,
		},
	}, {
		name: "a quoted value around several cells",
		in:   "1,Ann,Lee,alee,\"ann@,,Passw0rdLEAK\",,\n",
		want: []string{
			`line 1, column 5 (email): the value (18 characters, not shown: a quoted value with commas may hold other cells) is not a valid e-mail address`,
		},
	}, {
		name: "a password that lost its commas",
		in:   "1,Ann,Lee,alee,Passw0rdLEAK\n",
		want: []string{
			`line 1, column 5 (email): the value (12 characters, not shown: the last value of a row of 5 fields may be a password) is not a valid e-mail address`,
		},
	}, {
		name: "a password that lost its commas, with a control character",
		in:   "1,Ann,Lee,alee,,Passw0rd\x01LEAK\n",
		want: []string{
			`line 1, column 6 (groups): the value (13 characters, not shown: the last value of a row of 6 fields may be a password) contains the control character U+0001`,
		},
	}, {
		name: "a swallowed password that is not UTF-8",
		in:   "1,\"Ann,Lee,alee,,,Passw0rd\xffLEAK\",Lee,alee,,,\n",
		want: []string{
			`line 1, column 2 (first_name): the value is not valid UTF-8; save the file as UTF-8`,
		},
	}, {
		name: "a login twice, the second one maybe a password",
		in:   "1,Ann,Lee,Passw0rdLEAK,,,\n2,Max,Bauer,Passw0rdLEAK\n",
		want: []string{
			`line 2, column 4 (login): the value (12 characters, not shown: the last value of a row of 4 fields may be a password) is already used on line 1`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := read(t, tt.in, Options{})
			if got := messages(res.Errors); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %q\nwant %q", got, tt.want)
			}
			if err := res.Err(); err == nil || strings.Contains(err.Error(), "LEAK") {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

// leakMarker is planted as the password of every row; fuzzed cells never
// hold a Q, so a Q in a message is a piece of the marker.
const leakMarker = "QzPassw0rdLEAK"

// FuzzPasswordNeverInErrors plants a marker in the password column of
// rows whose other cells are arbitrary bytes (stray quotes, commas, line
// breaks, control characters, invalid UTF-8) and checks that no error,
// warning or summary shows any of it.
func FuzzPasswordNeverInErrors(f *testing.F) {
	for _, seed := range [][]byte{
		[]byte("2013\x1f\"Pw\x1fLeak\x1fpwleak\x1f\x1f\x1f2014\x1fNext\x1fLine\x1fnextl\x1f\x1f"),
		[]byte("1\x1fAnn\x1fLee\x1falee\x1f\x1f"),
		[]byte("1\x1fAnn\x1fLee\x1falee\x1fx\n2,a,b\x1f\x01"),
		[]byte("1\x1f\"Ann\x1fLee\x1falee\x1f\x1f\x1f\x1f2\x1fB\"\x1fC\x1fd\x1f\x1f"),
		[]byte("\"\x1f\x1f\x1f\x1f\x1f\x1f\n1,a\x1f\"\x1f\x1f\x1f"),
	} {
		f.Add(seed, false, uint8(8))
	}
	f.Fuzz(func(t *testing.T, data []byte, crlf bool, minLen uint8) {
		data = bytes.ReplaceAll(data, []byte("Q"), nil)
		var in bytes.Buffer
		cells := bytes.Split(data, []byte{0x1f})
		for len(cells) > 0 {
			n := min(len(cells), colPassword-1)
			in.Write(bytes.Join(cells[:n], []byte{','}))
			cells = cells[n:]
			in.WriteString(strings.Repeat(",", colPassword-1-n))
			in.WriteString("," + leakMarker)
			if crlf {
				in.WriteString("\r\n")
			} else {
				in.WriteString("\n")
			}
		}
		for _, opts := range []Options{{PasswordMinLength: int(minLen)}, {MaxErrors: 3}, {Each: func(sources.Record) error { return nil }}} {
			res, err := Read(context.Background(), bytes.NewReader(in.Bytes()), opts)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			texts := append([]string{}, res.Warnings...)
			for _, e := range res.Errors {
				texts = append(texts, e.Message, e.Error(), e.Field)
			}
			if err := res.Err(); err != nil {
				texts = append(texts, err.Error())
			}
			for _, s := range texts {
				if strings.Contains(s, "Q") {
					t.Fatalf("a message shows the password planted in\n%q:\n%s", in.String(), s)
				}
			}
		}
	})
}
