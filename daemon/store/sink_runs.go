package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Triggers of a sink run: why the step ran.
const (
	SinkTriggerInterval = "interval" // the sink's interval passed
	SinkTriggerRetry    = "retry"    // the back-off after a failed run passed
	SinkTriggerApprove  = "approve"  // an operator approved held removals
	SinkTriggerOperator = "operator" // an operator asked for a run now
)

// Statuses of a sink run.
const (
	SinkRunOK     = "ok"
	SinkRunFailed = "failed"
	SinkRunHeld   = "held"
)

// MaxSinkRunErrors bounds the per-resource errors kept with a run; the
// run's Failed count says how many there were.
const MaxSinkRunErrors = 100

// MaxSinkRuns bounds the runs kept per sink, whatever their age.
const MaxSinkRuns = 1000

// SinkRun is one recorded delivery step of a sink (migration 12).
type SinkRun struct {
	ID         int64     `json:"id"`
	Sink       string    `json:"sink"`
	Trigger    string    `json:"trigger"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Repeats counts the later steps that found the sink held for the
	// same reason and did nothing: they end on this run instead of adding
	// one each interval.
	Repeats int            `json:"repeats"`
	Counts  SinkRunCounts  `json:"counts"`
	Errors  []ResourceFail `json:"errors"`
	// Error is why the run failed or was held; "" for a run that ended.
	Error string `json:"error,omitempty"`
}

// SinkRunCounts are what a run did, by action.
type SinkRunCounts struct {
	Created     int `json:"created"`
	Adopted     int `json:"adopted"`
	Updated     int `json:"updated"`
	Deactivated int `json:"deactivated"`
	Deleted     int `json:"deleted"`
	Failed      int `json:"failed"`
}

// ResourceFail is a resource the service refused, with its answer. Path
// is below the sink's URL, never the URL itself.
type ResourceFail struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// AddSinkRun records a run and sets its ID. A held run that did nothing
// and that no operator asked for, after a held run of the same reason, extends that run (Repeats, its
// end) and takes its ID, so a sink waiting for an operator all day keeps
// one row.
func (s *Store) AddSinkRun(ctx context.Context, r *SinkRun) error {
	errs := r.Errors
	if len(errs) > MaxSinkRunErrors {
		errs = errs[:MaxSinkRunErrors]
	}
	if errs == nil {
		errs = []ResourceFail{}
	}
	data, err := json.Marshal(errs)
	if err != nil {
		return fmt.Errorf("record a run of sink %s: %w", r.Sink, err)
	}
	db := s.db.WithContext(ctx)
	start, end := r.StartedAt.UTC(), r.FinishedAt.UTC()
	return db.Transaction(func(tx *gorm.DB) error {
		if r.Status == SinkRunHeld && r.Counts == (SinkRunCounts{}) && len(r.Errors) == 0 &&
			(r.Trigger == SinkTriggerInterval || r.Trigger == SinkTriggerRetry) {
			var last struct {
				ID     int64
				Status string
				Error  string
			}
			err := tx.Raw(`SELECT id, status, error FROM sink_runs WHERE sink = ? ORDER BY id DESC LIMIT 1`, r.Sink).Row().
				Scan(&last.ID, &last.Status, &last.Error)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("record a run of sink %s: %w", r.Sink, err)
			}
			if err == nil && last.Status == SinkRunHeld && last.Error == r.Error {
				if err := tx.Exec(`UPDATE sink_runs SET repeats = repeats + 1, finished_at = ? WHERE id = ?`, end, last.ID).Error; err != nil {
					return fmt.Errorf("record a run of sink %s: %w", r.Sink, err)
				}
				r.ID = last.ID
				return nil
			}
		}
		c := r.Counts
		args := []any{r.Sink, r.Trigger, r.Status, start, end, c.Created, c.Adopted, c.Updated, c.Deactivated, c.Deleted, c.Failed, string(data), r.Error}
		const cols = `(sink, trigger, status, started_at, finished_at, created, adopted, updated, deactivated, deleted, failed, errors, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		if s.driver == Postgres {
			if err := tx.Raw(`INSERT INTO sink_runs `+cols+` RETURNING id`, args...).Row().Scan(&r.ID); err != nil {
				return fmt.Errorf("record a run of sink %s: %w", r.Sink, err)
			}
			return nil
		}
		if err := tx.Exec(`INSERT INTO sink_runs `+cols, args...).Error; err != nil {
			return fmt.Errorf("record a run of sink %s: %w", r.Sink, err)
		}
		if err := tx.Raw(`SELECT last_insert_rowid()`).Row().Scan(&r.ID); err != nil {
			return fmt.Errorf("record a run of sink %s: %w", r.Sink, err)
		}
		return nil
	})
}

const sinkRunCols = `id, sink, trigger, status, started_at, finished_at, repeats, created, adopted, updated, deactivated, deleted, failed, errors, error`

func scanSinkRun(row interface{ Scan(...any) error }) (SinkRun, error) {
	var r SinkRun
	var errs string
	c := &r.Counts
	if err := row.Scan(&r.ID, &r.Sink, &r.Trigger, &r.Status, &r.StartedAt, &r.FinishedAt, &r.Repeats,
		&c.Created, &c.Adopted, &c.Updated, &c.Deactivated, &c.Deleted, &c.Failed, &errs, &r.Error); err != nil {
		return r, err
	}
	r.StartedAt, r.FinishedAt = r.StartedAt.UTC(), r.FinishedAt.UTC()
	if err := json.Unmarshal([]byte(errs), &r.Errors); err != nil {
		return r, fmt.Errorf("run %d of sink %s: its errors are damaged: %w", r.ID, r.Sink, err)
	}
	return r, nil
}

// SinkRuns returns the sink's runs, newest first, and how many it has.
func (s *Store) SinkRuns(ctx context.Context, sink string, limit, offset int) ([]SinkRun, int64, error) {
	db := s.db.WithContext(ctx)
	var total int64
	if err := db.Raw(`SELECT COUNT(*) FROM sink_runs WHERE sink = ?`, sink).Row().Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count the runs of sink %s: %w", sink, err)
	}
	rows, err := db.Raw(`SELECT `+sinkRunCols+` FROM sink_runs WHERE sink = ? ORDER BY id DESC LIMIT ? OFFSET ?`, sink, limit, offset).Rows()
	if err != nil {
		return nil, 0, fmt.Errorf("list the runs of sink %s: %w", sink, err)
	}
	defer rows.Close()
	out := []SinkRun{}
	for rows.Next() {
		r, err := scanSinkRun(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list the runs of sink %s: %w", sink, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list the runs of sink %s: %w", sink, err)
	}
	return out, total, nil
}

// SinkRun returns one run of the sink; ErrNotFound when it has none of
// that id.
func (s *Store) SinkRun(ctx context.Context, sink string, id int64) (SinkRun, error) {
	r, err := scanSinkRun(s.db.WithContext(ctx).Raw(`SELECT `+sinkRunCols+` FROM sink_runs WHERE sink = ? AND id = ?`, sink, id).Row())
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("sink %s has no run %d: %w", sink, id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("read run %d of sink %s: %w", id, sink, err)
	}
	return r, nil
}

// LastSinkRunID is the id of the sink's newest run, 0 before the first.
func (s *Store) LastSinkRunID(ctx context.Context, sink string) (int64, error) {
	var id int64
	if err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(id), 0) FROM sink_runs WHERE sink = ?`, sink).Row().Scan(&id); err != nil {
		return 0, fmt.Errorf("read the runs of sink %s: %w", sink, err)
	}
	return id, nil
}

// ExpireSinkRuns removes the runs that finished before before, and the
// runs of each sink beyond its newest MaxSinkRuns, and returns how many
// it removed.
func (s *Store) ExpireSinkRuns(ctx context.Context, before time.Time) (int64, error) {
	db := s.db.WithContext(ctx)
	res := db.Exec(`DELETE FROM sink_runs WHERE finished_at < ?`, before.UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("expire the sink runs: %w", res.Error)
	}
	n := res.RowsAffected
	var sinks []string
	if err := db.Raw(`SELECT sink FROM sink_runs GROUP BY sink HAVING COUNT(*) > ?`, MaxSinkRuns).Scan(&sinks).Error; err != nil {
		return n, fmt.Errorf("expire the sink runs: %w", err)
	}
	for _, sink := range sinks {
		var floor int64
		err := db.Raw(`SELECT id FROM sink_runs WHERE sink = ? ORDER BY id DESC LIMIT 1 OFFSET ?`, sink, MaxSinkRuns-1).Row().Scan(&floor)
		if err != nil {
			return n, fmt.Errorf("expire the runs of sink %s: %w", sink, err)
		}
		res := db.Exec(`DELETE FROM sink_runs WHERE sink = ? AND id < ?`, sink, floor)
		if res.Error != nil {
			return n, fmt.Errorf("expire the runs of sink %s: %w", sink, res.Error)
		}
		n += res.RowsAffected
	}
	return n, nil
}

// RequestSinkRun asks the replica delivering the sink to run it now;
// ErrNotFound when the sink is not registered.
func (s *Store) RequestSinkRun(ctx context.Context, sink string) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE sinks SET run_requested = ? WHERE name = ?`, time.Now().UTC(), sink)
	if res.Error != nil {
		return fmt.Errorf("ask sink %s to run: %w", sink, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("sink %s is not registered by a roster serve yet: %w", sink, ErrNotFound)
	}
	return nil
}

// SinkWake says whether the sink should run before its interval ends: an
// operator asked for a run, or approved held removals. It is read often
// (every second by the delivering replica) and reads one row.
func (s *Store) SinkWake(ctx context.Context, sink string) (requested, approved bool, err error) {
	var at sql.NullTime
	err = s.db.WithContext(ctx).Raw(`SELECT run_requested, approved AND held <> '' FROM sinks WHERE name = ?`, sink).Row().Scan(&at, &approved)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, fmt.Errorf("sink %s: %w", sink, ErrNotFound)
	}
	if err != nil {
		return false, false, fmt.Errorf("read sink %s: %w", sink, err)
	}
	return at.Valid, approved, nil
}

// TakeSinkRunRequest clears an operator's request for a run and reports
// whether there was one.
func (s *Store) TakeSinkRunRequest(ctx context.Context, sink string) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE sinks SET run_requested = NULL WHERE name = ? AND run_requested IS NOT NULL`, sink)
	if res.Error != nil {
		return false, fmt.Errorf("take the run request of sink %s: %w", sink, res.Error)
	}
	return res.RowsAffected > 0, nil
}
