package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is an invalid configuration. It holds every problem found, in the
// order of their lines.
type Error struct {
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid configuration"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// File is the path the configuration was loaded from, as given.
	File string
	// Line is 1-based; 0 when the problem has no place in the file.
	Line int
	// Key is the path of the key, such as "sources[0].schedule"; "" for
	// the file as a whole.
	Key     string
	Message string
}

// String reads like a compiler message:
// `roster.yaml:12: sources[0].schedule: "*/61 * * * *" is not a valid cron expression: ...`.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// collector gathers problems from every stage of loading, and remembers the
// line of every key so that validation can point at it.
type collector struct {
	file  string
	lines map[string]int
	// broken keys already have a problem from parsing, expansion or
	// decoding; validating their (default) value would only add noise.
	broken   map[string]bool
	problems []Problem
	// steps bounds decoding work, which aliases could make exponential.
	steps int
}

func newCollector(file string) *collector {
	return &collector{file: file, lines: map[string]int{}, broken: map[string]bool{}}
}

// fail records a problem found while reading the file.
func (c *collector) fail(line int, key, format string, args ...any) {
	c.broken[key] = true
	c.problems = append(c.problems, Problem{File: c.file, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// check records a validation problem at the line of key, or of its nearest
// parent that appears in the file.
func (c *collector) check(key, format string, args ...any) {
	if c.isBroken(key) {
		return
	}
	c.problems = append(c.problems, Problem{File: c.file, Line: c.line(key), Key: key, Message: fmt.Sprintf(format, args...)})
}

func (c *collector) isBroken(key string) bool {
	for k := key; ; k = parentKey(k) {
		if c.broken[k] {
			return true
		}
		if k == "" {
			return false
		}
	}
}

func (c *collector) line(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := c.lines[k]; ok {
			return l
		}
	}
	return 0
}

// has reports whether key was written in the file.
func (c *collector) has(key string) bool {
	_, ok := c.lines[key]
	return ok
}

func (c *collector) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	ps := slices.Clone(c.problems)
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	// Merge keys can make one anchor report the same problem twice.
	ps = slices.Compact(ps)
	return &Error{Problems: ps}
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func indexKey(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// parentKey strips the last ".name" or "[i]" of key.
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}
