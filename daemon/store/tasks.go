package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Task statuses (SPEC §5).
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusHeld      = "held"
	StatusRejected  = "rejected"
	// StatusSuperseded is a held task that a newer task of its source
	// made out of date before anyone approved or rejected it: it waits for
	// nobody, cannot be approved, and expires after tasks.keep.
	StatusSuperseded = "superseded"
)

// BeforeSave stamps finished_at on a task saved in a final status without
// one. This is the one place a task's end is stamped: a task's final state
// is saved in the transaction that applies its plan, after the plan's
// writes, so that finished_at − started_at (the duration roster sync
// prints and roster_sync_task_duration_seconds observes) covers the apply.
func (t *Task) BeforeSave(*gorm.DB) error {
	if t.FinishedAt == nil && finalStatus(t.Status) {
		now := time.Now().UTC()
		t.FinishedAt = &now
	}
	return nil
}

// finalStatus reports whether a task in status has ended (a held task has
// ended too: its approval runs it again).
func finalStatus(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusSkipped, StatusHeld, StatusRejected, StatusSuperseded:
		return true
	}
	return false
}

// AfterSave marks the source's older held tasks superseded when t read
// the source's input anew and ended with it: applied (succeeded), found
// it unchanged since the last success (skipped) or held it itself. Their
// plans were made from older input than t's, so approving them would apply
// what the source no longer says. It runs in the statement's transaction
// (the one that applies t's plan, or holds it), so no reader sees t ended
// and the old task still held. Failed and rejected tasks read nothing
// that counts, and a dry run writes nothing.
func (t *Task) AfterSave(tx *gorm.DB) error {
	if t.DryRun || !supersedes(t.Status) {
		return nil
	}
	// A new statement on the same connection or transaction: Exec on tx
	// itself would overwrite the save's RowsAffected, which Save reads
	// after the hooks (zero makes it insert the row again).
	err := tx.Session(&gorm.Session{NewDB: true}).Exec(`UPDATE tasks SET status = ? WHERE source = ? AND status = ? AND id < ?`,
		StatusSuperseded, t.Source, StatusHeld, t.ID).Error
	if err != nil {
		return fmt.Errorf("mark the held tasks of %s before task %d superseded: %w", t.Source, t.ID, err)
	}
	return nil
}

// supersedes reports whether a task that ends in status supersedes the
// held tasks before it (see AfterSave).
func supersedes(status string) bool {
	return status == StatusSucceeded || status == StatusSkipped || status == StatusHeld
}

// SupersededBy returns the task that superseded t: the first newer task
// of its source that ended in a status that supersedes, or nil.
func (s *Store) SupersededBy(ctx context.Context, t *Task) (*Task, error) {
	var n Task
	err := s.db.WithContext(ctx).Where("source = ? AND id > ? AND status IN ? AND NOT dry_run", t.Source, t.ID,
		[]string{StatusSucceeded, StatusSkipped, StatusHeld, StatusSuperseded, StatusRejected}).Order("id").Take(&n).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the task that superseded task %d: %w", t.ID, err)
	}
	return &n, nil
}

// CreateTask inserts t and sets its ID.
func (s *Store) CreateTask(ctx context.Context, t *Task) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now().UTC()
	}
	if t.Counts == "" {
		t.Counts = "{}"
	}
	if t.Warnings == "" {
		t.Warnings = "[]"
	}
	if t.Errors == "" {
		t.Errors = "[]"
	}
	if err := s.db.WithContext(ctx).Create(t).Error; err != nil {
		return fmt.Errorf("record the task: %w", err)
	}
	return nil
}

// SaveTask writes every field of t.
func (s *Store) SaveTask(ctx context.Context, t *Task) error {
	if err := s.db.WithContext(ctx).Save(t).Error; err != nil {
		return fmt.Errorf("update task %d: %w", t.ID, err)
	}
	return nil
}

// GetTask returns one task.
func (s *Store) GetTask(ctx context.Context, id int64) (*Task, error) {
	var t Task
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read task %d: %w", id, err)
	}
	return &t, nil
}

// TaskFilter selects tasks; zero fields select everything.
type TaskFilter struct {
	Source string
	Status string
	Limit  int
	Offset int
}

// ListTasks returns the newest tasks first and the number matching.
func (s *Store) ListTasks(ctx context.Context, f TaskFilter) ([]Task, int64, error) {
	q := s.db.WithContext(ctx).Model(&Task{})
	if f.Source != "" {
		q = q.Where("source = ?", f.Source)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	var total int64
	if err := q.Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count tasks: %w", err)
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var tasks []Task
	if err := q.Order("id DESC").Limit(f.Limit).Offset(f.Offset).Find(&tasks).Error; err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", err)
	}
	return tasks, total, nil
}

// LastTask returns the newest task of a source, or nil.
func (s *Store) LastTask(ctx context.Context, source string) (*Task, error) {
	var t Task
	err := s.db.WithContext(ctx).Where("source = ?", source).Order("id DESC").Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the last task of %s: %w", source, err)
	}
	return &t, nil
}

// LastTaskWithTrigger returns the newest task of a source with a trigger,
// or nil.
func (s *Store) LastTaskWithTrigger(ctx context.Context, source, trigger string) (*Task, error) {
	var t Task
	err := s.db.WithContext(ctx).Where("source = ? AND trigger = ?", source, trigger).Order("id DESC").Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the last %s task of %s: %w", trigger, source, err)
	}
	return &t, nil
}

// HoldTask sets a task held and keeps its plan, in one transaction.
func (s *Store) HoldTask(ctx context.Context, t *Task, plan *HeldPlan) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(t).Error; err != nil {
			return fmt.Errorf("hold task %d: %w", t.ID, err)
		}
		plan.TaskID = t.ID
		plan.CreatedAt = time.Now().UTC()
		if err := tx.Save(plan).Error; err != nil {
			return fmt.Errorf("keep the plan of task %d: %w", t.ID, err)
		}
		return nil
	})
}

// GetHeldPlan returns the plan kept for a held task.
func (s *Store) GetHeldPlan(ctx context.Context, taskID int64) (*HeldPlan, error) {
	var p HeldPlan
	err := s.db.WithContext(ctx).Where("task_id = ?", taskID).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("plan of task %d: %w", taskID, ErrNotFound)
	}
	return &p, err
}

// TasksWithStatus returns the tasks in a status, oldest first.
func (s *Store) TasksWithStatus(ctx context.Context, status string) ([]Task, error) {
	var tasks []Task
	err := s.db.WithContext(ctx).Where("status = ?", status).Order("id").Find(&tasks).Error
	if err != nil {
		return nil, fmt.Errorf("list %s tasks: %w", status, err)
	}
	return tasks, nil
}

// Expire removes tombstones deleted before tombstonesBefore and tasks
// finished before tasksBefore (with their held plans), and returns the raw
// record paths of the removed tasks so the caller can delete the files.
func (s *Store) Expire(ctx context.Context, tombstonesBefore, tasksBefore time.Time) (raw []string, err error) {
	db := s.db.WithContext(ctx)
	// Times are stored in UTC; SQLite compares them as text.
	tombstonesBefore, tasksBefore = tombstonesBefore.UTC(), tasksBefore.UTC()
	err = db.Transaction(func(tx *gorm.DB) error {
		const purged = `SELECT id FROM users WHERE state = 'deleted' AND deleted_at < ?`
		for _, table := range []string{"user_emails", "user_phone_numbers", "department_owners"} {
			if err := tx.Exec(`DELETE FROM `+table+` WHERE user_id IN (`+purged+`)`, tombstonesBefore).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`DELETE FROM memberships WHERE member_id IN (`+purged+`)`, tombstonesBefore).Error; err != nil {
			return err
		}
		return tx.Exec(`DELETE FROM users WHERE state = 'deleted' AND deleted_at < ?`, tombstonesBefore).Error
	})
	if err != nil {
		return nil, fmt.Errorf("purge deleted users: %w", err)
	}
	var old []Task
	if err := db.Select("id", "raw_record").Where("finished_at < ? AND status <> ?", tasksBefore, StatusHeld).Find(&old).Error; err != nil {
		return nil, fmt.Errorf("find old tasks: %w", err)
	}
	var ids []int64
	for _, t := range old {
		ids = append(ids, t.ID)
		if t.RawRecord != "" {
			raw = append(raw, t.RawRecord)
		}
	}
	for start := 0; start < len(ids); start += s.batchRows() {
		chunk := ids[start:min(start+s.batchRows(), len(ids))]
		if err := db.Exec(`DELETE FROM held_plans WHERE task_id IN ?`, chunk).Error; err != nil {
			return nil, fmt.Errorf("remove old plans: %w", err)
		}
		if err := db.Exec(`DELETE FROM task_payloads WHERE task_id IN ?`, chunk).Error; err != nil {
			return nil, fmt.Errorf("remove old payloads: %w", err)
		}
		if err := db.Exec(`DELETE FROM tasks WHERE id IN ?`, chunk).Error; err != nil {
			return nil, fmt.Errorf("remove old tasks: %w", err)
		}
	}
	return raw, nil
}

// WithPassword returns which of the external ids name users of source that
// have a password already (tombstones included): a sync sets an initial
// password only for users without one (SPEC §3.1), so it hashes only theirs.
func (s *Store) WithPassword(ctx context.Context, source string, ids []string) (map[string]bool, error) {
	found := map[string]bool{}
	const batch = 500 // well under either engine's limit of bound parameters
	for start := 0; start < len(ids); start += batch {
		chunk := ids[start:min(start+batch, len(ids))]
		var have []string
		err := s.db.WithContext(ctx).Raw(`SELECT external_id FROM users WHERE source = ? AND keyed AND password_hash <> '' AND external_id IN ?`,
			source, chunk).Scan(&have).Error
		if err != nil {
			return nil, fmt.Errorf("find which users of %s have a password: %w", source, err)
		}
		for _, id := range have {
			found[id] = true
		}
	}
	return found, nil
}
