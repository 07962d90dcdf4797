package config

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSteps bounds the nodes visited while decoding one file. A real
// configuration has a few hundred; the bound stops alias bombs (merge keys
// of ten aliases of mappings that merge ten aliases again ...), which would
// otherwise grow exponentially.
const maxSteps = 100_000

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the file's root node, nil when the file is empty or broken.
func (c *collector) parse(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			c.syntax(data, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		c.syntax(data, err)
		return nil
	case len(extra.Content) > 0 && !isNull(extra.Content[0]):
		c.fail(extra.Line, "", "a configuration file holds one YAML document; remove the second one or the \"---\" before it")
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func (c *collector) syntax(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if strings.Contains(msg, "tab character") {
		// yaml.v3 names the line where the enclosing block starts, not the
		// line with the tab.
		if l := tabIndentedLine(data); l > 0 {
			line, msg = l, "a tab is used for indentation; YAML indents with spaces"
		}
	}
	c.fail(line, "", "invalid YAML: %s", msg)
}

// tabIndentedLine returns the first line whose indentation holds a tab.
func tabIndentedLine(data []byte) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return i + 1
		}
	}
	return 0
}

func (c *collector) decodeRoot(root *yaml.Node, cfg *Config) {
	c.decode(root, reflect.ValueOf(cfg).Elem(), "")
}

// decode sets v from n. It replaces yaml.v3's decoding so that every
// problem is reported with its key path and decoding goes on after it; see
// the package documentation for why KnownFields is not enough.
func (c *collector) decode(n *yaml.Node, v reflect.Value, key string) {
	n = c.deref(n, key)
	if n == nil || isNull(n) {
		return
	}
	if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			c.fail(n.Line, key, "%s", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		c.decodeStruct(n, v, key)
	case reflect.Slice:
		c.decodeSlice(n, v, key)
	case reflect.Map:
		c.decodeMap(n, v, key)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		c.decode(n, p.Elem(), key)
		v.Set(p)
	default:
		c.decodeScalar(n, v, key)
	}
}

// deref follows aliases and counts the work done.
func (c *collector) deref(n *yaml.Node, key string) *yaml.Node {
	c.steps++
	if c.steps == maxSteps {
		c.fail(n.Line, key, "the configuration is too large, or its aliases expand too far")
	}
	if c.steps >= maxSteps {
		return nil
	}
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (c *collector) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		what := "must be a mapping of keys"
		if key == "" {
			what = "the configuration must be a mapping of keys"
		}
		c.fail(n.Line, key, "%s, not %s", what, describe(n))
		return
	}
	fields := yamlFields(v.Type())
	for _, p := range c.pairs(n, key) {
		k := joinKey(key, p.name)
		i, ok := fields.index[p.name]
		if !ok && key == "" && strings.HasPrefix(p.name, "x-") {
			// Extension keys hold anchors for merge keys, as in Compose files.
			continue
		}
		if !ok {
			c.fail(p.line, k, "unknown key%s", suggest(p.name, fields.names))
			continue
		}
		c.lines[k] = p.line
		c.decode(p.value, v.Field(i), k)
	}
}

func (c *collector) decodeSlice(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		c.fail(n.Line, key, "must be a list, not %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		k := indexKey(key, i)
		c.lines[k] = item.Line
		e := s.Index(i)
		if d, ok := e.Addr().Interface().(interface{ setDefaults() }); ok {
			d.setDefaults()
		}
		c.decode(item, e, k)
	}
	v.Set(s)
}

func (c *collector) decodeMap(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		c.fail(n.Line, key, "must be a mapping, not %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, p := range c.pairs(n, key) {
		k := joinKey(key, p.name)
		c.lines[k] = p.line
		e := reflect.New(v.Type().Elem()).Elem()
		c.decode(p.value, e, k)
		m.SetMapIndex(reflect.ValueOf(p.name).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// decodeScalar reads the node's text whatever its YAML tag, so that quoted
// numbers and expanded ${VARS} work wherever the type fits.
func (c *collector) decodeScalar(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		c.fail(n.Line, key, "must be a single value, not %s", describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on":
			v.SetBool(true)
		case "false", "no", "off":
			v.SetBool(false)
		default:
			c.fail(n.Line, key, "%q is not true or false", n.Value)
		}
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 10, 0)
		if err != nil {
			c.fail(n.Line, key, "%q is not a whole number", n.Value)
			return
		}
		v.SetInt(i)
	default:
		// Only reachable if a field of an unsupported kind is added to Config.
		panic("config: cannot decode into " + v.Type().String())
	}
}

type pair struct {
	name  string
	line  int
	value *yaml.Node
}

// pairs lists a mapping's entries with merge keys (<<) applied: a key
// written in the mapping wins over a merged one, and an earlier merged
// mapping over a later one. Keys written twice are problems.
func (c *collector) pairs(n *yaml.Node, key string) []pair {
	var (
		out    []pair
		merged []pair
		seen   = map[string]int{}
	)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := c.deref(n.Content[i], key), n.Content[i+1]
		if k == nil {
			return out
		}
		if isMerge(k) {
			merged = append(merged, c.merge(val, key)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.fail(k.Line, key, "keys must be names, not %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			c.fail(k.Line, joinKey(key, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k.Value, k.Line, val})
	}
	for _, p := range merged {
		if _, dup := seen[p.name]; !dup {
			seen[p.name] = p.line
			out = append(out, p)
		}
	}
	return out
}

func (c *collector) merge(n *yaml.Node, key string) []pair {
	n = c.deref(n, key)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		return c.pairs(n, key)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range n.Content {
			item = c.deref(item, key)
			if item == nil {
				return out
			}
			if item.Kind != yaml.MappingNode {
				c.fail(item.Line, key, "<< merges mappings, not %s", describe(item))
				continue
			}
			out = append(out, c.pairs(item, key)...)
		}
		return out
	default:
		c.fail(n.Line, key, "<< merges a mapping or a list of mappings, not %s", describe(n))
		return nil
	}
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

type structFields struct {
	index map[string]int
	names []string
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) structFields {
	fs := structFields{index: map[string]int{}}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fs.index[name] = i
		fs.names = append(fs.names, name)
	}
	return fs
}

// suggest names the closest valid key when name looks like a typo of it.
func suggest(name string, valid []string) string {
	// Within two edits, and fewer for short names, so "db" does not become
	// "dir".
	best, bestDist := "", min(2, len(name)/3+1)+1
	for _, v := range valid {
		if d := editDistance(strings.ToLower(name), v); d < bestDist {
			best, bestDist = v, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + strconv.Quote(best) + "?"
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
