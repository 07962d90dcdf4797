package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Kinds of outbox entries: the SCIM resource type that changed. A change
// of a group's members is a change of the group.
const (
	KindUser  = "User"
	KindGroup = "Group"
)

// Change is one entry of the outbox (migration 11): a user or group that
// a committed transaction changed, created or removed. It carries no data:
// the sink reads the resource as it is when it delivers.
type Change struct {
	Position   Position
	Kind       string
	ResourceID string
	At         time.Time
}

// Position orders outbox entries: by the writing transaction's id (0 on
// SQLite), then by seq. A sink's position is the last entry it delivered.
type Position struct {
	XID int64
	Seq int64
}

// After reports whether p comes after q.
func (p Position) After(q Position) bool {
	return p.XID > q.XID || p.XID == q.XID && p.Seq > q.Seq
}

// SinkState is what the store keeps of a sink.
type SinkState struct {
	Name     string
	Position Position
	// Queue is the number of outbox entries after Position.
	Queue int64
	// Oldest is when the oldest of them was written; zero when Queue is 0.
	Oldest time.Time
	// Failures counts the failed runs since the last one that succeeded;
	// LastError is the last failure's reason, "" after a success.
	Failures  int
	LastError string
	// LastRunAt is when the last run ended; zero before the first.
	LastRunAt time.Time
	// Held says why the sink waits for an operator ("" when it does
	// not): its next removals exceed max_removals. Approved is set when
	// the operator let them go; the sink then delivers them and is
	// released.
	Held     string
	Approved bool
}

// RegisterSinks makes the sinks table hold exactly names. A sink new to
// the store starts at the end of the outbox: what was committed before is
// found by its first full comparison, what commits later is recorded for
// it. A sink no longer named loses its position and id map, and stops
// holding back the outbox's retention; with no sink left the triggers
// record nothing (on PostgreSQL they are dropped, see outboxTriggers).
func (s *Store) RegisterSinks(ctx context.Context, names []string) error {
	var err error
	// Creating or dropping PostgreSQL's triggers locks users, groups and
	// memberships one after the other; a write transaction that holds one
	// of them and waits for another can deadlock with it, and the server
	// then aborts one of the two. The registration is worth another try:
	// it reads the sinks afresh each time.
	for range 3 {
		if err = s.registerSinks(ctx, names); !isDeadlock(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("register the sinks: %w", err)
	}
	return nil
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

func (s *Store) registerSinks(ctx context.Context, names []string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.driver == Postgres {
			// Replicas register their sinks at start: one at a time, so
			// that one dropping the triggers for the last sink it forgets
			// cannot interleave with another registering a first one
			// (each would decide on the sinks it saw before the other
			// committed).
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtextextended('roster/' || current_database() || '/' || current_schema() || '/sinks', 0))`).Error; err != nil {
				return fmt.Errorf("take the sinks lock: %w", err)
			}
		}
		var known []string
		if err := tx.Raw(`SELECT name FROM sinks`).Scan(&known).Error; err != nil {
			return err
		}
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
		}
		for _, n := range known {
			if want[n] {
				delete(want, n)
				continue
			}
			if err := tx.Exec(`DELETE FROM sinks WHERE name = ?`, n).Error; err != nil {
				return err
			}
			if err := tx.Exec(`DELETE FROM sink_ids WHERE sink = ?`, n).Error; err != nil {
				return err
			}
		}
		if len(want) == 0 {
			return s.syncOutboxTriggers(tx)
		}
		start, err := s.outboxEnd(tx)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !want[n] {
				continue
			}
			if err := tx.Exec(`INSERT INTO sinks (name, position_xid, position_seq, created_at) VALUES (?, ?, ?, ?)`,
				n, start.XID, start.Seq, time.Now().UTC()).Error; err != nil {
				return err
			}
		}
		return s.syncOutboxTriggers(tx)
	})
}

// outboxTriggers are the outbox's triggers (PostgreSQL's functions are
// migration 11's). They exist only while a sink is registered: PostgreSQL
// fills a statement's transition tables whenever such a trigger exists,
// which made a 100,000-user sync about a quarter slower with no sink to
// record for, and SQLite's per-row triggers would still test for a sink
// on every row written (docs/sinks.md).
var outboxTriggers = []struct{ table, name, event, transition, function string }{
	{"users", "users_outbox_insert", "INSERT", "NEW TABLE AS new_rows", "roster_outbox_users"},
	{"users", "users_outbox_update", "UPDATE", "NEW TABLE AS new_rows", "roster_outbox_users"},
	{"users", "users_outbox_delete", "DELETE", "OLD TABLE AS old_rows", "roster_outbox_users"},
	{"groups", "groups_outbox_insert", "INSERT", "NEW TABLE AS new_rows", "roster_outbox_groups"},
	{"groups", "groups_outbox_update", "UPDATE", "NEW TABLE AS new_rows", "roster_outbox_groups"},
	{"groups", "groups_outbox_delete", "DELETE", "OLD TABLE AS old_rows", "roster_outbox_groups"},
	{"memberships", "memberships_outbox_insert", "INSERT", "NEW TABLE AS new_rows", "roster_outbox_memberships"},
	{"memberships", "memberships_outbox_update", "UPDATE", "NEW TABLE AS new_rows", "roster_outbox_memberships"},
	{"memberships", "memberships_outbox_delete", "DELETE", "OLD TABLE AS old_rows", "roster_outbox_memberships"},
}

// syncOutboxTriggers makes the outbox triggers exist exactly
// when the sinks table, as tx sees it, has a row; it runs in the
// transaction that changes that table, under the sinks lock. Creating a
// trigger waits for the transactions writing to its table and holds
// back the later ones until tx commits, so every write committed after
// the sink is recorded; what committed before is found by the sink's
// first full comparison. Nothing is done when the triggers already match,
// so a restart with the same sinks locks no table.
func (s *Store) syncOutboxTriggers(tx *gorm.DB) error {
	var sinks, present int64
	if err := tx.Raw(`SELECT COUNT(*) FROM sinks`).Row().Scan(&sinks); err != nil {
		return fmt.Errorf("count the sinks: %w", err)
	}
	names := make([]string, len(outboxTriggers))
	for i, t := range outboxTriggers {
		names[i] = t.name
	}
	lookup := `SELECT COUNT(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname IN ?`
	if s.driver != Postgres {
		lookup = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ?`
	}
	if err := tx.Raw(lookup, names).Row().Scan(&present); err != nil {
		return fmt.Errorf("look up the outbox triggers: %w", err)
	}
	switch {
	case sinks > 0 && present != int64(len(outboxTriggers)):
		for _, t := range outboxTriggers {
			if err := tx.Exec(s.outboxTrigger(t.name, t.event, t.table, t.transition, t.function)).Error; err != nil {
				return fmt.Errorf("create the outbox trigger %s: %w", t.name, err)
			}
		}
	case sinks == 0 && present > 0:
		for _, t := range outboxTriggers {
			drop := `DROP TRIGGER IF EXISTS ` + t.name
			if s.driver == Postgres {
				drop += ` ON ` + t.table
			}
			if err := tx.Exec(drop).Error; err != nil {
				return fmt.Errorf("drop the outbox trigger %s: %w", t.name, err)
			}
		}
	}
	return nil
}

// outboxTrigger is the statement that creates an outbox trigger: on
// PostgreSQL one per statement over its transition table (function does
// the insert), on SQLite one per row that inserts itself.
func (s *Store) outboxTrigger(name, event, table, transition, function string) string {
	if s.driver == Postgres {
		return `CREATE OR REPLACE TRIGGER ` + name + ` AFTER ` + event + ` ON ` + table +
			` REFERENCING ` + transition + ` FOR EACH STATEMENT EXECUTE FUNCTION ` + function + `()`
	}
	kind, id := "User", "id"
	switch table {
	case "groups":
		kind = "Group"
	case "memberships":
		kind, id = "Group", "group_id"
	}
	row := "NEW"
	if event == "DELETE" {
		row = "OLD"
	}
	return `CREATE TRIGGER IF NOT EXISTS ` + name + ` AFTER ` + event + ` ON ` + table +
		` BEGIN INSERT INTO outbox (kind, resource_id, at) VALUES ('` + kind + `', ` + row + `.` + id + `, CURRENT_TIMESTAMP); END`
}

// outboxEnd is the position before every entry a reader has not been
// able to see yet. On PostgreSQL that is just before the oldest running
// transaction: what older ones wrote is committed (and will be seen by
// the sink's full comparison), what it and newer ones write comes after.
func (s *Store) outboxEnd(tx *gorm.DB) (Position, error) {
	var p Position
	if s.driver == Postgres {
		err := tx.Raw(`SELECT txid_snapshot_xmin(txid_current_snapshot())`).Row().Scan(&p.XID)
		return p, err
	}
	err := tx.Raw(`SELECT COALESCE(MAX(seq), 0) FROM outbox`).Row().Scan(&p.Seq)
	return p, err
}

// Changes returns up to limit outbox entries after from, in order. On
// PostgreSQL only entries of transactions older than every running one are
// returned, so that no entry can later appear before one already returned.
func (s *Store) Changes(ctx context.Context, from Position, limit int) ([]Change, error) {
	q := `SELECT xid, seq, kind, resource_id, at FROM outbox WHERE (xid > ? OR xid = ? AND seq > ?)`
	if s.driver == Postgres {
		q += ` AND xid < txid_snapshot_xmin(txid_current_snapshot())`
	}
	q += ` ORDER BY xid, seq LIMIT ?`
	rows, err := s.db.WithContext(ctx).Raw(q, from.XID, from.XID, from.Seq, limit).Rows()
	if err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.Position.XID, &c.Position.Seq, &c.Kind, &c.ResourceID, &c.At); err != nil {
			return nil, fmt.Errorf("read the outbox: %w", err)
		}
		c.At = c.At.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	return out, nil
}

// SetSinkPosition records that the sink delivered every entry up to p.
// Positions only move forward: a replica that lost its lock and delivers
// an old batch late cannot move a newer position back.
func (s *Store) SetSinkPosition(ctx context.Context, sink string, p Position) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE sinks SET position_xid = ?, position_seq = ?
		WHERE name = ? AND (position_xid < ? OR position_xid = ? AND position_seq < ?)`,
		p.XID, p.Seq, sink, p.XID, p.XID, p.Seq)
	if res.Error != nil {
		return fmt.Errorf("record the position of sink %s: %w", sink, res.Error)
	}
	return nil
}

// Sink returns what the store keeps of a sink, ErrNotFound when it is
// not registered.
func (s *Store) Sink(ctx context.Context, name string) (SinkState, error) {
	st := SinkState{Name: name}
	db := s.db.WithContext(ctx)
	var last sql.NullTime
	err := db.Raw(`SELECT position_xid, position_seq, failures, last_error, last_run_at, held, approved FROM sinks WHERE name = ?`, name).Row().
		Scan(&st.Position.XID, &st.Position.Seq, &st.Failures, &st.LastError, &last, &st.Held, &st.Approved)
	st.LastRunAt = last.Time.UTC()
	if !last.Valid {
		st.LastRunAt = time.Time{}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("sink %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("read sink %s: %w", name, err)
	}
	p := st.Position
	err = db.Raw(`SELECT COUNT(*) FROM outbox WHERE xid > ? OR xid = ? AND seq > ?`, p.XID, p.XID, p.Seq).Row().Scan(&st.Queue)
	if err != nil {
		return st, fmt.Errorf("read the queue of sink %s: %w", name, err)
	}
	if st.Queue > 0 {
		var at time.Time
		err = db.Raw(`SELECT at FROM outbox WHERE xid > ? OR xid = ? AND seq > ? ORDER BY xid, seq LIMIT 1`, p.XID, p.XID, p.Seq).Row().Scan(&at)
		if err != nil {
			return st, fmt.Errorf("read the lag of sink %s: %w", name, err)
		}
		st.Oldest = at.UTC()
	}
	return st, nil
}

// TrimOutbox removes the entries every registered sink has delivered, all
// of them when no sink is registered, and returns how many it removed.
func (s *Store) TrimOutbox(ctx context.Context) (int64, error) {
	db := s.db.WithContext(ctx)
	min := Position{XID: math.MaxInt64, Seq: math.MaxInt64}
	rows, err := db.Raw(`SELECT position_xid, position_seq FROM sinks`).Rows()
	if err != nil {
		return 0, fmt.Errorf("trim the outbox: %w", err)
	}
	for rows.Next() {
		var p Position
		if err := rows.Scan(&p.XID, &p.Seq); err != nil {
			rows.Close()
			return 0, fmt.Errorf("trim the outbox: %w", err)
		}
		if min.After(p) {
			min = p
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("trim the outbox: %w", err)
	}
	res := db.Exec(`DELETE FROM outbox WHERE xid < ? OR xid = ? AND seq <= ?`, min.XID, min.XID, min.Seq)
	if res.Error != nil {
		return 0, fmt.Errorf("trim the outbox: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// ServiceID returns the id the sink's service gave a resource, "" when
// the sink has not delivered it.
func (s *Store) ServiceID(ctx context.Context, sink, kind, id string) (string, error) {
	var sid string
	err := s.db.WithContext(ctx).Raw(`SELECT service_id FROM sink_ids WHERE sink = ? AND kind = ? AND resource_id = ?`,
		sink, kind, id).Row().Scan(&sid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the %s id of %s %s: %w", sink, kind, id, err)
	}
	return sid, nil
}

// SetServiceID records the id the sink's service holds a resource under;
// "" forgets it (the resource was deleted on the service).
func (s *Store) SetServiceID(ctx context.Context, sink, kind, id, serviceID string) error {
	db := s.db.WithContext(ctx)
	var err error
	if serviceID == "" {
		err = db.Exec(`DELETE FROM sink_ids WHERE sink = ? AND kind = ? AND resource_id = ?`, sink, kind, id).Error
	} else {
		err = db.Exec(`INSERT INTO sink_ids (sink, kind, resource_id, service_id) VALUES (?, ?, ?, ?)
			ON CONFLICT (sink, kind, resource_id) DO UPDATE SET service_id = excluded.service_id`, sink, kind, id, serviceID).Error
	}
	if err != nil {
		return fmt.Errorf("record the %s id of %s %s: %w", sink, kind, id, err)
	}
	return nil
}

// TryLockSink takes the sink's delivery lock if it is free, or returns
// ErrLocked: one replica delivers a sink at a time, and the lock goes
// with the process that held it, as a source's does.
func (s *Store) TryLockSink(ctx context.Context, sink string) (Unlock, error) {
	return s.tryLock(ctx, "sink/"+sink)
}

// SinkCompared returns when the sink's last full comparison with its
// service finished, zero before the first.
func (s *Store) SinkCompared(ctx context.Context, sink string) (time.Time, error) {
	var at sql.NullTime
	err := s.db.WithContext(ctx).Raw(`SELECT compared_at FROM sinks WHERE name = ?`, sink).Row().Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("sink %s: %w", sink, ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read sink %s: %w", sink, err)
	}
	return at.Time, nil
}

// SetSinkCompared records that a full comparison of the sink finished.
func (s *Store) SetSinkCompared(ctx context.Context, sink string, at time.Time) error {
	if err := s.db.WithContext(ctx).Exec(`UPDATE sinks SET compared_at = ? WHERE name = ?`, at.UTC(), sink).Error; err != nil {
		return fmt.Errorf("record the comparison of sink %s: %w", sink, err)
	}
	return nil
}

// UserSource returns the source of a user, and whether the user is a
// tombstone; ErrNotFound when there is no such row (purged).
func (s *Store) UserSource(ctx context.Context, id string) (source string, deleted bool, err error) {
	var state string
	err = s.db.WithContext(ctx).Raw(`SELECT source, state FROM users WHERE id = ?`, id).Row().Scan(&source, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", false, fmt.Errorf("read user %s: %w", id, err)
	}
	return source, state == "deleted", nil
}

// GroupParents returns the ids of the groups that hold the group as a
// member.
func (s *Store) GroupParents(ctx context.Context, id string) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Raw(`SELECT group_id FROM memberships WHERE member_id = ? AND member_type = 'Group' ORDER BY group_id`, id).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("read the groups holding %s: %w", id, err)
	}
	return ids, nil
}

// SinkNames lists the registered sinks, by name.
func (s *Store) SinkNames(ctx context.Context) ([]string, error) {
	var names []string
	if err := s.db.WithContext(ctx).Raw(`SELECT name FROM sinks ORDER BY name`).Scan(&names).Error; err != nil {
		return nil, fmt.Errorf("list the sinks: %w", err)
	}
	return names, nil
}

// RecordSinkRun records how a run of the sink ended: failure is "" for a
// success, which resets the failure count, or the reason it failed.
func (s *Store) RecordSinkRun(ctx context.Context, sink, failure string) error {
	q := `UPDATE sinks SET failures = 0, last_error = '', last_run_at = ? WHERE name = ?`
	args := []any{time.Now().UTC(), sink}
	if failure != "" {
		q = `UPDATE sinks SET failures = failures + 1, last_error = ?, last_run_at = ? WHERE name = ?`
		args = append([]any{failure}, args...)
	}
	if err := s.db.WithContext(ctx).Exec(q, args...).Error; err != nil {
		return fmt.Errorf("record the run of sink %s: %w", sink, err)
	}
	return nil
}

// HoldSink records that the sink waits for an operator, and why; ""
// releases it and spends any approval.
func (s *Store) HoldSink(ctx context.Context, sink, reason string) error {
	q := `UPDATE sinks SET held = ? WHERE name = ?`
	if reason == "" {
		q = `UPDATE sinks SET held = ?, approved = FALSE WHERE name = ?`
	}
	if err := s.db.WithContext(ctx).Exec(q, reason, sink).Error; err != nil {
		return fmt.Errorf("record the hold of sink %s: %w", sink, err)
	}
	return nil
}

// ApproveSinkRemovals lets the held sink deliver the removals it holds;
// ErrNotFound when the sink is not held.
func (s *Store) ApproveSinkRemovals(ctx context.Context, sink string) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE sinks SET approved = TRUE WHERE name = ? AND held <> ''`, sink)
	if res.Error != nil {
		return fmt.Errorf("approve the removals of sink %s: %w", sink, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("sink %s is not held: %w", sink, ErrNotFound)
	}
	return nil
}

// SinkServiceUsers counts the users the sink's service holds for roster.
func (s *Store) SinkServiceUsers(ctx context.Context, sink string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM sink_ids WHERE sink = ? AND kind = ?`, sink, KindUser).Row().Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the users of sink %s: %w", sink, err)
	}
	return n, nil
}
