package csv

import (
	stdcsv "encoding/csv"
	"fmt"
	"io"
	"strings"

	"github.com/rosterd/roster/sources"
)

// Write writes records in the format Read reads: seven columns, then the
// values of the records' Attributes (extra columns), RFC 4180 quoting, LF
// line ends. Column 7 is rec.PasswordHash and never rec.Password: a file
// roster writes holds an initial password only as its hash (SPEC §5).
// Tasks' raw records are not written this way but copied from the input
// (Rewriter), so that they keep it as it arrived. Reading the output with
// Options.HashedPasswords (and the same Extra) gives back the same
// records, Line aside.
func Write(w io.Writer, recs []sources.Record) error {
	cw := stdcsv.NewWriter(w)
	var row []string
	for i := range recs {
		rec := &recs[i]
		for _, g := range rec.Groups {
			// The separator inside a name would split it into two groups
			// on the way back; refuse rather than store something else.
			if strings.Contains(g, "|") {
				return fmt.Errorf("csv: record %d (%s): group %q contains the separator \"|\"", i+1, rec.ExternalID, g)
			}
		}
		row = append(row[:0], rec.ExternalID, rec.GivenName, rec.FamilyName, rec.UserName,
			rec.Email, strings.Join(rec.Groups, "|"), rec.PasswordHash)
		for _, a := range rec.Attributes {
			row = append(row, a.Value)
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("csv: writing record %d: %w", i+1, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("csv: writing records: %w", err)
	}
	return nil
}
