package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"reflect"
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// A query's deadline must stop SQLite, not only the caller's wait: a
// connection busy with a runaway SCIM filter is one of the pool's four,
// and four of them starve every other request (issue 16). The driver
// (glebarez/go-sqlite v1.21, like modernc.org/sqlite of that age) calls
// sqlite3_interrupt on a cancelled context only while it prepares a
// query; the rows are computed later, in Rows.Next, where nothing
// watches the context. So roster's connections watch it themselves for
// as long as the rows are open, and interrupt the connection's database
// handle, which the driver does not export: it is read from the
// connection's db field (checked when the connection opens, so a driver
// that changes its layout fails loudly rather than silently losing the
// deadline).

// sqliteHandle returns the sqlite3* of a driver connection.
func sqliteHandle(conn driver.Conn) (uintptr, error) {
	v := reflect.ValueOf(conn)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("db"); f.IsValid() && f.Kind() == reflect.Uintptr && f.Uint() != 0 {
			return uintptr(f.Uint()), nil
		}
	}
	return 0, fmt.Errorf("the SQLite driver's connection %T has no database handle roster can interrupt", conn)
}

// QueryContext runs a query whose rows stop with an error when ctx ends.
// Only queries with a deadline are watched: SCIM reads have one.
func (c immediateConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.sqliteConn.QueryContext(ctx, query, args)
	if _, ok := ctx.Deadline(); err != nil || !ok {
		return rows, markUnavailable(err)
	}
	r := &interruptRows{Rows: rows, stop: make(chan struct{})}
	go r.watch(ctx, c.handle)
	return r, nil
}

// interruptRows interrupts its connection when the context ends before
// the rows are closed, and never after.
type interruptRows struct {
	driver.Rows
	mu     sync.Mutex
	closed bool
	stop   chan struct{}
}

func (r *interruptRows) watch(ctx context.Context, db uintptr) {
	select {
	case <-ctx.Done():
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.closed {
			tls := libc.NewTLS()
			sqlite3.Xsqlite3_interrupt(tls, db)
			tls.Close()
		}
	case <-r.stop:
	}
}

func (r *interruptRows) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	return r.Rows.Close()
}

// The optional interfaces of the driver's rows, passed through.

func (r *interruptRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *interruptRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *interruptRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *interruptRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}
