package tasks

import (
	"bytes"
	"testing"

	"github.com/rosterd/roster/sources/httpapi"
)

// FuzzRawPages: whatever the upstream sends, an http source's raw record
// gives back every page byte for byte.
func FuzzRawPages(f *testing.F) {
	f.Add([]byte("{\"data\": [{\"id\": 1}]}\n"), []byte(`{"data": [{"id": 1,`))
	f.Add([]byte(" \t[]\r\n"), []byte("\xff\xfe not UTF-8"))
	f.Add([]byte(`"text"`), []byte(""))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var raw bytes.Buffer
		pw := &pageWriter{w: &raw, source: "hr"}
		for i, body := range [][]byte{a, b} {
			if err := pw.page(httpapi.Page{Number: i + 1, URL: "https://hr.example.com/people?page=1", Status: 200,
				ContentType: "application/json", Body: body}); err != nil {
				t.Fatal(err)
			}
		}
		if err := pw.close(); err != nil {
			t.Fatal(err)
		}
		bodies, err := RawPages(raw.Bytes())
		if err != nil {
			t.Fatalf("RawPages: %v\n%s", err, raw.Bytes())
		}
		if len(bodies) != 2 || !bytes.Equal(bodies[0], a) || !bytes.Equal(bodies[1], b) {
			t.Fatalf("pages %q, want %q and %q\n%s", bodies, a, b, raw.Bytes())
		}
	})
}
