package csv

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rosterd/roster/sources"
)

func TestWriteReadRoundTrip(t *testing.T) {
	recs := []sources.Record{
		{ExternalID: "000123", GivenName: "Jürgen", FamilyName: "Weiß", UserName: "jweiss", Email: "juergen.weiss@example.com",
			Groups: []string{"Engineering", "Berlin"}, PasswordHash: bcryptHash},
		{ExternalID: "000124", GivenName: `Maximilian "Max"`, FamilyName: "Müller, Jr.", UserName: "mmueller", PasswordHash: argonHash},
		{ExternalID: "000125", GivenName: "Zoë", FamilyName: "de\tVries", UserName: "zdevries", Groups: []string{"Sales, EMEA", `"Quoted"`}},
		{ExternalID: "1", GivenName: "A", FamilyName: "B", UserName: "c"},
	}
	var buf bytes.Buffer
	if err := Write(&buf, recs); err != nil {
		t.Fatal(err)
	}
	wantText := "000123,Jürgen,Weiß,jweiss,juergen.weiss@example.com,Engineering|Berlin," + bcryptHash + "\n" +
		`000124,"Maximilian ""Max""","Müller, Jr.",mmueller,,,"` + argonHash + "\"\n" +
		"000125,Zoë,de\tVries,zdevries,,\"Sales, EMEA|\"\"Quoted\"\"\",\n" +
		"1,A,B,c,,,\n"
	if got := buf.String(); got != wantText {
		t.Errorf("Write wrote\n%s\nwant\n%s", got, wantText)
	}
	res := read(t, buf.String(), Options{HashedPasswords: true})
	if len(res.Errors) != 0 {
		t.Fatalf("errors reading back: %q", messages(res.Errors))
	}
	if got := withoutLines(res.Records); !reflect.DeepEqual(got, recs) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, recs)
	}
}

func TestWriteNeverWritesClearPasswords(t *testing.T) {
	recs := []sources.Record{{ExternalID: "1", GivenName: "Jane", FamilyName: "Doe", UserName: "jdoe", Password: "Zq7Secret-clear", PasswordHash: bcryptHash}}
	var buf bytes.Buffer
	if err := Write(&buf, recs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "Zq7Secret") || !strings.Contains(buf.String(), bcryptHash) {
		t.Errorf("Write wrote %q: want the hash and never the clear password", buf.String())
	}
}

func TestWriteRefusesSeparatorInGroup(t *testing.T) {
	recs := []sources.Record{{ExternalID: "1", GivenName: "Jane", FamilyName: "Doe", UserName: "jdoe", Groups: []string{"a|b"}}}
	if err := Write(&bytes.Buffer{}, recs); err == nil {
		t.Error(`Write accepted a group containing "|"`)
	}
}

// FuzzRead checks what must hold for any input: no panic, errors that name
// a line and say something, records whose required fields are set, and
// records that survive Write and Read unchanged.
func FuzzRead(f *testing.F) {
	for _, pattern := range []string{"testdata/*.csv", "testdata/bad/*.csv", "../../deploy/examples/staff.csv"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, false)
		}
	}
	f.Add([]byte("1,Jane,Doe,jdoe,,,"+bcryptHash+"\n2,Max,Bauer,mbauer,,,\""+argonHash+"\"\n"), true)
	f.Add([]byte("1,\"a\nb\"\"\",c,d\r\n\"\n"), false)

	f.Fuzz(func(t *testing.T, data []byte, hashed bool) {
		// Every span that may hold a password, in file order: the valid
		// rows' password cells and what Redact is given.
		var spans []sources.Span
		opts := Options{HashedPasswords: hashed, MaxErrors: 50, Redact: func(s sources.Span) { spans = append(spans, s) },
			Each: func(r sources.Record) error {
				if !r.PasswordAt.Empty() {
					spans = append(spans, r.PasswordAt)
				}
				return nil
			}}
		if _, err := Read(context.Background(), bytes.NewReader(data), opts); err != nil {
			t.Fatalf("Read: %v", err)
		}
		end := int64(0)
		for _, s := range spans {
			if s.Empty() || s.Start < end || s.End > int64(len(data)) {
				t.Fatalf("span %+v after %d in %d bytes: spans %+v", s, end, len(data), spans)
			}
			end = s.End
		}
		var raw bytes.Buffer
		rw := NewRewriter(&raw, bytes.NewReader(data))
		for _, s := range spans {
			if err := rw.Replace(s, "X"); err != nil {
				t.Fatal(err)
			}
		}
		opts.Each, opts.Redact = nil, nil
		res, err := Read(context.Background(), bytes.NewReader(data), opts)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if sum, err := rw.Finish(); err != nil || sum != res.SHA256 {
			t.Fatalf("Rewriter: %s %v, want the input's digest %s", sum, err, res.SHA256)
		}
		checkPasswordAt(t, data, res)
		checkErrors(t, res)
		if len(res.Errors) > opts.MaxErrors+1 {
			t.Errorf("%d errors, more than the cap", len(res.Errors))
		}
		if res.Lines > bytes.Count(data, []byte{'\n'})+1 {
			t.Errorf("Lines = %d for %d line feeds", res.Lines, bytes.Count(data, []byte{'\n'}))
		}
		last := 0
		for _, r := range res.Records {
			if r.ExternalID == "" || r.GivenName == "" || r.FamilyName == "" || r.UserName == "" {
				t.Errorf("record on line %d lacks a required field: %+v", r.Line, r)
			}
			if r.Line <= last || r.Line > res.Lines {
				t.Errorf("record line %d after %d of %d lines", r.Line, last, res.Lines)
			}
			last = r.Line
		}

		var buf bytes.Buffer
		if err := Write(&buf, res.Records); err != nil {
			t.Fatalf("Write: %v", err)
		}
		// Write keeps hashes, not clear passwords, so only a hashed read
		// comes back whole.
		want := withoutLines(res.Records)
		for i := range want {
			want[i].Password = ""
		}
		back, err := Read(context.Background(), &buf, Options{HashedPasswords: true})
		if err != nil {
			t.Fatalf("Read after Write: %v", err)
		}
		if len(back.Errors) != 0 {
			t.Fatalf("the written records are invalid: %q", messages(back.Errors))
		}
		if got := withoutLines(back.Records); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}
	})
}
