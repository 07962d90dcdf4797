package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrLocked is returned by TryLockSource when another task of the source
// runs, in this process or another one.
var ErrLocked = errors.New("another task of this source is running")

// Unlock releases a lock.
type Unlock func()

// LockSource waits until no other task of the source runs, anywhere, and
// returns the function that releases the lock. On PostgreSQL it is a
// session advisory lock; on SQLite an flock(2) on a file next to the
// database. Both are released by the operating system or the server when
// the process dies, so a crash never leaves a source locked.
func (s *Store) LockSource(ctx context.Context, source string) (Unlock, error) {
	for {
		unlock, err := s.TryLockSource(ctx, source)
		if !errors.Is(err, ErrLocked) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TryLockSource takes the source's lock if it is free, or returns ErrLocked.
func (s *Store) TryLockSource(ctx context.Context, source string) (Unlock, error) {
	return s.tryLock(ctx, "source/"+source)
}

func (s *Store) lockMigrations(ctx context.Context) (Unlock, error) {
	for {
		unlock, err := s.tryLock(ctx, "migrations")
		if !errors.Is(err, ErrLocked) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Store) tryLock(ctx context.Context, name string) (Unlock, error) {
	switch {
	case s.driver == Postgres:
		return s.tryAdvisoryLock(ctx, name)
	case s.path == "":
		v, _ := s.memLocks.LoadOrStore(name, &sync.Mutex{})
		mu := v.(*sync.Mutex)
		if !mu.TryLock() {
			return nil, ErrLocked
		}
		return mu.Unlock, nil
	default:
		return s.tryFileLock(name)
	}
}

// tryAdvisoryLock holds a dedicated connection for the lock's lifetime:
// advisory locks belong to a session. The key covers the database and
// schema, so that separate directories on one server do not block each
// other.
func (s *Store) tryAdvisoryLock(ctx context.Context, name string) (Unlock, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the %s lock: %w", name, err)
	}
	var scope string
	if err := conn.QueryRowContext(ctx, `SELECT current_database() || '/' || current_schema()`).Scan(&scope); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take the %s lock: %w", name, err)
	}
	h := fnv.New64a()
	h.Write([]byte("roster/" + scope + "/" + name))
	key := int64(h.Sum64())
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take the %s lock: %w", name, err)
	}
	if !ok {
		conn.Close()
		return nil, ErrLocked
	}
	return func() {
		// An unlock that fails means the session is gone, and the lock with it.
		_, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
		logErr("release advisory lock", err)
		conn.Close()
	}, nil
}

// tryFileLock locks <database>.locks/<name>. flock locks belong to the open
// file, so two tasks in one process exclude each other too.
func (s *Store) tryFileLock(name string) (Unlock, error) {
	dir := s.path + ".locks"
	if err := os.MkdirAll(filepath.Dir(dir+"/"+name), 0o700); err != nil {
		return nil, fmt.Errorf("create the lock folder: %w", err)
	}
	f, err := os.OpenFile(dir+"/"+name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
		f.Close()
	}, nil
}
