package push

import (
	"reflect"
	"testing"
)

// FuzzDecode: any body is either refused with messages or decoded into a
// payload that survives the round trip through what roster stores.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"dataType":"user","matchKey":"email","records":[{"uid":1,"username":"a","email":"a@b.de","departments":["x",{"uid":"y","isMain":true}]}]}`))
	f.Add([]byte(`{"dataType":"department","records":[{"uid":"a","title":"A","parentUid":"b"},{"uid":"b","title":"B"}]}`))
	f.Add([]byte(`{"dataType":"user","records":[{"uid":"1","departments":[]},{"uid":"2","isDeleted":true}]}`))
	f.Add([]byte(`[[[[[[[[]]]]]]]]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Decode(body)
		if err != nil {
			for _, e := range err.(*Error).Errors {
				if e.Message == "" {
					t.Fatalf("an error without a message: %+v", e)
				}
			}
			return
		}
		enc, err := Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("stored payload %s refused: %v", enc, err)
		}
		again.Raw, p.Raw = nil, nil // the bodies differ; the payloads must not
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip changed the payload:\n%+v\n%+v", again, p)
		}
	})
}
