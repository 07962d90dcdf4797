package push

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func ptr(s string) *string { return &s }

func TestDecodeUsers(t *testing.T) {
	body := `{"dataType":"user","matchKey":"email","extra":1,"records":[
	 {"uid":1001,"username":" jdoe ","nickname":"Jane Doe","email":"jane@example.com","phone":"+49 30 1234","departments":["d-10",{"uid":"d-20","isMain":true,"isOwner":true},"d-10"],"isDeleted":false,"position":"x"},
	 {"uid":"0042","email":"kim@example.com","departments":[]},
	 {"uid":"7","email":"old@example.com","nickname":null,"isDeleted":true}]}`
	p, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []User{
		{Index: 0, UID: "1001", UserName: ptr("jdoe"), NickName: ptr("Jane Doe"), Email: ptr("jane@example.com"), Phone: ptr("+49 30 1234"),
			Departments: []DeptRef{{UID: "d-10"}, {UID: "d-20", IsMain: true, IsOwner: true}},
			Custom:      []Field{{Name: "position", Value: "x", Text: true, Raw: json.RawMessage(`"x"`)}}},
		{Index: 1, UID: "0042", Email: ptr("kim@example.com"), Departments: []DeptRef{}},
		{Index: 2, UID: "7", Email: ptr("old@example.com"), IsDeleted: true},
	}
	if p.DataType != DataUser || p.MatchKey != MatchEmail || !reflect.DeepEqual(p.Users, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	if got := p.Users[0].MainDepartment(); got != "d-20" {
		t.Errorf("main department = %q, want d-20 (isMain)", got)
	}
	if got := p.Users[1].MainDepartment(); got != "" {
		t.Errorf("main department of a user without departments = %q", got)
	}
	// What roster stores reads back as the same payload.
	enc, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(enc)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	if string(p.Raw) != body {
		t.Errorf("Raw is not the body Decode read")
	}
	again.Raw, p.Raw = nil, nil // the bodies differ; the payloads must not
	if !reflect.DeepEqual(again, p) {
		t.Fatalf("round trip changed the payload:\n%+v\n%+v", again, p)
	}
}

func TestDecodeDepartments(t *testing.T) {
	p, err := Decode([]byte(`{"dataType":"department","records":[
		{"uid":"d-10","title":"Research","parentUid":"d-1","costCenter":"CC-7","site":{"city":"Berlin"},"note":null},
		{"uid":"d-1","title":"Company"},
		{"uid":2,"isDeleted":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Department{
		{Index: 0, UID: "d-10", Title: ptr("Research"), ParentUID: ptr("d-1"), Custom: []Field{
			{Name: "costCenter", Value: "CC-7", Text: true, Raw: json.RawMessage(`"CC-7"`)},
			{Name: "site", Value: `{"city":"Berlin"}`, Raw: json.RawMessage(`{"city":"Berlin"}`)}}},
		{Index: 1, UID: "d-1", Title: ptr("Company")},
		{Index: 2, UID: "2", IsDeleted: true},
	}
	if p.MatchKey != MatchUID || !reflect.DeepEqual(p.Departments, want) {
		t.Fatalf("got %+v", p.Departments)
	}
	// What roster stores keeps the custom fields, so that the task that
	// applies it can name them.
	enc, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(enc)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	again.Raw, p.Raw = nil, nil
	if !reflect.DeepEqual(again, p) {
		t.Fatalf("round trip changed the payload:\n%s\n%+v\n%+v", enc, again.Departments, p.Departments)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string // every message, in order
	}{
		{"not json", `{"dataType":`, []string{"the body is not a JSON object"}},
		{"trailing data", `{"dataType":"user","records":[]} {}`, []string{"unexpected data after the JSON object"}},
		{"invalid utf-8", "{\"dataType\":\"user\",\"records\":[{\"uid\":\"a\xff\"}]}", []string{"not valid UTF-8 (first bad byte at offset 39)"}},
		{"no data type", `{"records":[]}`, []string{`dataType: is required`}},
		{"bad data type", `{"dataType":"group","records":[]}`, []string{`dataType: must be "user" or "department", not "group"`}},
		{"bad match key", `{"dataType":"user","matchKey":"id","records":[]}`, []string{`matchKey: must be "uid", "username", "email" or "phone"`}},
		{"no records", `{"dataType":"user"}`, []string{"records: is required"}},
		{"records not an array", `{"dataType":"user","records":{}}`, []string{"records: must be an array"}},
		{"one bad record in the middle", `{"dataType":"user","records":[{"uid":"1","username":"a"},{"uid":"2","username":"b","email":"bob@"},{"uid":"3","username":"c"}]}`,
			[]string{`records[1] (email): "bob@" is not a valid e-mail address`}},
		{"every problem at once", `{"dataType":"user","records":[{"username":"a"},{"uid":"2","username":5},{"uid":"3","isDeleted":"yes"},7,{"uid":"2","username":"x\u0007"}]}`,
			[]string{"records[0] (uid): is required", "records[1] (username): must be a string, not a number",
				"records[2] (isDeleted): must be true or false, not a string", "records[3]: must be a JSON object",
				"records[4] (username): contains the control character U+0007"}},
		{"duplicates", `{"dataType":"user","records":[{"uid":"1","username":"Ann"},{"uid":"1","username":"bob"},{"uid":"3","username":"ANN"}]}`,
			[]string{`records[1] (uid): "1" is already used by records[0]`, `records[2] (username): "ANN" is already used by records[0]`}},
		{"match key missing", `{"dataType":"user","matchKey":"email","records":[{"uid":"1","username":"a"}]}`,
			[]string{`records[0] (email): is required: the payload's matchKey is "email"`}},
		{"empty username", `{"dataType":"user","records":[{"uid":"1","username":" "}]}`, []string{"records[0] (username): must not be empty"}},
		{"bad departments", `{"dataType":"user","records":[{"uid":"1","departments":"d-1"},{"uid":"2","departments":[{"isMain":true}]},{"uid":"3","departments":[{"uid":"a","isMain":true},{"uid":"b","isMain":true}]}]}`,
			[]string{"records[0] (departments): must be an array", "records[1] (departments): holds an entry without a department uid",
				"records[2] (departments): marks 2 departments as isMain"}},
		{"department problems", `{"dataType":"department","records":[{"title":"x"},{"uid":"a","title":""},{"uid":"b","title":"B","parentUid":"b"}]}`,
			[]string{"records[0] (uid): is required", "records[1] (title): must not be empty", "records[2] (parentUid): is the department itself"}},
		{"department cycle", `{"dataType":"department","records":[{"uid":"a","title":"A","parentUid":"b"},{"uid":"b","title":"B","parentUid":"c"},{"uid":"c","title":"C","parentUid":"a"},{"uid":"d","title":"D","parentUid":"a"}]}`,
			[]string{`records[0] (parentUid): makes department "a" its own ancestor`, `records[1] (parentUid): makes department "b" its own ancestor`,
				`records[2] (parentUid): makes department "c" its own ancestor`}},
		{"too long", `{"dataType":"user","records":[{"uid":"1","nickname":"` + strings.Repeat("x", 1025) + `"}]}`, []string{"records[0] (nickname): is longer than 1024 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			perr, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T %v, want *Error", err, err)
			}
			if len(perr.Errors) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d", len(perr.Errors), perr.Errors, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(perr.Errors[i].Message, w) {
					t.Errorf("error %d = %q, want it to contain %q", i, perr.Errors[i].Message, w)
				}
			}
		})
	}
}

func TestErrorIndexAndField(t *testing.T) {
	_, err := Decode([]byte(`{"dataType":"user","records":[{"uid":"1"},{"uid":"2","email":"x"}]}`))
	e := err.(*Error).Errors[0]
	if e.Index != 1 || e.Field != "email" {
		t.Fatalf("got %+v, want index 1, field email", e)
	}
}

// TestEncodeBytes: the stored form of a push, record by record, is what
// encoding the records as one array gave: custom fields compacted, HTML
// characters escaped, "no departments" kept, departments after users.
func TestEncodeBytes(t *testing.T) {
	p, err := Decode([]byte(`{"sourceName":"hr","dataType":"user","matchKey":"email","records":[
		{"uid":"1","email":"a@example.com","username":"a<b>","departments":[],"x-team": [ 1, "two" ]},
		{"uid":"2","email":"b@example.com","departments":["d1",{"uid":"d2","isMain":true}]},
		{"uid":"3","email":"c@example.com","isDeleted":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"sourceName":"hr","dataType":"user","matchKey":"email","records":[` +
		`{"uid":"1","username":"a\u003cb\u003e","email":"a@example.com","departments":[],"x-team":[1,"two"]},` +
		`{"uid":"2","email":"b@example.com","departments":[{"uid":"d1"},{"uid":"d2","isMain":true}]},` +
		`{"uid":"3","email":"c@example.com","isDeleted":true}]}`
	if string(got) != want {
		t.Errorf("Encode:\n got %s\nwant %s", got, want)
	}
	empty, err := Encode(&Payload{DataType: DataDepartment})
	if err != nil || string(empty) != `{"dataType":"department","records":[]}` {
		t.Errorf("an empty payload: %s %v", empty, err)
	}
}
