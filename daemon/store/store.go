// Package store keeps roster's directory, sources and tasks in SQLite (the
// embedded default, through a pure-Go driver) or PostgreSQL, behind one API:
// GORM models, numbered migrations, per-source locks and the transaction
// that applies a reconcile plan.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Drivers.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrNotFound is returned when a task, user or source does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open directory database.
type Store struct {
	db     *gorm.DB
	driver string
	// path is the SQLite database file ("" for in-memory databases); locks
	// live next to it.
	path string

	memLocks sync.Map // source name → *sync.Mutex, for in-memory SQLite

	// unanalyzed counts rows written since PostgreSQL's statistics were
	// last refreshed by this process (see ApplyTask).
	unanalyzed atomic.Int64

	// keeper encrypts the initial passwords kept for sinks; nil while
	// none is to be kept (initial_passwords.go).
	keeper atomic.Pointer[passwordKeeper]
}

// Open connects to the database; it does not migrate (see Migrate).
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	s, err := Connect(driver, dsn)
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to the %s store: %w", s.driver, redactDSNError(err, dsn))
	}
	return s, nil
}

// Connect is Open without its round trip to the database: the DSN is
// checked and the pool made, but the database need not answer yet; the
// first statement (or Ping) connects. roster serve starts with it, so that
// it can wait for a database that is down (see daemon.Run) instead of
// exiting into a restart loop.
func Connect(driver, dsn string) (*Store, error) {
	s := &Store{driver: driver}
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		// Only to mark unreachable-database errors (see classifying).
		TranslateError: true,
		// Connect makes no round trip; Open pings with its context.
		DisableAutomaticPing: true,
	}
	var dialector gorm.Dialector
	switch driver {
	case SQLite, "":
		s.driver = SQLite
		full, path, err := sqliteDSN(dsn)
		if err != nil {
			return nil, err
		}
		s.path = path
		if err := privateFiles(path); err != nil {
			return nil, err
		}
		conn, err := openSQLite(full)
		if err != nil {
			return nil, fmt.Errorf("open sqlite store: %w", err)
		}
		dialector = sqlite.Dialector{Conn: conn}
	case Postgres:
		pgcfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("open %s store: %w", s.driver, redactDSNError(err, dsn))
		}
		// What postgres.Open(dsn) would open, but through a connector that
		// marks a failed connect as ErrUnavailable: the error of a
		// Row().Scan reaches the caller from the driver directly.
		dialector = postgres.New(postgres.Config{Conn: sql.OpenDB(markingConnector{stdlib.GetConnector(*pgcfg)})})
	default:
		return nil, fmt.Errorf("store.driver %q: use sqlite or postgres", driver)
	}
	db, err := gorm.Open(classifying{dialector}, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", s.driver, redactDSNError(err, dsn))
	}
	if err := markCallbacks(db); err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if s.driver == SQLite {
		// WAL lets readers work while one writer applies a plan; more
		// connections than that only queue up on SQLite's single writer.
		sqlDB.SetMaxOpenConns(4)
		if s.path == "" {
			sqlDB.SetMaxOpenConns(1) // each connection would see its own in-memory database
		} else {
			// An idle connection gives back its page cache and the
			// rest of SQLite's memory when it closes.
			sqlDB.SetConnMaxIdleTime(sqliteIdleTime)
		}
	} else {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s.db = db
	return s, nil
}

// sqliteDSN turns a file path (or a file: URI) into the driver's DSN with
// the pragmas roster relies on, and returns the database file's path.
func sqliteDSN(dsn string) (full, path string, err error) {
	if dsn == "" {
		dsn = "roster.db"
	}
	if dsn == ":memory:" {
		return "file::memory:?_time_format=sqlite", "", nil
	}
	var query url.Values
	if strings.HasPrefix(dsn, "file:") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("store.dsn %q: %w", dsn, err)
		}
		path, query = u.Opaque, u.Query()
		if path == "" {
			path = u.Path
		}
	} else {
		path, query = dsn, url.Values{}
	}
	if path == "" || strings.Contains(path, ":memory:") || query.Get("mode") == "memory" {
		return dsn, "", nil
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return "", "", fmt.Errorf("store.dsn: the folder of the SQLite database %s does not exist", path)
		}
	}
	// Durability over speed: a push answered 202 must survive a power cut.
	// The page cache is per connection: readers keep a small one, and a
	// write transaction takes a large one while it runs (see
	// sqliteWriteCache), so the pool holds at most one large cache.
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(30000)", "synchronous(FULL)", "cache_size(" + sqliteReadCache + ")",
		// Statement journals of large inserts stay in memory, not in temporary files.
		"temp_store(MEMORY)"} {
		query.Add("_pragma", p)
	}
	query.Set("_time_format", "sqlite")
	return "file:" + path + "?" + query.Encode(), path, nil
}

// privateFiles creates the SQLite database file 0600 before the driver
// opens it, and takes group and other permissions away from one an older
// roster created 0644 and from its companions: the database holds the
// admin page's session secret, which with a token hash from the
// configuration would forge an admin session. SQLite creates the -wal,
// -shm and -journal files with the database file's own mode whatever the
// umask, and the lock folder is created 0700 (see tryFileLock).
func privateFiles(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create the SQLite database %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal", path + ".locks"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
			// Not the owner: the operator who is must fix it; the
			// database still opens.
			slog.Warn("the SQLite database's files are readable by others; make them 0600 (folders 0700)", "path", p, "err", err)
		}
	}
	return nil
}

// redactDSNError keeps a password in the DSN out of error messages.
func redactDSNError(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// Driver is "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// Path is the SQLite database file, "" for PostgreSQL and in-memory databases.
func (s *Store) Path() string { return s.path }

// DB gives the GORM handle to packages that build their own queries, such
// as the SCIM query layer.
func (s *Store) DB() *gorm.DB { return s.db }

// Close releases the connections.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// SyncSources records the configured sources so that tasks and the
// directory can refer to them; sources removed from the configuration keep
// their row (their users stay owned by them).
func (s *Store) SyncSources(ctx context.Context, names, types []string) error {
	for i, name := range names {
		err := s.db.WithContext(ctx).Exec(`INSERT INTO sources (name, type, revision, last_fingerprint, created_at)
			VALUES (?, ?, 0, '', ?) ON CONFLICT (name) DO UPDATE SET type = excluded.type`,
			name, types[i], time.Now().UTC()).Error
		if err != nil {
			return fmt.Errorf("record source %s: %w", name, err)
		}
	}
	return nil
}

// GetSource returns a source's stored state.
func (s *Store) GetSource(ctx context.Context, name string) (*Source, error) {
	var src Source
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&src).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("source %s: %w", name, ErrNotFound)
	}
	return &src, err
}

// IsTransient reports whether err is worth retrying later: the database
// could not be reached or the connection dropped, as opposed to bad input.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, ErrConflict) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "bad connection",
		"unexpected eof", "server closed", "terminating connection", "database is locked", "i/o timeout",
		"no such host", "conn closed", "connection timed out", "the database system is"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func logErr(msg string, err error) {
	if err != nil {
		slog.Warn(msg, "err", err)
	}
}
