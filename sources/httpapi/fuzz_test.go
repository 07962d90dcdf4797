package httpapi

import (
	"bytes"
	"testing"
)

func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{
		`[]`,
		`[{"externalId":"1","userName":"a","email":"a@example.com","groups":["x","X"],"active":"TRUE"}]`,
		`{"data":[{"id":1e400,"login":{"name":"b\u0000"}},{"id":"1","login":{"name":"B"}}],"next":"?p=2"}`,
		`{"data":[1,2]}`, `{"data":null,"next":5}`, `[{"externalId":[],"groups":{"a":null},"active":3}]`,
		`[{"externalId":"\ud800","userName":"x\uFEFF","email":"@@"}]`, `[`, ``, `"x"`, `[] x`,
	} {
		f.Add([]byte(s))
	}
	maps := []*mapping{}
	for _, c := range []struct {
		records, next string
		m             map[string]string
	}{
		{"", "", nil},
		{"/data", "/next", map[string]string{"externalId": "/id", "userName": "/login/name", "groups": "/", "active": "/a~1b", "email": "/0"}},
	} {
		m, err := compileMapping(c.records, c.next, c.m)
		if err != nil {
			f.Fatal(err)
		}
		maps = append(maps, m)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range maps {
			v := newValidator(m)
			recs, _, err := readPage(bytes.NewReader(body), 1<<20, m, v, 0)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty page error")
				}
				continue
			}
			for i, r := range recs {
				if r.Line != i+1 {
					t.Fatalf("record %d has line %d", i+1, r.Line)
				}
			}
			for _, fe := range v.errs {
				if fe.Message == "" || fe.Line < 1 || fe.Line > len(recs) {
					t.Fatalf("bad FieldError %+v", fe)
				}
			}
		}
	})
}
