package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/rosterd/roster/scim/filter"
)

// SCIMRead runs fn as the SCIM directory runs its filtered queries.
func SCIMRead(s *Store, ctx context.Context, fn func(db *gorm.DB) error) error {
	return (&scimDirectory{s: s}).read(ctx, false, fn)
}

// ExplainUsers is the query plan of the SCIM users query of a filter, as
// the database would run it, with sequential scans discouraged on
// PostgreSQL so that an index that can serve the filter shows in the plan
// even on a small table.
func (s *Store) ExplainUsers(ctx context.Context, res string, f filter.Expr) (string, error) {
	r := scimUsers
	if res == "Groups" {
		r = scimGroups
	}
	c := scimCompiler{res: r, pg: s.driver == Postgres}
	cond, err := c.compile(f)
	if err != nil {
		return "", err
	}
	stmt := "SELECT " + r.alias + ".id FROM " + r.table + " WHERE " + r.base + " AND (" + cond + ")"
	var plan []string
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		explain := "EXPLAIN QUERY PLAN "
		if c.pg {
			explain = "EXPLAIN "
			if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
				return err
			}
		}
		rows, err := tx.Raw(explain+stmt, c.args...).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for _, v := range vals {
				switch v := v.(type) {
				case string:
					plan = append(plan, v)
				case []byte:
					plan = append(plan, string(v))
				}
			}
		}
		return rows.Err()
	})
	return strings.Join(plan, "\n"), err
}

// SetMembersPerPage lowers the members one page of groups holds before
// the rest are read in pieces, and returns what restores it.
func SetMembersPerPage(n int) func() {
	old := membersPerPage
	membersPerPage = n
	return func() { membersPerPage = old }
}

// Rerun applies migration version again, as Migrate would on a database
// that lacks it, whatever migrations come after it.
func (s *Store) Rerun(ctx context.Context, version int) error {
	for _, m := range migrations {
		if m.version != version {
			continue
		}
		stmts := append(slices.Clone(m.stmts), m.sqlite...)
		if s.driver == Postgres {
			stmts = append(slices.Clone(m.stmts), m.postgres...)
		}
		for _, stmt := range stmts {
			if err := s.db.WithContext(ctx).Exec(s.dialect(stmt)).Error; err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no migration %d", version)
}

// SetBulkFrom lowers the users an apply must create for SQLite to build
// users' displayName index at its end, and returns what restores it.
func SetBulkFrom(n int) func() {
	old := bulkFrom
	bulkFrom = n
	return func() { bulkFrom = old }
}

// HasIndex reports whether the index name exists as the transaction sees
// it.
func (st *StreamTx) HasIndex(name string) (bool, error) {
	return hasIndex(st.a.tx, st.sqlite, name)
}

// HasIndex reports whether the index name exists.
func (s *Store) HasIndex(ctx context.Context, name string) (bool, error) {
	return hasIndex(s.db.WithContext(ctx), s.driver == SQLite, name)
}

func hasIndex(db *gorm.DB, sqlite bool, name string) (bool, error) {
	q := `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?`
	if sqlite {
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?`
	}
	var n int
	err := db.Raw(q, name).Scan(&n).Error
	return n == 1, err
}
