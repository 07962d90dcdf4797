package store

import (
	"context"
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// A plan's apply on SQLite runs the same few statement shapes thousands
// of times in one transaction, so it prepares each shape once. GORM's
// PrepareStmt session does prepare once, but then binds the statement to
// the transaction anew at every call (sql.Tx.StmtContext), and the
// transaction keeps every such binding until it ends: about 600 bytes a
// statement run, 12 MB for a push of 20,000 departments and hundreds of
// megabytes for a push of 400,000 users (issue 16). txStmts prepares each
// shape on the transaction itself, once, and reuses it.

// maxTxStmts bounds the shapes kept prepared: past it, a statement runs
// unprepared (the shapes an apply uses are far fewer; the bound only
// keeps a statement built from unbounded input from growing the cache).
const maxTxStmts = 512

type txStmts struct {
	tx    *sql.Tx
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// preparedTx returns tx, a GORM transaction, with its statements prepared
// once each (see txStmts); tx itself when it is not on a *sql.Tx.
func preparedTx(tx *gorm.DB) *gorm.DB {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return tx.Session(&gorm.Session{PrepareStmt: true})
	}
	// A session with a context has a statement of its own: the
	// transaction's, which commits, keeps its connection pool.
	s := tx.Session(&gorm.Session{Context: tx.Statement.Context})
	s.Statement.ConnPool = &txStmts{tx: sqlTx, stmts: map[string]*sql.Stmt{}}
	return s
}

// stmt returns the prepared statement of query, or nil when it is to run
// unprepared.
func (c *txStmts) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	if len(c.stmts) >= maxTxStmts {
		return nil, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *txStmts) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.tx.PrepareContext(ctx, query)
}

func (c *txStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.tx.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (c *txStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.tx.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (c *txStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil || st == nil {
		// A statement that does not prepare fails again here, with its error.
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
