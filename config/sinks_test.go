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
