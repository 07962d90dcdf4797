package config

import "testing"

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr bool
	}{
		{"10/s", 10, false},
		{"600/m", 10, false},
		{"36000/h", 10, false},
		{" 2.5 / s ", 2.5, false},
		{"7", 7, false},
		{"0", 0, false},
		{"10/d", 0, true},
		{"-1/s", 0, true},
		{"NaN", 0, true},
		{"fast", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if s := Rate(10).String(); s != "10/s" {
		t.Errorf("String() = %q", s)
	}
}

// FuzzParseRate checks that any text either parses to a finite rate that
// prints back to the same rate, or is refused.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "600/m", "1e9/h", "0", " 2.5 / s ", "-1", "NaN/s", "Inf", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r < 0 || float64(r) > 1e9 {
			t.Fatalf("ParseRate(%q) = %v", s, r)
		}
		again, err := ParseRate(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRate(%q) = %v, which prints as %q and parses to %v, %v", s, r, r.String(), again, err)
		}
	})
}
