package main

// The README's command table and the pages of docs/ are tested against the
// code, so that they cannot drift from it: every command and each of its
// flags is in the table (and in the command's own usage line), nothing in
// the table is unknown to the binary, and every relative link of the
// README and docs/ leads to a file and heading that exist.

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// globalFlagNames are taken by every command and described once, above
// the table.
var globalFlagNames = []string{"config", "v"}

func TestReadmeListsEveryCommandAndFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The table's rows: | `roster CMD ARGS` [/ `roster CMD2 ARGS`] | what |
	rows := map[string]string{} // command → its usage as the table writes it
	span := regexp.MustCompile("`roster ([a-z]+)([^`]*)`")
	for line := range strings.SplitSeq(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `roster ") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range span.FindAllStringSubmatch(first, -1) {
			rows[m[1]] = m[2]
		}
	}
	if len(rows) == 0 {
		t.Fatal("the README has no command table (rows starting with | `roster )")
	}
	flagRef := regexp.MustCompile(`--([a-z][a-z-]*)`)
	known := map[string]bool{}
	for _, c := range commands {
		if c.run == nil {
			continue // help
		}
		known[c.name] = true
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
		// --help makes a command define its flags and return before it
		// does anything else.
		if err := c.run(context.Background(), e, []string{"--help"}); !errors.Is(err, flag.ErrHelp) || e.fs == nil {
			t.Fatalf("roster %s --help: %v; want flag.ErrHelp after the flags are defined", c.name, err)
		}
		var defined []string
		e.fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(globalFlagNames, f.Name) {
				defined = append(defined, f.Name)
			}
		})
		row, ok := rows[c.name]
		if !ok {
			t.Errorf("the README's command table has no row for roster %s", c.name)
			continue
		}
		for _, name := range defined {
			if !strings.Contains(row+" ", "--"+name+" ") && !strings.Contains(row, "--"+name+"]") {
				t.Errorf("the README's row for roster %s lacks --%s (it has %q)", c.name, name, row)
			}
			if !strings.Contains(c.args+" ", "--"+name+" ") && !strings.Contains(c.args, "--"+name+"]") {
				t.Errorf("roster %s's usage line lacks --%s (it has %q)", c.name, name, c.args)
			}
		}
		for where, text := range map[string]string{"the README's row": row, "the usage line": c.args} {
			for _, m := range flagRef.FindAllStringSubmatch(text, -1) {
				if !slices.Contains(defined, m[1]) && !slices.Contains(globalFlagNames, m[1]) {
					t.Errorf("%s of roster %s names --%s, which the command does not take", where, c.name, m[1])
				}
			}
		}
	}
	for name := range rows {
		if !known[name] {
			t.Errorf("the README's command table has roster %s, which is no command", name)
		}
	}
}

// TestDocsLinksResolve: every relative link of README.md and docs/*.md
// names a file that exists and, with #anchor, a heading of it.
func TestDocsLinksResolve(t *testing.T) {
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "../../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(stripCode(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which does not exist", filepath.Base(page), target)
				continue
			}
			if anchor != "" && !slices.Contains(anchors(t, path), anchor) {
				t.Errorf("%s links to %s: %s has no heading for #%s", filepath.Base(page), target, filepath.Base(path), anchor)
			}
		}
	}
}

// stripCode drops fenced code blocks, whose brackets are no links.
func stripCode(s string) string {
	var b strings.Builder
	in := false
	for line := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(line, "```") {
			in = !in
			continue
		}
		if !in {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// anchors are the GitHub anchors of a Markdown file's headings.
func anchors(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	drop := regexp.MustCompile("[^a-z0-9 _-]")
	for line := range strings.SplitSeq(stripCode(string(b)), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		out = append(out, strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-"))
	}
	return out
}
