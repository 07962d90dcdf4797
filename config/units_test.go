package config

import (
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "720h", want: 720 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "30s", want: 30 * time.Second},
		{in: "0", want: 0},
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "0d", want: 0},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2d30m15s", want: 48*time.Hour + 30*time.Minute + 15*time.Second},
		{in: " 7d ", want: 7 * 24 * time.Hour},
		{in: "-5m", want: -5 * time.Minute},
		{in: "-1d", want: -24 * time.Hour},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "", err: "not a valid duration"},
		{in: "30", err: "not a valid duration"},
		{in: "30 days", err: "not a valid duration"},
		{in: "1.5d", err: "not a valid duration"},
		{in: "d", err: "not a valid duration"},
		{in: "1d2d", err: "not a valid duration"},
		{in: "1d-2h", err: "not a valid duration"},
		{in: "1d+2h", err: "not a valid duration"},
		{in: "--1d", err: "not a valid duration"},
		{in: "1w", err: "not a valid duration"},
		{in: "106752d", err: "too long"},
		{in: "106751d24h", err: "too long"},
		{in: "99999999999999999999d", err: "too long"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
		case err != nil || time.Duration(got) != tt.want:
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{720 * time.Hour, "30d"},
		{24 * time.Hour, "1d"},
		{36 * time.Hour, "36h0m0s"},
		{90 * time.Minute, "1h30m0s"},
		{0, "0s"},
		{-48 * time.Hour, "-2d"},
	}
	for _, tt := range tests {
		s := Duration(tt.d).String()
		if s != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.d, s, tt.want)
		}
		if back, err := ParseDuration(s); err != nil || time.Duration(back) != tt.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, back, err, tt.d)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  string
	}{
		{in: "1000", want: 1000},
		{in: "0", want: 0},
		{in: "512KiB", want: 512 << 10},
		{in: "10MiB", want: 10 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "10 MiB", want: 10 << 20},
		{in: "100B", want: 100},
		{in: "20KB", want: 20_000},
		{in: "5MB", want: 5_000_000},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "7EiB", err: `unknown unit "EiB"`},
		{in: "10mib", err: `unknown unit "mib"`},
		{in: "10 M", err: `unknown unit "M"`},
		{in: "", err: "not a valid size"},
		{in: "MiB", err: "not a valid size"},
		{in: "-1MiB", err: "not a valid size"},
		{in: "1.5GiB", err: `unknown unit ".5GiB"`},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "9223372036854775808", err: "too large"},
		{in: "8388608TiB", err: "too large"},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseByteSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		b    ByteSize
		want string
	}{
		{10 * MiB, "10MiB"},
		{1536 * KiB, "1536KiB"},
		{GiB, "1GiB"},
		{1000, "1KB"},
		{1001, "1001"},
		{0, "0"},
		{5 * MB, "5MB"},
	}
	for _, tt := range tests {
		s := tt.b.String()
		if s != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.b), s, tt.want)
		}
		if back, err := ParseByteSize(s); err != nil || back != tt.b {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", s, back, err, tt.b)
		}
	}
}

func TestParseRemovals(t *testing.T) {
	tests := []struct {
		in   string
		want Removals
		err  bool
	}{
		{in: "10%", want: Removals{Percent: 10, IsPercent: true}},
		{in: "2.5%", want: Removals{Percent: 2.5, IsPercent: true}},
		{in: "0%", want: Removals{IsPercent: true}},
		{in: "100%", want: Removals{Percent: 100, IsPercent: true}},
		{in: "10 %", want: Removals{Percent: 10, IsPercent: true}},
		{in: "50", want: Removals{Count: 50}},
		{in: "0", want: Removals{}},
		{in: "101%", err: true},
		{in: "-1%", err: true},
		{in: "NaN%", err: true},
		{in: "%", err: true},
		{in: "-3", err: true},
		{in: "2.5", err: true},
		{in: "ten", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := ParseRemovals(tt.in)
		if (err != nil) != tt.err || !tt.err && got != tt.want {
			t.Errorf("ParseRemovals(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil {
			if back, err := ParseRemovals(got.String()); err != nil || back != got {
				t.Errorf("ParseRemovals(%q) = %+v, %v; want %+v", got.String(), back, err, got)
			}
		}
	}
}

func TestRemovalsLimit(t *testing.T) {
	tests := []struct {
		r     Removals
		total int
		want  int
	}{
		{Removals{Percent: 10, IsPercent: true}, 1000, 100},
		{Removals{Percent: 10, IsPercent: true}, 30, 3},
		{Removals{Percent: 10, IsPercent: true}, 29, 2},
		{Removals{Percent: 10, IsPercent: true}, 9, 0},
		{Removals{Percent: 10, IsPercent: true}, 0, 0},
		{Removals{Percent: 2.5, IsPercent: true}, 1000, 25},
		{Removals{Percent: 33.3, IsPercent: true}, 1000, 333},
		{Removals{Percent: 0.1, IsPercent: true}, 3000, 3},
		{Removals{Percent: 100, IsPercent: true}, 7, 7},
		{Removals{Percent: 0, IsPercent: true}, 1000, 0},
		{Removals{Count: 50}, 10, 50},
		{Removals{Count: 50}, 100000, 50},
		{Removals{}, 100, 0},
	}
	for _, tt := range tests {
		if got := tt.r.Limit(tt.total); got != tt.want {
			t.Errorf("%v.Limit(%d) = %d, want %d", tt.r, tt.total, got, tt.want)
		}
	}
}

// TestYAMLRoundTrip checks that the value types also work with plain yaml.v3.
func TestYAMLRoundTrip(t *testing.T) {
	type values struct {
		D Duration `yaml:"d"`
		B ByteSize `yaml:"b"`
		R Removals `yaml:"r"`
	}
	in := values{Duration(30 * 24 * time.Hour), 64 * MiB, Removals{Percent: 10, IsPercent: true}}
	out, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "d: 30d\nb: 64MiB\nr: 10%\n"; string(out) != want {
		t.Errorf("Marshal = %q, want %q", out, want)
	}
	var back values
	if err := yaml.Unmarshal(out, &back); err != nil || back != in {
		t.Errorf("Unmarshal = %+v, %v; want %+v", back, err, in)
	}
	if err := yaml.Unmarshal([]byte("d: [1]\n"), &back); err == nil {
		t.Error("a list decoded as a duration")
	}
}
