package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/rosterd/roster/daemon/reconcile"
)

// Adoption (SPEC §4.4): a source with on_conflict: adopt takes over users
// of other sources that its records find. The engine plans it with the
// users as their owners left them; the apply moves them to the adopter in
// the adopter's transaction, keeping their ids.

// othersColumns select a user of another source as the engine sees it,
// with its owner.
const othersColumns = `SELECT ` + snapshotColumns + `, u.source` + snapshotJoins

// AdoptableUsers reads, by login key, the users of sources other than
// source (not deleted) that hold the given login keys: those a record of
// an adopting source takes over. Their Groups are empty (the groups of
// their owner are not the adopter's) and Source names their owner.
func (s *Store) AdoptableUsers(ctx context.Context, source string, keys []string) (map[string]reconcile.User, error) {
	out := map[string]reconcile.User{}
	batch := max(s.batchRows(), 500)
	for start := 0; start < len(keys); start += batch {
		rows, err := s.db.WithContext(ctx).Raw(othersColumns+` WHERE u.user_name_key IN ? AND u.source <> ? AND u.state <> 'deleted'`,
			keys[start:min(start+batch, len(keys))], source).Rows()
		if err == nil {
			err = scanOthers(rows, func(u *reconcile.User) { out[reconcile.Key(u.UserName)] = *u })
		}
		if err != nil {
			return nil, fmt.Errorf("read the users %s may adopt: %w", source, err)
		}
	}
	return out, nil
}

// Adoptable is AdoptableUsers inside a streamed apply's transaction.
func (st *StreamTx) Adoptable(keys []string) (map[string]*reconcile.User, error) {
	out := map[string]*reconcile.User{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := st.a.tx.Raw(othersColumns+` WHERE u.user_name_key `+st.in()+` AND u.source <> ? AND u.state <> 'deleted'`,
		st.arg(keys), st.a.source).Rows()
	if err == nil {
		err = scanOthers(rows, func(u *reconcile.User) { c := *u; out[reconcile.Key(c.UserName)] = &c })
	}
	if err != nil {
		return nil, fmt.Errorf("read the users %s may adopt: %w", st.a.source, err)
	}
	return out, nil
}

// scanOthers calls fn with each row of an othersColumns query and closes
// rows.
func scanOthers(rows *sql.Rows, fn func(*reconcile.User)) error {
	defer rows.Close()
	for rows.Next() {
		var u reconcile.User
		var doc []byte
		if err := rows.Scan(&u.ID, &u.ExternalID, &u.UserName, &u.GivenName, &u.FamilyName, &u.DisplayName,
			&u.EmployeeNumber, &u.Department, &doc, &u.Active, &u.State, &u.StateReason, &u.HasPassword, &u.Email, &u.Phone, &u.Manager,
			&u.Source); err != nil {
			return err
		}
		var err error
		if u.Attrs, err = canonicalAttrs(doc); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
		fn(&u)
	}
	return rows.Err()
}

// adopted finishes the move of the users a plan adopted (ids by their
// old owner) after writeUser moved each with its values (in one
// statement, so that a user's record key is never the old owner's key
// under the new owner): they leave the old owners' groups (not groups
// written over SCIM, which hold users of any source) and pending
// departments, and each old owner's revision grows, so that a plan of the
// old owner computed before (a held task) is not applied over them. The
// ids travel as one parameter per jsonChunk, not one statement per batch.
func (a *applier) adopted(from map[string][]string) error {
	for src, ids := range from {
		for start := 0; start < len(ids); start += jsonChunk {
			in, list := a.idList(ids[start:min(start+jsonChunk, len(ids))])
			// Found by member (its index), then kept when the group is
			// the old owner's: by group, the database would walk every
			// member of each of the old owner's groups.
			if err := a.exec(`DELETE FROM memberships WHERE member_type = 'User' AND member_id `+in+`
				AND EXISTS (SELECT 1 FROM groups g WHERE g.id = memberships.group_id AND g.source = ? AND g.keyed)`, list, src); err != nil {
				return fmt.Errorf("adopt users of source %s: leave its groups: %w", src, err)
			}
			if err := a.exec(`DELETE FROM pending_members WHERE source = ? AND member_id `+in, src, list); err != nil {
				return fmt.Errorf("adopt users of source %s: leave its departments: %w", src, err)
			}
		}
		if err := a.exec(`UPDATE sources SET revision = revision + 1 WHERE name = ?`, src); err != nil {
			return fmt.Errorf("adopt users of source %s: record the change there: %w", src, err)
		}
	}
	return nil
}

// idList is an IN list of ids as one parameter: a JSON array that SQLite
// reads with json_each, a text[] on PostgreSQL (see StreamTx.in).
func (a *applier) idList(ids []string) (in string, arg any) {
	if a.postgres {
		return `= ANY(CAST(? AS text[]))`, textArray(ids)
	}
	doc, _ := json.Marshal(ids) // strings always marshal
	return `IN (SELECT value FROM json_each(?))`, string(doc)
}
