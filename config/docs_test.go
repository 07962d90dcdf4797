package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rosterd/roster/daemon/attrs"
	"github.com/rosterd/roster/sources/ldap"
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

// zeroMeans are the keys whose zero value the code that reads them turns
// into a default of its own (an ldap source's flavor and page size, the
// custom attributes' schema): the table documents that default, taken
// here from the same constant.
var zeroMeans = map[string]string{
	"sources[].flavor":         ldap.FlavorOpenLDAP,
	"sources[].page_size":      strconv.Itoa(ldap.DefaultPageSize),
	"attributes.custom_schema": attrs.DefaultCustomURN,
}

// TestDocsDefaults: the table's "default" column says what the code
// defaults to: a value in backquotes (`30s`, `10%`, `""`) is read as the
// key's YAML and must equal the default of Default (top-level keys) or of
// a new list item (sources[], sinks[]: the defaults each item starts
// from); words ("none", "empty", "all") or nothing must stand for a key
// that defaults to its zero value. A changed default fails the build
// until the table says it.
func TestDocsDefaults(t *testing.T) {
	b, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z0-9_.\\[\\]]+)` \\| ([^|]*) \\|")
	code := regexp.MustCompile("^`([^`]*)`$")
	dir := t.TempDir()
	top := reflect.ValueOf(Default(dir)).Elem()
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		key, cell := m[1], strings.TrimSpace(m[2])
		v, ok := defaultOf(top, key)
		if !ok {
			continue // TestDocsListEveryKey reports keys that do not exist
		}
		if s, ok := v.Interface().(string); ok {
			// Paths are kept absolute; the table gives them as written.
			if rel, ok := strings.CutPrefix(s, dir+string(filepath.Separator)); ok {
				v = reflect.ValueOf(rel)
			}
		}
		doc := code.FindStringSubmatch(cell)
		switch {
		case doc == nil && !v.IsZero():
			t.Errorf("`%s`: the table's default is %q, but the code defaults to %v: write it as `%v`", key, cell, v.Interface(), v.Interface())
		case doc == nil:
			// Words or nothing, for a zero default: nothing to compare.
		case v.IsZero() && zeroMeans[key] != "":
			if doc[1] != zeroMeans[key] {
				t.Errorf("`%s`: the table's default is `%s`, but an empty value means %s", key, doc[1], zeroMeans[key])
			}
		default:
			want := reflect.New(v.Type())
			if err := yaml.Unmarshal([]byte(doc[1]), want.Interface()); err != nil {
				t.Errorf("`%s`: the table's default `%s` is no value of the key: %v", key, doc[1], err)
				continue
			}
			if !reflect.DeepEqual(want.Elem().Interface(), v.Interface()) {
				t.Errorf("`%s`: the table's default is `%s`, but the code defaults to %v", key, doc[1], v.Interface())
			}
		}
	}
	if n < 40 {
		t.Fatalf("only %d rows of the key table read", n)
	}
}

// defaultOf finds key's default under v: fields by their yaml tags; past
// a list ([]), a new item with the defaults decoding starts it from.
func defaultOf(v reflect.Value, key string) (reflect.Value, bool) {
	for part := range strings.SplitSeq(key, ".") {
		name, item := strings.CutSuffix(part, "[]")
		f, ok := fieldByTag(v, name)
		if !ok {
			return reflect.Value{}, false
		}
		v = f
		if item {
			if v.Kind() != reflect.Slice {
				return reflect.Value{}, false
			}
			e := reflect.New(v.Type().Elem())
			if d, ok := e.Interface().(interface{ setDefaults() }); ok {
				d.setDefaults()
			}
			v = e.Elem()
		}
	}
	return v, true
}

func fieldByTag(v reflect.Value, name string) (reflect.Value, bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v = reflect.New(v.Type().Elem())
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	for i := range v.NumField() {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}
