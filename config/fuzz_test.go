package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"",
		"~",
		"[]",
		"listen: [",
		"sources: [{<<: {name: a}, type: push}]",
		"x-a: &a {x: *a}",
		"sources:\n  - name: s\n    type: csv\n    path: ${file:}\n    schedule: 'TZ=UTC'\n",
		"tokens: [{name: t, hash: 'sha256:', scopes: [push:]}]",
		"limits: {request_body: 99999999999999999999GiB}",
		"? !!binary aGVsbG8=\n: 1\n",
	} {
		f.Add([]byte(seed))
	}
	// The folder is shared by all inputs: t.TempDir per input would make the
	// fuzzer mostly measure the file system.
	path := filepath.Join(f.TempDir(), "roster.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, path)
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("error is not a *config.Error: %v", err)
		}
		if len(cerr.Problems) == 0 {
			t.Fatal("an *Error without problems")
		}
		for _, p := range cerr.Problems {
			if p.Message == "" {
				t.Fatalf("problem without a message: %+v", p)
			}
		}
	})
}
