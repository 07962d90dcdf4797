package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// CreatePushTask records a queued push task and its payload in one
// transaction: once it returns, the push survives a crash and any replica
// can run it. seq orders the source's pushes; 0 gives the task its own id
// (a new push), a retry passes the seq of the push it repeats. limit, when
// above zero, bounds the records of the source's pushes accepted and not
// applied yet: a push that would take them beyond it is refused with a
// *QueueFullError, unless none wait (a push larger than the limit must
// get in some time). keep, when set, runs inside the transaction once the
// task has its id: it writes the raw record and sets t.RawRecord, so that
// no process can run the push before its raw record exists; its error
// stores nothing.
func (s *Store) CreatePushTask(ctx context.Context, t *Task, body []byte, records int, seq int64, limit int, keep func(*Task) error) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC()
	}
	t.Counts, t.Warnings, t.Errors = "{}", "[]", "[]"
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if limit > 0 {
			if err := s.reserve(tx, t.Source, records, limit); err != nil {
				return err
			}
		}
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		if seq == 0 {
			seq = t.ID
		}
		if err := tx.Exec(`INSERT INTO task_payloads (task_id, source, seq, records, body) VALUES (?, ?, ?, ?, ?)`,
			t.ID, t.Source, seq, records, string(body)).Error; err != nil {
			return err
		}
		if keep == nil {
			return nil
		}
		if err := keep(t); err != nil {
			return errKeep{err}
		}
		return tx.Exec(`UPDATE tasks SET raw_record = ? WHERE id = ?`, t.RawRecord, t.ID).Error
	})
	var ke errKeep
	var full *QueueFullError
	switch {
	case errors.As(err, &ke):
		return ke.error
	case errors.As(err, &full):
		return full
	}
	if err != nil {
		return fmt.Errorf("store the push: %w", err)
	}
	return nil
}

// errKeep carries the error of CreatePushTask's keep unchanged.
type errKeep struct{ error }

func (e errKeep) Unwrap() error { return e.error }

// QueueFullError refuses a push that would take the records of the
// source's pushes waiting to be applied beyond the limit.
type QueueFullError struct {
	Waiting int
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("%d pushed records are waiting to be applied", e.Waiting)
}

// reserve admits records more records into the source's queue, inside the
// transaction that stores them, or refuses them with a *QueueFullError.
// The count and the insert that follows are one step for every process on
// the database: SQLite's write transactions begin with the write lock
// (BEGIN IMMEDIATE), and on PostgreSQL a transaction-scoped advisory lock
// per source orders the pushes that count; a row lock on the source would
// also wait for every apply, which updates that row.
func (s *Store) reserve(tx *gorm.DB, source string, records, limit int) error {
	if s.driver == Postgres {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('roster/' || current_database() || '/' || current_schema() || '/push-queue/' || ?, 0))`,
			source).Error; err != nil {
			return fmt.Errorf("take the push queue lock of %s: %w", source, err)
		}
	}
	waiting, err := waitingPushRecords(tx, source)
	if err != nil {
		return err
	}
	if waiting > 0 && waiting+records > limit {
		return &QueueFullError{Waiting: waiting}
	}
	return nil
}

// WaitingPushRecords counts the records of the source's pushes that are
// accepted and not applied yet.
func (s *Store) WaitingPushRecords(ctx context.Context, source string) (int, error) {
	return waitingPushRecords(s.db.WithContext(ctx), source)
}

func waitingPushRecords(db *gorm.DB, source string) (int, error) {
	var n int
	err := db.Raw(`SELECT COALESCE(SUM(p.records), 0) FROM task_payloads p JOIN tasks t ON t.id = p.task_id
		WHERE p.source = ? AND t.status IN (?, ?)`, source, StatusQueued, StatusRunning).Row().Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the waiting pushes of %s: %w", source, err)
	}
	return n, nil
}

// PushesWaiting reports whether the source has a task queued or running:
// a push accepted and not applied yet, or one a process was applying when
// it died. One look through the tasks' (source, status) index.
func (s *Store) PushesWaiting(ctx context.Context, source string) (bool, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Raw(`SELECT id FROM tasks WHERE source = ? AND status IN (?, ?) LIMIT 1`,
		source, StatusQueued, StatusRunning).Scan(&ids).Error
	if err != nil {
		return false, fmt.Errorf("look for waiting pushes of %s: %w", source, err)
	}
	return len(ids) > 0, nil
}

// StoredPush is a push as the store keeps it until it is applied.
type StoredPush struct {
	Body    []byte
	Seq     int64 // its place in the source's order
	Records int
}

// PushPayload returns a push task's stored payload.
func (s *Store) PushPayload(ctx context.Context, taskID int64) (*StoredPush, error) {
	var body string
	p := &StoredPush{}
	err := s.db.WithContext(ctx).Raw(`SELECT body, seq, records FROM task_payloads WHERE task_id = ?`, taskID).Row().
		Scan(&body, &p.Seq, &p.Records)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("the payload of task %d: %w", taskID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the payload of task %d: %w", taskID, err)
	}
	p.Body = []byte(body)
	return p, nil
}

// NextPushTask returns the source's queued push that comes first, or nil.
func (s *Store) NextPushTask(ctx context.Context, source string) (*Task, error) {
	var t Task
	err := s.db.WithContext(ctx).Raw(`SELECT t.* FROM tasks t JOIN task_payloads p ON p.task_id = t.id
		WHERE p.source = ? AND t.status = ? ORDER BY p.seq, t.id LIMIT 1`, source, StatusQueued).Scan(&t).Error
	if err != nil {
		return nil, fmt.Errorf("find queued pushes of %s: %w", source, err)
	}
	if t.ID == 0 {
		return nil, nil
	}
	return &t, nil
}
