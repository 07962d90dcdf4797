package main

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
)

// TestWriteJSONObjectMatchesWriteJSON: a dry run's JSON written member by
// member, its changes one at a time, is byte for byte what writeJSON
// writes for the whole map: empty and long lists, nested values, text
// that JSON escapes.
func TestWriteJSONObjectMatchesWriteJSON(t *testing.T) {
	changes := make([]reconcile.Change, 300)
	for i := range changes {
		changes[i] = reconcile.Change{Action: reconcile.Update, Line: i + 1, Fields: []string{"displayName"},
			Before: &reconcile.User{UserName: "u<" + string(rune('a'+i%26)) + ">&", Groups: []string{"a", "b"}}}
		changes[i].After = reconcile.User{UserName: "ü\"&<x>", Active: true}
	}
	for _, out := range []map[string]any{
		{},
		{"source": "staff", "dry_run": true, "errors": []string{}, "hold": "", "changes": []reconcile.Change{}},
		{"source": "st<a>ff", "changes": changes, "warnings": []string{"a & b"}, "counts": reconcile.Counts{Created: 3},
			"groups_created": []reconcile.Group{{ID: "g", DisplayName: "Sales & Co"}}, "groups_deleted": []reconcile.Group{}},
	} {
		var want, got bytes.Buffer
		if err := writeJSON(&want, out); err != nil {
			t.Fatal(err)
		}
		lazy := maps.Clone(out)
		if list, ok := out["changes"].([]reconcile.Change); ok {
			lazy["changes"] = eachChange(func(fn func(*reconcile.Change) error) error {
				for i := range list {
					if err := fn(&list[i]); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err := writeJSONObject(&got, lazy); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("streamed %d bytes, whole %d:\n%.400s\n---\n%.400s", got.Len(), want.Len(), got.Bytes(), want.Bytes())
		}
	}
	// A change that cannot be read back ends the output with its error.
	failed := errors.New("the disk is gone")
	err := writeJSONObject(&bytes.Buffer{}, map[string]any{"changes": eachChange(func(func(*reconcile.Change) error) error { return failed })})
	if !errors.Is(err, failed) {
		t.Errorf("a failing list: %v", err)
	}
}
