package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migration is one numbered schema change. Statements may use the
// placeholders {{id}} (an auto-increment primary key) and {{ts}} (a
// timestamp column type), which differ between SQLite and PostgreSQL.
type migration struct {
	version int
	name    string
	stmts   []string
	// postgres are run after stmts on PostgreSQL only, sqlite on SQLite
	// only.
	postgres []string
	sqlite   []string
}

// migrations are applied in order, each in its own transaction; a
// migration, once released, is never edited: add a new one instead.
//
// There are no foreign keys: the store keeps the references itself (see
// Apply and Expire), and row-by-row foreign key checks would cost an
// initial import of a million users more than the inserts themselves.
var migrations = []migration{
	{1, "directory, sources and tasks", []string{
		`CREATE TABLE users (
			id TEXT PRIMARY KEY,
			source TEXT NOT NULL,
			external_id TEXT NOT NULL,
			user_name TEXT NOT NULL,
			user_name_key TEXT NOT NULL,
			given_name TEXT NOT NULL DEFAULT '',
			family_name TEXT NOT NULL DEFAULT '',
			display_name TEXT NOT NULL DEFAULT '',
			employee_number TEXT NOT NULL DEFAULT '',
			department TEXT NOT NULL DEFAULT '',
			manager TEXT NOT NULL DEFAULT '',
			active BOOLEAN NOT NULL,
			state TEXT NOT NULL,
			state_reason TEXT NOT NULL DEFAULT '',
			password_hash TEXT NOT NULL DEFAULT '',
			version BIGINT NOT NULL DEFAULT 1,
			created_at {{ts}} NOT NULL,
			updated_at {{ts}} NOT NULL,
			deleted_at {{ts}}
		)`,
		`CREATE UNIQUE INDEX users_source_external_id ON users (source, external_id)`,
		`CREATE UNIQUE INDEX users_user_name_key ON users (user_name_key) WHERE state <> 'deleted'`,
		`CREATE INDEX users_deleted ON users (deleted_at) WHERE state = 'deleted'`,
		`CREATE TABLE user_emails (
			user_id TEXT NOT NULL,
			value TEXT NOT NULL,
			type TEXT NOT NULL DEFAULT '',
			"primary" BOOLEAN NOT NULL DEFAULT FALSE,
			PRIMARY KEY (user_id, value)
		)`,
		`CREATE INDEX user_emails_value ON user_emails (lower(value))`,
		`CREATE TABLE user_phone_numbers (
			user_id TEXT NOT NULL,
			value TEXT NOT NULL,
			type TEXT NOT NULL DEFAULT '',
			"primary" BOOLEAN NOT NULL DEFAULT FALSE,
			PRIMARY KEY (user_id, value)
		)`,
		`CREATE TABLE groups (
			id TEXT PRIMARY KEY,
			source TEXT NOT NULL,
			external_id TEXT NOT NULL DEFAULT '',
			display_name TEXT NOT NULL,
			display_name_key TEXT NOT NULL,
			version BIGINT NOT NULL DEFAULT 1,
			created_at {{ts}} NOT NULL,
			updated_at {{ts}} NOT NULL
		)`,
		`CREATE UNIQUE INDEX groups_source_display_name ON groups (source, display_name_key)`,
		`CREATE TABLE memberships (
			group_id TEXT NOT NULL,
			member_id TEXT NOT NULL,
			member_type TEXT NOT NULL,
			PRIMARY KEY (group_id, member_id)
		)`,
		`CREATE INDEX memberships_member ON memberships (member_id)`,
		`CREATE TABLE sources (
			name TEXT PRIMARY KEY,
			type TEXT NOT NULL,
			revision BIGINT NOT NULL DEFAULT 0,
			last_fingerprint TEXT NOT NULL DEFAULT '',
			last_success_at {{ts}},
			created_at {{ts}} NOT NULL
		)`,
		`CREATE TABLE tasks (
			id {{id}},
			source TEXT NOT NULL,
			trigger TEXT NOT NULL,
			status TEXT NOT NULL,
			dry_run BOOLEAN NOT NULL DEFAULT FALSE,
			force BOOLEAN NOT NULL DEFAULT FALSE,
			created_at {{ts}} NOT NULL,
			started_at {{ts}},
			finished_at {{ts}},
			counts TEXT NOT NULL DEFAULT '{}',
			warnings TEXT NOT NULL DEFAULT '[]',
			errors TEXT NOT NULL DEFAULT '[]',
			retry_of BIGINT,
			raw_record TEXT NOT NULL DEFAULT '',
			fingerprint TEXT NOT NULL DEFAULT '',
			transient BOOLEAN NOT NULL DEFAULT FALSE,
			attempt INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX tasks_source_status ON tasks (source, status)`,
		`CREATE INDEX tasks_status ON tasks (status, created_at)`,
		`CREATE TABLE held_plans (
			task_id BIGINT PRIMARY KEY,
			revision BIGINT NOT NULL,
			reason TEXT NOT NULL,
			plan TEXT NOT NULL,
			created_at {{ts}} NOT NULL
		)`,
	}, nil, nil},
	{2, "push sources: stored payloads, departments, pending memberships", []string{
		// A push is kept here from its 202 until it succeeds, so that any
		// replica can run or retry it; seq orders a source's pushes (a
		// retry keeps the seq of the push it repeats).
		`CREATE TABLE task_payloads (
			task_id BIGINT PRIMARY KEY,
			source TEXT NOT NULL,
			seq BIGINT NOT NULL,
			records INTEGER NOT NULL DEFAULT 0,
			body TEXT NOT NULL
		)`,
		`CREATE INDEX task_payloads_source_seq ON task_payloads (source, seq)`,
		// Memberships in pushed departments that have not arrived yet.
		`CREATE TABLE pending_members (
			source TEXT NOT NULL,
			dept_uid TEXT NOT NULL,
			member_id TEXT NOT NULL,
			member_type TEXT NOT NULL,
			PRIMARY KEY (source, dept_uid, member_id)
		)`,
		`CREATE INDEX pending_members_member ON pending_members (member_id)`,
		`ALTER TABLE users ADD COLUMN department_uid TEXT NOT NULL DEFAULT ''`,
		`CREATE INDEX users_department_uid ON users (source, department_uid) WHERE department_uid <> ''`,
		`CREATE INDEX groups_source_external_id ON groups (source, external_id)`,
		// Nested departments, without reading every user's membership.
		`CREATE INDEX memberships_groups ON memberships (group_id) WHERE member_type = 'Group'`,
		`CREATE INDEX user_phone_numbers_value ON user_phone_numbers (value)`,
	}, nil, nil},
	{3, "server secrets shared by replicas", []string{
		`CREATE TABLE secrets (
			name TEXT PRIMARY KEY,
			value TEXT NOT NULL
		)`,
	}, nil, nil},
	// Ids are compared byte by byte: under the database's linguistic
	// collation (en_US.UTF-8 and the like) every index insert and join on
	// an id calls the locale's comparison, which made an initial import of
	// 100,000 users spend a third of its time comparing UUIDs. SQLite
	// compares bytes already. Columns that hold an id all change together,
	// because PostgreSQL refuses to compare text of two collations.
	{4, "ids compared byte by byte", nil, []string{
		`ALTER TABLE users ALTER COLUMN id TYPE TEXT COLLATE "C", ALTER COLUMN manager TYPE TEXT COLLATE "C"`,
		`ALTER TABLE user_emails ALTER COLUMN user_id TYPE TEXT COLLATE "C"`,
		`ALTER TABLE user_phone_numbers ALTER COLUMN user_id TYPE TEXT COLLATE "C"`,
		`ALTER TABLE groups ALTER COLUMN id TYPE TEXT COLLATE "C"`,
		`ALTER TABLE memberships ALTER COLUMN group_id TYPE TEXT COLLATE "C", ALTER COLUMN member_id TYPE TEXT COLLATE "C"`,
		`ALTER TABLE pending_members ALTER COLUMN member_id TYPE TEXT COLLATE "C"`,
	}, nil},
	// A user's memberships are read from the index alone (a streamed sync
	// reads those of every person it compares), instead of one more table
	// look-up per membership; the old index was its prefix.
	{5, "memberships by member, covering", []string{
		`DROP INDEX memberships_member`,
		`CREATE INDEX memberships_member ON memberships (member_id, member_type, group_id)`,
	}, nil, nil},
	// The whole SCIM user (SPEC §2.1). The attributes beyond the columns
	// above live in one JSON document per user (JSONB on PostgreSQL),
	// which both databases filter and sort on; adding it is a constant
	// default, so it costs nothing on a directory of any size. keyed
	// marks rows whose external_id is their owner's record key (csv,
	// http, push): only there is it unique. A scim source's users and
	// groups carry what the client sent (RFC 7643 §3.1): several may
	// share an externalId or a group name, and the ids that SCIM writes
	// used to invent as externalId are taken back.
	{6, "the whole SCIM user", []string{
		`ALTER TABLE users ADD COLUMN attrs {{json}} NOT NULL DEFAULT '{}'`,
		`ALTER TABLE users ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT TRUE`,
		`ALTER TABLE groups ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT TRUE`,
		`UPDATE users SET keyed = FALSE WHERE source IN (SELECT name FROM sources WHERE type = 'scim')`,
		`UPDATE users SET external_id = '' WHERE NOT keyed AND external_id = id`,
		`UPDATE groups SET keyed = FALSE WHERE source IN (SELECT name FROM sources WHERE type = 'scim')`,
		`DROP INDEX users_source_external_id`,
		`CREATE UNIQUE INDEX users_source_external_id ON users (source, external_id) WHERE keyed`,
		// Identity providers look users up by externalId: a source's keys
		// are found through the unique index, once per source, what SCIM
		// clients sent through this one (see externalIDEq).
		`CREATE INDEX users_scim_external_id ON users (external_id) WHERE NOT keyed`,
		`DROP INDEX groups_source_display_name`,
		`CREATE UNIQUE INDEX groups_source_display_name ON groups (source, display_name_key) WHERE keyed`,
		`ALTER TABLE user_emails ADD COLUMN display TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE user_phone_numbers ADD COLUMN display TEXT NOT NULL DEFAULT ''`,
	}, nil, nil},
	// The attributes identity providers look resources up by (SPEC
	// §2.1) are answered from indexes: displayName as the filters compare
	// it (lower), and meta.lastModified as each database compares times
	// (SQLite through julianday, see scim_filter.go). A user's
	// displayName was indexed here on PostgreSQL only, because on SQLite
	// the index cost an initial import a fifth more (the pure-Go engine
	// computes lower() for every row); migration 14 adds it on SQLite,
	// and an initial import there builds it once at its end instead (see
	// deferIndex).
	{7, "indexes of the attributes identity providers query", []string{
		`CREATE INDEX groups_display_name ON groups (lower(display_name))`,
	}, []string{
		`CREATE INDEX users_display_name ON users (lower(display_name))`,
		`CREATE INDEX users_updated_at ON users (updated_at)`,
	}, []string{
		`CREATE INDEX users_updated_at ON users (julianday(updated_at))`,
	}},
	// Owners of pushed departments (NocoBase's isOwner, SPEC §3.3), by the
	// department's uid: a user may own a department that has not arrived
	// yet, and keeps owning it when it is deleted and comes back.
	{8, "department owners", []string{
		`CREATE TABLE department_owners (
			source TEXT NOT NULL,
			dept_uid TEXT NOT NULL,
			user_id TEXT NOT NULL,
			PRIMARY KEY (source, dept_uid, user_id))`,
		`CREATE INDEX department_owners_user ON department_owners (user_id)`,
	}, nil, nil},
	// A held task that a newer task of its source superseded (SPEC §5,
	// see Task.AfterSave) no longer waits for anyone. Tasks held before
	// roster marked them are marked now, so that
	// roster_sync_tasks_waiting{status="held"} (and the RosterTaskHeld
	// alert) clears and tasks.keep removes them.
	{9, "superseded held tasks", []string{
		`UPDATE tasks SET status = 'superseded' WHERE status = 'held' AND EXISTS (
			SELECT 1 FROM tasks n WHERE n.source = tasks.source AND n.id > tasks.id
				AND n.status IN ('succeeded', 'skipped', 'held') AND NOT n.dry_run)`,
	}, nil, nil},
	// Where an ldap source's changed-only reads begin (SPEC §3.5): the
	// highest uSNChanged or modifyTimestamp of its last read applied, and
	// when its last full read was applied.
	{10, "ldap sources: changed-only reads", []string{
		`CREATE TABLE ldap_reads (
			source TEXT PRIMARY KEY,
			watermark TEXT NOT NULL DEFAULT '',
			full_at {{ts}}
		)`,
	}, nil, nil},
	// The transactional outbox of outbound provisioning (SPEC §12,
	// docs/sinks.md). Triggers record the id of every user and group that
	// a statement changes (a membership is a change of its group), in the
	// statement's own transaction, whichever path wrote it: snapshot and
	// streamed syncs, adopt, pushes, SCIM writes, operators, retire,
	// purges. Only the kind and id are kept: a sink reads the resource as
	// it is when it delivers, so several changes cost one delivery.
	// Nothing is recorded while no sink is registered, so that a roster
	// without sinks pays nothing measurable; a new sink starts with a full
	// comparison anyway. On SQLite the per-row triggers test for a sink
	// first. On PostgreSQL the triggers run once per statement over its
	// transition table, not once per row (a sync inserts users in
	// batches), but the server fills the transition tables of every
	// statement whether the function then writes or not, so this migration
	// creates only the functions: the triggers exist only while a sink is
	// registered (Store.RegisterSinks creates and drops them).
	// PostgreSQL hands out seq at insert, not at commit, so a reader
	// could pass a seq whose transaction commits later; entries are
	// therefore read in (xid, seq) order and only those of transactions
	// older than every running one (see Store.Changes). On SQLite, one
	// writer at a time, xid is 0 and seq is commit order. sinks holds
	// each sink's position (the last entry delivered), and sink_ids the
	// id of each delivered resource on the service.
	{11, "outbox and sinks", []string{
		`CREATE TABLE outbox (
			seq {{id}},
			xid BIGINT NOT NULL DEFAULT 0,
			kind TEXT NOT NULL,
			resource_id TEXT NOT NULL,
			at {{ts}} NOT NULL
		)`,
		`CREATE INDEX outbox_order ON outbox (xid, seq)`,
		`CREATE TABLE sinks (
			name TEXT PRIMARY KEY,
			position_xid BIGINT NOT NULL DEFAULT 0,
			position_seq BIGINT NOT NULL DEFAULT 0,
			compared_at {{ts}},
			failures INTEGER NOT NULL DEFAULT 0,
			last_error TEXT NOT NULL DEFAULT '',
			last_run_at {{ts}},
			held TEXT NOT NULL DEFAULT '',
			approved BOOLEAN NOT NULL DEFAULT FALSE,
			created_at {{ts}} NOT NULL
		)`,
		`CREATE TABLE sink_ids (
			sink TEXT NOT NULL,
			kind TEXT NOT NULL,
			resource_id TEXT NOT NULL,
			service_id TEXT NOT NULL,
			PRIMARY KEY (sink, kind, resource_id)
		)`,
	}, []string{
		`ALTER TABLE outbox ALTER COLUMN resource_id TYPE TEXT COLLATE "C"`,
		`ALTER TABLE sink_ids ALTER COLUMN resource_id TYPE TEXT COLLATE "C"`,
		outboxFunction("roster_outbox_users", "User", "id"),
		outboxFunction("roster_outbox_groups", "Group", "id"),
		outboxFunction("roster_outbox_memberships", "Group", "group_id"),
	}, nil},
	// The runs of each sink (SPEC §12, docs/sinks.md): one row per
	// delivery step that did something, failed or was held (a held step
	// seen again is counted on its row, not added), with its counts, the
	// first per-resource errors with the service's answer (a JSON array)
	// and the failure. run_requested is an operator's "run now", which
	// the replica delivering the sink polls for.
	{12, "sink runs", []string{
		`CREATE TABLE sink_runs (
			id {{id}},
			sink TEXT NOT NULL,
			trigger TEXT NOT NULL,
			status TEXT NOT NULL,
			started_at {{ts}} NOT NULL,
			finished_at {{ts}} NOT NULL,
			repeats INTEGER NOT NULL DEFAULT 0,
			created INTEGER NOT NULL DEFAULT 0,
			adopted INTEGER NOT NULL DEFAULT 0,
			updated INTEGER NOT NULL DEFAULT 0,
			deactivated INTEGER NOT NULL DEFAULT 0,
			deleted INTEGER NOT NULL DEFAULT 0,
			failed INTEGER NOT NULL DEFAULT 0,
			errors TEXT NOT NULL DEFAULT '[]',
			error TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX sink_runs_sink ON sink_runs (sink, id)`,
		`CREATE INDEX sink_runs_finished ON sink_runs (finished_at)`,
		`ALTER TABLE sinks ADD COLUMN run_requested {{ts}}`,
	}, nil, nil},
	// Initial passwords, encrypted with secrets.key, kept only until the
	// sinks that asked for them (initial_password_sinks) have sent them
	// (initial_passwords.go).
	{13, "initial passwords kept for sinks", []string{
		`CREATE TABLE initial_passwords (
			user_id TEXT PRIMARY KEY,
			sealed TEXT NOT NULL,
			created_at {{ts}} NOT NULL
		)`,
		`CREATE TABLE initial_password_sinks (
			user_id TEXT NOT NULL,
			sink TEXT NOT NULL,
			PRIMARY KEY (user_id, sink)
		)`,
		`CREATE INDEX initial_password_sinks_sink ON initial_password_sinks (sink)`,
	}, []string{
		`ALTER TABLE initial_passwords ALTER COLUMN user_id TYPE TEXT COLLATE "C"`,
		`ALTER TABLE initial_password_sinks ALTER COLUMN user_id TYPE TEXT COLLATE "C"`,
	}, nil},
	// Users' displayName indexed on SQLite too (PostgreSQL has had it
	// since migration 7), so that every attribute identity providers
	// query is answered from an index on both stores (SPEC §2.1). An
	// initial import keeps its speed by dropping this index and building
	// it again once before its commit (deferIndex). Building it here is a
	// one-time cost of the upgrade, while the migration lock is held:
	// about 5 s on 1,000,000 users (a generated SQLite file, 2 cores
	// under a load average of 8), a fraction of a second on 100,000.
	{14, "users' displayName indexed on SQLite too", nil, nil, []string{
		`CREATE INDEX users_display_name ON users (lower(display_name))`,
	}},
}

// outboxFunction is the PostgreSQL trigger function name that records,
// once per statement, the resource of kind that each row written names
// in its column id (see outboxTriggers).
func outboxFunction(name, kind, id string) string {
	insert := func(rows string) string {
		return `INSERT INTO outbox (xid, kind, resource_id, at) SELECT DISTINCT txid_current(), '` + kind + `', ` + id + `, now() FROM ` + rows + `;`
	}
	return `CREATE FUNCTION ` + name + `() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM sinks) THEN
				IF TG_OP = 'DELETE' THEN
					` + insert("old_rows") + `
				ELSE
					` + insert("new_rows") + `
				END IF;
			END IF;
			RETURN NULL;
		END $$`
}

// Latest is the schema version this build needs.
func Latest() int { return migrations[len(migrations)-1].version }

// Migrate applies every migration the database lacks and returns their
// versions. Concurrent callers (replicas starting together) are serialised.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	unlock, err := s.lockMigrations(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	db := s.db.WithContext(ctx)
	if err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at ` + s.dialect("{{ts}}") + ` NOT NULL)`).Error; err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if current > Latest() {
		return nil, fmt.Errorf("the database has schema version %d but this roster knows only up to %d: upgrade roster", current, Latest())
	}
	var applied []int
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		stmts := m.stmts
		if s.driver == Postgres {
			stmts = append(slices.Clone(stmts), m.postgres...)
		} else {
			stmts = append(slices.Clone(stmts), m.sqlite...)
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			for _, stmt := range stmts {
				if err := tx.Exec(s.dialect(stmt)).Error; err != nil {
					return err
				}
			}
			return tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UTC()).Error
		})
		if err != nil {
			return applied, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

// SchemaVersion is the newest migration applied, 0 for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	err := s.db.WithContext(ctx).Raw(`SELECT MAX(version) FROM schema_migrations`).Scan(&v).Error
	if err != nil {
		if s.isMissingTable(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

func (s *Store) isMissingTable(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no such table") || strings.Contains(msg, "does not exist")
}

func (s *Store) dialect(stmt string) string {
	id, ts, json := "INTEGER PRIMARY KEY AUTOINCREMENT", "TIMESTAMP", "TEXT"
	if s.driver == Postgres {
		id, ts, json = "BIGSERIAL PRIMARY KEY", "TIMESTAMPTZ", "JSONB"
	}
	return strings.NewReplacer("{{id}}", id, "{{ts}}", ts, "{{json}}", json).Replace(stmt)
}
