package push

import (
	"bytes"
	"strings"
	"testing"
)

// TestDecodeSwallowedPasswordNeverQuoted: a value that ran on over the
// members after it (its quotes escaped wrongly) is described, not quoted,
// and every quoted value is cut to a readable length (issue 16, defect 2).
func TestDecodeSwallowedPasswordNeverQuoted(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		body string
		want string
	}{
		{`{"dataType":"user","records":[{"uid":"1","email":"ann@\",\"password\":\"Passw0rdLEAK"}]}`,
			`records[0] (email): the value (30 characters, not shown: it holds a quote and may hold other members) is not a valid e-mail address`},
		{`{"dataType":"user\",\"records\":[{\"password\":\"Passw0rdLEAK\"}]","records":[]}`,
			`dataType: must be "user" or "department", not the value (45 characters, not shown: it holds a quote and may hold other members)`},
		{`{"dataType":"user","matchKey":"uid\",\"password\":\"Passw0rdLEAK","records":[]}`,
			`matchKey: must be "uid", "username", "email" or "phone", not the value (29 characters, not shown: it holds a quote and may hold other members)`},
		{`{"dataType":"user","records":[{"uid":"1","username":"a\",\"password\":\"Passw0rdLEAK"},{"uid":"2","username":"A\",\"password\":\"Passw0rdLEAK"}]}`,
			`records[1] (username): the value (27 characters, not shown: it holds a quote and may hold other members) is already used by records[0]`},
		{`{"dataType":"user","records":[{"uid":"1","email":"bob@"}]}`,
			`records[0] (email): "bob@" is not a valid e-mail address`},
		{`{"dataType":"user","records":[{"uid":"1","email":"` + long + `"}]}`,
			`records[0] (email): "` + strings.Repeat("x", 64) + `"... (1000 characters) is not a valid e-mail address`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.body))
		perr, ok := err.(*Error)
		if !ok {
			t.Fatalf("%s: error %v, want *Error", tt.body, err)
		}
		var got []string
		for _, e := range perr.Errors {
			got = append(got, e.Message)
		}
		if len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.body, got, tt.want)
		}
		if strings.Contains(perr.Error(), "LEAK") {
			t.Errorf("%s: Error() = %s", tt.body, perr.Error())
		}
	}
}

// pushMarker is the password every fuzzed record carries; fuzzed text
// never holds a Q, so a Q in a message is a piece of the marker.
const pushMarker = "QzPassw0rdLEAK"

// FuzzPasswordNeverInPushErrors: records carry a password member beside
// members whose raw JSON is arbitrary (unclosed strings, wrong escapes,
// wrong types); whatever Decode says of the body, no message shows any
// of the password.
func FuzzPasswordNeverInPushErrors(f *testing.F) {
	sep := "\x1f"
	f.Add(`"user"` + sep + `"uid"` + sep + `"1"` + sep + `"a"` + sep + `"a@b\",\"x\":\"`)
	f.Add(`"user"` + sep + `"email"` + sep + `"1"` + sep + `"a\",\"password\":\"` + sep + `"x@y.de"`)
	f.Add(`"user\",\"records\":[{\"password\":\"` + sep + sep + `1` + sep + `"a"` + sep + `"b`)
	f.Add(`"department"` + sep + `"uid"` + sep + `"d\"` + sep + `"t"` + sep + `"d\"`)
	f.Fuzz(func(t *testing.T, in string) {
		in = strings.ReplaceAll(in, "Q", "")
		parts := strings.Split(in, sep)
		part := func(i int) string {
			if i < len(parts) {
				return parts[i]
			}
			return "null"
		}
		var body bytes.Buffer
		body.WriteString(`{"dataType":` + part(0) + `,"matchKey":` + part(1) + `,"records":[`)
		for r := 0; r < 2; r++ {
			if r > 0 {
				body.WriteString(",")
			}
			body.WriteString(`{"uid":` + part(2) + `,"username":` + part(3) + `,"password":"` + pushMarker +
				`","email":` + part(4) + `,"title":` + part(3) + `,"parentUid":` + part(2) + `,"nickname":` + part(5) + `}`)
		}
		body.WriteString(`]}`)
		_, err := Decode(body.Bytes())
		if err == nil {
			return
		}
		texts := []string{err.Error()}
		for _, e := range err.(*Error).Errors {
			texts = append(texts, e.Message, e.Field)
		}
		for _, s := range texts {
			if strings.Contains(s, "Q") {
				t.Fatalf("a message shows the password planted in\n%s:\n%s", body.String(), s)
			}
		}
	})
}
