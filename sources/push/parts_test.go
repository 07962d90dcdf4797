package push

import (
	"errors"
	"reflect"
	"testing"
)

// TestDecodeParts: a stored payload read n records at a time gives
// Decode's records, in order and with their indexes, in parts of n (the
// last one shorter, none empty unless the payload has no records), each
// with the payload's head; a record that fails its own checks ends with
// an *Error naming it, and fn's error comes back as it came.
func TestDecodeParts(t *testing.T) {
	users := `{"dataType":"user","matchKey":"email","records":[{"uid":"1","email":"a@example.com"},{"uid":"2","email":"b@example.com"},
		{"uid":"3","email":"c@example.com"},{"uid":"4","email":"d@example.com"},{"uid":"5","email":"e@example.com"}]}`
	depts := `{"dataType":"department","records":[{"uid":"d-1","title":"One"},{"uid":"d-2","title":"Two","parentUid":"d-1"}]}`
	for _, c := range []struct {
		body  string
		n     int
		sizes []int
	}{
		{users, 2, []int{2, 2, 1}},
		{users, 5, []int{5}},
		{users, 9, []int{5}},
		{users, 0, []int{1, 1, 1, 1, 1}},
		{depts, 1, []int{1, 1}},
		{`{"dataType":"user","records":[]}`, 3, []int{0}},
	} {
		whole, err := Decode([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		var users []User
		var deps []Department
		err = DecodeParts([]byte(c.body), c.n, func(p *Payload) error {
			if p.DataType != whole.DataType || p.MatchKey != whole.MatchKey {
				t.Errorf("part head %q %q, want %q %q", p.DataType, p.MatchKey, whole.DataType, whole.MatchKey)
			}
			sizes = append(sizes, len(p.Users)+len(p.Departments))
			users, deps = append(users, p.Users...), append(deps, p.Departments...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sizes, c.sizes) || !reflect.DeepEqual(users, whole.Users) || !reflect.DeepEqual(deps, whole.Departments) {
			t.Errorf("%.40s in parts of %d: sizes %v (want %v), users %+v, departments %+v", c.body, c.n, sizes, c.sizes, users, deps)
		}
	}
	err := DecodeParts([]byte(`{"dataType":"user","records":[{"uid":"1","username":"a"},{"uid":""}]}`), 10, func(*Payload) error { return nil })
	var invalid *Error
	if !errors.As(err, &invalid) || len(invalid.Errors) != 1 || invalid.Errors[0].Index != 1 {
		t.Errorf("an invalid record: %v", err)
	}
	stop := errors.New("stop")
	if err := DecodeParts([]byte(users), 2, func(*Payload) error { return stop }); err != stop {
		t.Errorf("fn's error: %v", err)
	}
}
