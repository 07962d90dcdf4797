package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSecretSize bounds a ${file:...} read; secrets are small, and the bound
// keeps a mistaken path (a log, a device) from being read whole.
const maxSecretSize = 64 << 10

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expander resolves ${...} references. Its lookups are fields so that tests
// need not touch the process environment.
type expander struct {
	dir      string
	lookup   func(string) (string, bool)
	readFile func(string) (string, error)
}

// expand rewrites every scalar value in the tree in place. Aliases are not
// followed: the anchored node is expanded where it is written.
func (c *collector) expand(root *yaml.Node, dir string) {
	x := expander{dir: dir, lookup: os.LookupEnv, readFile: readSecret}
	c.expandNode(&x, root, "")
}

func (c *collector) expandNode(x *expander, n *yaml.Node, key string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			c.expandNode(x, child, key)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := key
			if name := n.Content[i]; !isMerge(name) {
				k = joinKey(key, name.Value)
			}
			c.expandNode(x, n.Content[i+1], k)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			c.expandNode(x, item, indexKey(key, i))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		v, errs := x.expand(n.Value)
		for _, err := range errs {
			c.fail(n.Line, key, "%s", err)
		}
		if len(errs) == 0 {
			n.Value = v
		}
	}
}

// expand replaces ${NAME}, ${file:PATH} and $${ in s, and reports every
// reference it cannot resolve.
func (x *expander) expand(s string) (string, []error) {
	var (
		b    strings.Builder
		errs []error
	)
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), errs
		}
		if i > 0 && s[i-1] == '$' {
			// "$${" is a literal "${"; the first "$" is already written.
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			errs = append(errs, errors.New(`"${" is not closed by "}" (write $${ for a literal ${)`))
			return "", errs
		}
		ref := s[i+2 : i+end]
		v, err := x.resolve(ref)
		if err != nil {
			errs = append(errs, err)
		}
		b.WriteString(v)
		s = s[i+end+1:]
	}
}

func (x *expander) resolve(ref string) (string, error) {
	if path, ok := strings.CutPrefix(ref, "file:"); ok {
		if path == "" {
			return "", errors.New("${file:} needs a path, as in ${file:secrets/hr-token}")
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(x.dir, path)
		}
		return x.readFile(path)
	}
	if !envName.MatchString(ref) {
		return "", fmt.Errorf("%q is not a variable reference; use ${NAME}, ${file:PATH}, or $${ for a literal ${", "${"+ref+"}")
	}
	v, ok := x.lookup(ref)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set", ref)
	}
	return v, nil
}

// readSecret reads a secret file without its trailing newlines.
func readSecret(path string) (string, error) {
	// Stat first: opening a named pipe would block until someone writes.
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("secret file %s does not exist", path)
	}
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	if len(data) > maxSecretSize {
		return "", fmt.Errorf("secret file %s is larger than %s", path, ByteSize(maxSecretSize))
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}
