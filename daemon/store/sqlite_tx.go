package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"time"

	_ "github.com/glebarez/go-sqlite" // registers the driver "sqlite"
)

// SQLite write transactions must begin with BEGIN IMMEDIATE: a deferred
// transaction that reads first and then writes, while another connection
// has committed meanwhile, fails at once with SQLITE_BUSY (its snapshot is
// stale; the busy timeout cannot help). The driver's _txlock parameter
// would say so, but the driver ignores it whenever _time_format is set too
// (glebarez/go-sqlite v1.21–v1.23 return from the parameter parsing before
// they read _txlock), so roster's connections begin their transactions
// themselves.

// sqliteConn is what the driver's connections implement.
type sqliteConn interface {
	driver.Conn
	driver.Pinger
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
}

// openSQLite opens dsn with connections whose write transactions take
// SQLite's write lock when they begin.
func openSQLite(dsn string) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	base := probe.Driver()
	probe.Close()
	return sql.OpenDB(immediateConnector{base: base, dsn: dsn, warm: new(atomic.Uintptr)}), nil
}

type immediateConnector struct {
	base driver.Driver
	dsn  string
	// warm is the handle of the one connection that keeps its write
	// cache between write transactions, or 0.
	warm *atomic.Uintptr
}

func (c immediateConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.base.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("the SQLite driver's connection %T lacks the methods roster needs", conn)
	}
	handle, err := sqliteHandle(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return immediateConn{sc, handle, c.warm}, nil
}

func (c immediateConnector) Driver() driver.Driver { return c.base }

// The page cache of SQLite is per connection, and with 1,000,000 users
// four connections of 64 MiB each held 362 MiB after a few minutes of
// SCIM reads (issue 16). Readers keep sqliteReadCache; a write
// transaction, which SQLite runs one at a time and whose large applies
// profit from a large cache, raises its connection's to sqliteWriteCache
// and lowers it again when it ends (SQLite frees the pages above the new
// size at once). One connection, the first to end a write transaction
// while no other is warm, keeps its write cache afterwards, so that the
// next sync (usually given the same idle connection) finds the pages of
// the last one instead of reading every page again through the VFS: a
// re-sync of 100,000 users took 40-50% longer with a cold cache. The
// pool's caches are so bounded by two write caches (the warm one and a
// transaction on another connection) and two read caches (144 MiB), and a
// connection idle for sqliteIdleTime is closed, giving back everything it
// held.
const (
	sqliteReadCache  = "-8192"  // KiB
	sqliteWriteCache = "-65536" // KiB
	sqliteIdleTime   = time.Minute
)

type immediateConn struct {
	sqliteConn
	handle uintptr // the sqlite3*, for sqlite3_interrupt (see sqlite_interrupt.go)
	warm   *atomic.Uintptr
}

// Close lets another connection keep its cache warm.
func (c immediateConn) Close() error {
	c.warm.CompareAndSwap(c.handle, 0)
	return c.sqliteConn.Close()
}

func (c immediateConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.ReadOnly {
		return c.sqliteConn.BeginTx(ctx, opts)
	}
	if _, err := c.ExecContext(ctx, "PRAGMA cache_size = "+sqliteWriteCache, nil); err != nil {
		return nil, err
	}
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		c.readCache()
		return nil, err
	}
	return immediateTx{c}, nil
}

// readCache lowers the connection's page cache to the readers' size,
// unless it is (or becomes) the warm connection. A failure leaves a
// larger cache on one connection, which is no error of the transaction's.
func (c immediateConn) readCache() {
	if c.warm.CompareAndSwap(0, c.handle) || c.warm.Load() == c.handle {
		return
	}
	_, _ = c.sqliteConn.ExecContext(context.Background(), "PRAGMA cache_size = "+sqliteReadCache, nil)
}

// ExecContext and QueryContext (sqlite_interrupt.go) mark SQLITE_BUSY
// after the busy timeout and the like as ErrUnavailable, for callers that
// read the driver's errors directly (Row().Scan).
func (c immediateConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.sqliteConn.ExecContext(ctx, query, args)
	return r, markUnavailable(err)
}

func (c immediateConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

type immediateTx struct{ c immediateConn }

func (t immediateTx) Commit() error {
	_, err := t.c.sqliteConn.ExecContext(context.Background(), "COMMIT", nil)
	t.c.readCache()
	return err
}

func (t immediateTx) Rollback() error {
	_, err := t.c.sqliteConn.ExecContext(context.Background(), "ROLLBACK", nil)
	t.c.readCache()
	return err
}
