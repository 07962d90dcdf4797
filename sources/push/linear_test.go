package push

import (
	"fmt"
	"strings"
	"testing"
)

// TestDecodeWorkIsLinear: validating four times the records costs about
// four times the work, not sixteen, for the shapes that were quadratic:
// long chains of departments (either order) and users with many
// departments. Work is counted in steps, not measured on a clock.
func TestDecodeWorkIsLinear(t *testing.T) {
	reverseChain := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"dataType":"department","records":[`)
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&b, `{"uid":"d-%d","title":"D %d","parentUid":"d-%d"}`, i, i, i-1)
			if i > 0 {
				b.WriteByte(',')
			}
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	for _, c := range []struct {
		name string
		body func(n int) []byte
	}{
		{"chain, parents first", chainBody},
		{"chain, children first", reverseChain},
		{"a user with many departments", func(n int) []byte { return wideBody(1, n/4) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := func(n int) int {
				d := &decoder{}
				if _, err := d.decode(c.body(n)); err != nil {
					t.Fatal(err)
				}
				return d.work
			}
			small, large := work(1000), work(4000)
			if small == 0 || large > 5*small {
				t.Fatalf("work for 1,000 records: %d, for 4,000: %d (%.1f times, want about 4)", small, large, float64(large)/float64(max(small, 1)))
			}
		})
	}
}

// TestDecodeBoundsDepartments: a user with more departments than
// maxDepartments is refused, naming the record and the field.
func TestDecodeBoundsDepartments(t *testing.T) {
	if _, err := Decode(wideBody(1, maxDepartments)); err != nil {
		t.Fatalf("%d departments refused: %v", maxDepartments, err)
	}
	body := strings.Replace(string(wideBody(1, maxDepartments+1)), `[{`, `[{"uid":"u-x","departments":["d-1"]},{`, 1)
	_, err := Decode([]byte(body))
	perr, ok := err.(*Error)
	if !ok || len(perr.Errors) != 1 {
		t.Fatalf("error = %v, want one for records[1]", err)
	}
	got := perr.Errors[0]
	want := fmt.Sprintf("records[1] (departments): lists %d departments; a user may have at most %d", maxDepartments+1, maxDepartments)
	if got.Index != 1 || got.Field != "departments" || got.Message != want {
		t.Fatalf("error = %+v, want index 1, field departments, %q", got, want)
	}
}
