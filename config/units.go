package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that YAML writes as "720h", "90m" or "30d".
type Duration time.Duration

const day = 24 * time.Hour

// ParseDuration parses a Go duration, optionally led by a whole number of
// days: "90m", "720h", "30d", "1d12h".
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a valid duration; use a number and a unit, such as 90m, 720h or 30d", s)
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, bad
		}
		return Duration(d), nil
	}
	neg := strings.HasPrefix(days, "-")
	days = strings.TrimPrefix(days, "-")
	if days == "" || strings.TrimLeft(days, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseInt(days, 10, 64)
	if err != nil || n > int64(math.MaxInt64/day) {
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	total := time.Duration(n) * day
	if rest != "" {
		// A sign may only lead the whole value: "1d-2h" is not a duration.
		if rest[0] == '-' || rest[0] == '+' {
			return 0, bad
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		if total > math.MaxInt64-r {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		total += r
	}
	if neg {
		total = -total
	}
	return Duration(total), nil
}

// String writes whole days as "30d" and anything else as time.Duration does,
// so that ParseDuration reads it back.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	return td.String()
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a duration such as 720h or 30d")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a number of bytes that YAML writes as "10MiB" or "1000".
type ByteSize int64

// Byte size units.
const (
	B   ByteSize = 1
	KiB          = 1 << 10 * B
	MiB          = 1 << 20 * B
	GiB          = 1 << 30 * B
	TiB          = 1 << 40 * B
	KB           = 1000 * B
	MB           = 1000 * KB
	GB           = 1000 * MB
	TB           = 1000 * GB
)

// byteUnits is in the order String prefers them.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", B},
}

// ParseByteSize parses a whole number with an optional unit: "1000",
// "512KiB", "10MiB", "1GiB", "20MB". Units are case-sensitive, and a space
// between number and unit is allowed.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	digits := s[:len(s)-len(strings.TrimLeft(s, "0123456789"))]
	unit := strings.TrimSpace(s[len(digits):])
	if digits == "" {
		return 0, fmt.Errorf("%q is not a valid size; use a whole number and a unit, such as 512KiB, 10MiB or 1GiB", s)
	}
	size := B
	if unit != "" {
		i := indexUnit(unit)
		if i < 0 {
			return 0, fmt.Errorf("%q is not a valid size: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
		}
		size = byteUnits[i].size
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || ByteSize(n) > math.MaxInt64/size {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return ByteSize(n) * size, nil
}

func indexUnit(name string) int {
	for i, u := range byteUnits {
		if u.name == name {
			return i
		}
	}
	return -1
}

// String uses the largest unit that divides b exactly, binary first.
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range byteUnits[:len(byteUnits)-1] {
			if b%u.size == 0 {
				return strconv.FormatInt(int64(b/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a size such as 10MiB")
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// Removals is a source's max_removals: a share of its users or a fixed
// number of them.
type Removals struct {
	Percent   float64
	Count     int
	IsPercent bool
}

// ParseRemovals parses "10%" (fractions allowed, 0% to 100%) or a whole
// number such as "50".
func ParseRemovals(s string) (Removals, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 100 {
			return Removals{}, fmt.Errorf("%q is not a percentage between 0%% and 100%%", s)
		}
		return Removals{Percent: f, IsPercent: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Removals{}, fmt.Errorf("%q is neither a percentage such as 10%% nor a whole number of users", s)
	}
	return Removals{Count: n}, nil
}

// Limit is how many of a source's total users a sync may remove.
func (r Removals) Limit(total int) int {
	if !r.IsPercent {
		return r.Count
	}
	if total <= 0 {
		return 0
	}
	// The epsilon keeps 10% of 30 at 3 when the product is 2.9999999....
	return int(math.Floor(float64(total)*r.Percent/100 + 1e-9))
}

func (r Removals) String() string {
	if r.IsPercent {
		return strconv.FormatFloat(r.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(r.Count)
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (r *Removals) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a percentage such as 10% or a whole number")
	}
	v, err := ParseRemovals(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (r Removals) MarshalYAML() (any, error) { return r.String(), nil }
