package main

import (
	"bufio"
	"encoding/json"
	"io"
	"slices"

	"github.com/rosterd/roster/daemon/reconcile"
)

// eachChange is a member of writeJSONObject written change by change as
// it calls its function back, never held whole: a streamed dry run's
// changes (tasks.Result.EachChange).
type eachChange func(fn func(*reconcile.Change) error) error

// writeJSONObject writes members as writeJSON writes the map (keys sorted,
// two-space indent, HTML escaped, a final newline), byte for byte, but a
// member at a time and an eachChange member a change at a time, so that a
// plan of hundreds of thousands of changes is never encoded whole.
func writeJSONObject(w io.Writer, members map[string]any) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		bw.WriteString("{}\n")
		return bw.Flush()
	}
	bw.WriteString("{\n")
	for i, k := range keys {
		if i > 0 {
			bw.WriteString(",\n")
		}
		name, err := json.Marshal(k)
		if err != nil {
			return err
		}
		bw.WriteString("  ")
		bw.Write(name)
		bw.WriteString(": ")
		each, ok := members[k].(eachChange)
		if !ok {
			b, err := json.MarshalIndent(members[k], "  ", "  ")
			if err != nil {
				return err
			}
			bw.Write(b)
			continue
		}
		n := 0
		err = each(func(c *reconcile.Change) error {
			if n == 0 {
				bw.WriteString("[\n    ")
			} else {
				bw.WriteString(",\n    ")
			}
			n++
			b, err := json.MarshalIndent(c, "    ", "  ")
			bw.Write(b)
			return err
		})
		if err != nil {
			return err
		}
		if n == 0 {
			bw.WriteString("[]")
		} else {
			bw.WriteString("\n  ]")
		}
	}
	bw.WriteString("\n}\n")
	return bw.Flush()
}
