package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsListEveryKey: docs/configuration.md's key table has a row for
// every key a roster.yaml may hold (as Config's yaml tags say), and no row
// for a key that does not exist, so the reference cannot drift.
func TestDocsListEveryKey(t *testing.T) {
	b, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows of the table: | `key` | default | meaning |
	row := regexp.MustCompile("^\\| `([a-z0-9_.\\[\\]]+)` \\|")
	var documented []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			documented = append(documented, m[1])
		}
	}
	keys := configKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 40 {
		t.Fatalf("only %d keys found in Config: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !slices.Contains(documented, k) {
			t.Errorf("docs/configuration.md has no row for `%s`", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(keys, k) {
			t.Errorf("docs/configuration.md has a row for `%s`, which is no key of the configuration", k)
		}
	}
	// Each source key is accepted by some type: a row for a key no type
	// takes would describe nothing.
	for _, k := range keys {
		name, ok := strings.CutPrefix(k, "sources[].")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, ".")
		if slices.Contains([]string{"name", "type", "enabled"}, name) {
			continue
		}
		taken := false
		for _, ks := range sourceKeys {
			taken = taken || slices.Contains(ks, name)
		}
		if !taken {
			t.Errorf("`%s` is in Source but no source type accepts it", k)
		}
	}
}

// configKeys lists the leaf keys of t by their yaml tags: nested keys
// joined by dots, list items as []. Structs without yaml tags (Duration,
// ByteSize, Removals) and maps (free-form keys) are values.
func configKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && hasYAMLFields(t.Elem()):
		return configKeys(t.Elem(), prefix+"[]")
	case t.Kind() != reflect.Struct || !hasYAMLFields(t):
		return []string{prefix}
	}
	var keys []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if prefix != "" && !strings.HasSuffix(prefix, ".") {
			tag = "." + tag
		}
		keys = append(keys, configKeys(f.Type, prefix+tag)...)
	}
	return keys
}

func hasYAMLFields(t reflect.Type) bool {
	for f := range t.Fields() {
		if tag := f.Tag.Get("yaml"); tag != "" && tag != "-" {
			return true
		}
	}
	return false
}
