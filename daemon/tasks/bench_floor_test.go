package tasks_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// floorTable is one table's rows as the initial sync left them.
type floorTable struct {
	name string
	cols []string
	rows [][]any
}

// schemaFloor measures SPEC §11's schema floor: the very rows the initial
// sync left in roster's own tables, bulk-loaded into a fresh, migrated
// store (every index present) in one transaction by the engine's fastest
// path: COPY per table on PostgreSQL, multi-row prepared INSERTs through
// the same pure-Go driver on SQLite. Only the load is timed; reading the
// rows out of the synced store is not. Tables a fresh store fills itself
// (the migrations' own) are left out. On SQLite it also returns the same
// rows loaded by the C engine's shell (sqlite3 .import into a fresh store's
// file, one transaction), or 0 without sqlite3.
func schemaFloor(tb testing.TB, driver string, synced *store.Store) (floor, shell time.Duration) {
	tb.Helper()
	ctx := context.Background()
	fresh := storetest.Open(tb, driver)
	src, err := synced.DB().DB()
	if err != nil {
		tb.Fatal(err)
	}
	dst, err := fresh.DB().DB()
	if err != nil {
		tb.Fatal(err)
	}
	if driver == store.SQLite {
		shell = shellFloor(tb, src, floorTables(tb, driver, src))
	}
	var load []floorTable
	for _, name := range floorTables(tb, driver, src) {
		var n int
		if err := dst.QueryRow(`SELECT count(*) FROM ` + name).Scan(&n); err != nil {
			tb.Fatalf("schema floor: count %s: %v", name, err)
		}
		if n > 0 {
			continue
		}
		if t := readFloorTable(tb, src, name); len(t.rows) > 0 {
			load = append(load, t)
		}
	}
	start := time.Now()
	if driver == store.Postgres {
		err = copyFloor(ctx, dst, load)
	} else {
		err = insertFloor(ctx, dst, load)
	}
	if err != nil {
		tb.Fatalf("schema floor on %s: %v", driver, err)
	}
	return time.Since(start), shell
}

// shellFloor exports the synced store's tables as CSV with sqlite3 and
// times their .import into a fresh store's file in one transaction.
func shellFloor(tb testing.TB, synced *sql.DB, tables []string) time.Duration {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		tb.Log("sqlite3 not installed: no shell floor")
		return 0
	}
	fresh := storetest.Open(tb, store.SQLite)
	db, err := fresh.DB().DB()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	script := "BEGIN;\n"
	for _, name := range tables {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ` + name).Scan(&n); err != nil || n > 0 {
			continue
		}
		csvFile := filepath.Join(dir, name+".csv")
		out, err := exec.Command("sqlite3", "-csv", fileOf(tb, synced), "SELECT * FROM "+name).Output()
		if err != nil {
			tb.Fatalf("shell floor: export %s: %v", name, err)
		}
		if err := os.WriteFile(csvFile, out, 0o600); err != nil {
			tb.Fatal(err)
		}
		script += ".import --csv " + csvFile + " " + name + "\n"
	}
	script += "COMMIT;\n"
	cmd := exec.Command("sqlite3", fileOf(tb, db))
	cmd.Stdin = strings.NewReader(script)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		tb.Fatalf("shell floor: import: %v\n%s", err, out)
	}
	return time.Since(start)
}

// fileOf returns the file of an SQLite database.
func fileOf(tb testing.TB, db *sql.DB) string {
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		tb.Fatal(err)
	}
	return file
}

func floorTables(tb testing.TB, driver string, db *sql.DB) []string {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if driver == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	rows, err := db.Query(q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func readFloorTable(tb testing.TB, db *sql.DB, name string) floorTable {
	rows, err := db.Query(`SELECT * FROM ` + name)
	if err != nil {
		tb.Fatalf("schema floor: read %s: %v", name, err)
	}
	defer rows.Close()
	t := floorTable{name: name}
	if t.cols, err = rows.Columns(); err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatalf("schema floor: read %s: %v", name, err)
		}
		t.rows = append(t.rows, vals)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("schema floor: read %s: %v", name, err)
	}
	return t
}

// copyFloor loads the tables with COPY in one transaction.
func copyFloor(ctx context.Context, db *sql.DB, load []floorTable) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		for _, t := range load {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
		}
		return tx.Commit(ctx)
	})
}

// insertFloor loads the tables with multi-row prepared INSERTs in one
// transaction: as many rows a statement as SQLite's 32,766 parameters
// allow, at most 500.
func insertFloor(ctx context.Context, db *sql.DB, load []floorTable) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range load {
		per := min(floorRows, 32766/len(t.cols))
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", len(t.cols)), ",") + ")"
		insert := func(rows [][]any, stmt *sql.Stmt) error {
			args := make([]any, 0, len(rows)*len(t.cols))
			for _, r := range rows {
				args = append(args, r...)
			}
			_, err := stmt.ExecContext(ctx, args...)
			return err
		}
		prepare := func(n int) (*sql.Stmt, error) {
			return tx.PrepareContext(ctx, `INSERT INTO `+t.name+` ("`+strings.Join(t.cols, `", "`)+`") VALUES `+
				strings.TrimSuffix(strings.Repeat(row+",", n), ","))
		}
		full, err := prepare(per)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", t.name, err)
		}
		rows := t.rows
		for len(rows) >= per {
			if err := insert(rows[:per], full); err != nil {
				return fmt.Errorf("insert into %s: %w", t.name, err)
			}
			rows = rows[per:]
		}
		full.Close()
		if len(rows) > 0 {
			last, err := prepare(len(rows))
			if err != nil {
				return fmt.Errorf("prepare %s: %w", t.name, err)
			}
			if err := insert(rows, last); err != nil {
				return fmt.Errorf("insert into %s: %w", t.name, err)
			}
			last.Close()
		}
	}
	return tx.Commit()
}

var floorRows = 128
