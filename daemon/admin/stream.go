package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"

	"github.com/rosterd/roster/daemon/reconcile"
)

// eachChange is a member of writeObject written change by change as it
// calls its function back, never held whole: a streamed dry run's changes
// (tasks.Result.EachChange).
type eachChange func(fn func(*reconcile.Change) error) error

// writeObject answers a JSON object as writeJSON would encode the map
// members, but writes the elements of its slices one at a time, so that
// an answer as large as a dry run's plan (490,000 changes: over a
// gigabyte, issue 16) is never held whole as text. Keys come in sorted
// order, as encoding/json writes a map's. An eachChange member is written
// a change at a time as it calls back.
func writeObject(w http.ResponseWriter, status int, members map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	bw := bufio.NewWriterSize(w, 32<<10)
	// Writes to bw are not checked one by one: bufio keeps the first
	// error, and Flush reports it.
	write := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			// Nothing the handlers put here fails to encode; a value
			// that did would leave a broken answer, so the connection
			// is cut rather than the object closed as if whole.
			panic(http.ErrAbortHandler)
		}
		bw.Write(b)
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bw.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			bw.WriteByte(',')
		}
		write(k)
		bw.WriteByte(':')
		if each, ok := members[k].(eachChange); ok {
			bw.WriteByte('[')
			n := 0
			err := each(func(c *reconcile.Change) error {
				if n > 0 {
					bw.WriteByte(',')
				}
				n++
				write(c)
				return nil
			})
			if err != nil {
				// Part of the list is sent: cut the connection rather
				// than close the object as if it were whole.
				panic(http.ErrAbortHandler)
			}
			bw.WriteByte(']')
			continue
		}
		v := reflect.ValueOf(members[k])
		if v.Kind() != reflect.Slice || v.IsNil() {
			write(members[k])
			continue
		}
		bw.WriteByte('[')
		for j := range v.Len() {
			if j > 0 {
				bw.WriteByte(',')
			}
			write(v.Index(j).Interface())
		}
		bw.WriteByte(']')
	}
	bw.WriteString("}\n")
	bw.Flush() //nolint:errcheck // the client went away
}
