package admin

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
)

// TestWriteObjectMatchesWriteJSON: the streamed object is byte for byte
// what encoding the whole map gives, for empty, nil and long slices,
// structs, HTML-escaped text and the rest.
func TestWriteObjectMatchesWriteJSON(t *testing.T) {
	changes := make([]reconcile.Change, 2500)
	for i := range changes {
		changes[i] = reconcile.Change{Action: reconcile.Create, Line: i + 1}
		changes[i].After = reconcile.User{UserName: "u<" + string(rune('a'+i%26)) + ">&"}
	}
	for _, out := range []map[string]any{
		{},
		{"source": "staff", "dry_run": true, "errors": []string{}, "hold": ""},
		{"source": "staff", "changes": []reconcile.Change{}, "counts": map[string]int{}},
		{"source": "st<a>ff", "changes": changes, "warnings": []string{"a & b"}, "counts": map[string]int{"created": 2500},
			"groups_created": []string(nil), "groups_deleted": []string{"x"}},
	} {
		want := httptest.NewRecorder()
		writeJSON(want, http.StatusOK, out)
		got := httptest.NewRecorder()
		writeObject(got, http.StatusOK, out)
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) || got.Code != want.Code ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("streamed %d bytes, whole %d:\n%.300s\n%.300s", got.Body.Len(), want.Body.Len(), got.Body.Bytes(), want.Body.Bytes())
		}
		if !json.Valid(got.Body.Bytes()) {
			t.Error("not JSON")
		}
		// A dry run's changes given one at a time (eachChange) are written
		// as the slice of them is.
		if list, ok := out["changes"].([]reconcile.Change); ok {
			lazy := maps.Clone(out)
			lazy["changes"] = eachChange(func(fn func(*reconcile.Change) error) error {
				for i := range list {
					if err := fn(&list[i]); err != nil {
						return err
					}
				}
				return nil
			})
			got := httptest.NewRecorder()
			writeObject(got, http.StatusOK, lazy)
			if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("changes one at a time: %d bytes, whole %d:\n%.300s\n%.300s", got.Body.Len(), want.Body.Len(), got.Body.Bytes(), want.Body.Bytes())
			}
		}
	}
}
