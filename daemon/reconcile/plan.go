// Package reconcile compares what a source says with what the directory
// holds and computes the plan that makes them match. It is pure: no SQL, no
// HTTP, no clocks beyond what callers pass in, so a plan can be computed,
// printed (dry run), held for approval and applied by the store in one
// transaction.
package reconcile

import (
	"strings"

	"github.com/rosterd/roster/sources"
)

// User states.
const (
	StateActive   = "active"
	StateInactive = "inactive"
	StateDeleted  = "deleted"
)

// Reasons why a user is inactive or deleted; restore only undoes ReasonOrphan.
const (
	ReasonOrphan  = "orphan"  // absent from a full snapshot
	ReasonAdmin   = "admin"   // an operator chose it
	ReasonPending = "pending" // created inactive because activate_new is false
	ReasonSource  = "source"  // the source itself said so (push isDeleted, http active=false)
)

// User is a directory user as the engine sees it.
type User struct {
	ID             string `json:"id"`
	ExternalID     string `json:"externalId"`
	UserName       string `json:"userName"`
	GivenName      string `json:"givenName,omitempty"`
	FamilyName     string `json:"familyName,omitempty"`
	DisplayName    string `json:"displayName,omitempty"`
	Email          string `json:"email,omitempty"`
	Phone          string `json:"phone,omitempty"`
	EmployeeNumber string `json:"employeeNumber,omitempty"`
	// Department is the enterprise department; DepartmentUID the pushed
	// department it names, kept so that a later title follows.
	Department    string `json:"department,omitempty"`
	DepartmentUID string `json:"departmentUid,omitempty"`
	// Manager is the id of the user's manager (an ldap source's), "" for
	// none.
	Manager string `json:"manager,omitempty"`
	// Attrs is the user's attribute document (package attrs) in its
	// canonical encoding, "" when empty: two users have the same
	// attributes when their Attrs are equal.
	Attrs       string `json:"attrs,omitempty"`
	Active      bool   `json:"active"`
	State       string `json:"state"`
	StateReason string `json:"stateReason,omitempty"`
	// HasPassword tells the engine that a password is set, without the hash.
	HasPassword bool `json:"-"`
	// PasswordHash is set only on a planned change that sets a password.
	PasswordHash string `json:"-"`
	// InitialPassword is the clear password of a user this plan creates,
	// set only while the store keeps initial passwords for sinks
	// (sources.Record.InitialPassword); never encoded.
	InitialPassword string `json:"-"`
	// Groups are the keys (see GroupKey) of the source's groups the user is a
	// member of, sorted.
	Groups []string `json:"groups,omitempty"`
	// PendingGroups are, for pushed users, the uids of departments the
	// user belongs to that have not arrived yet, sorted.
	PendingGroups []string `json:"pendingGroups,omitempty"`
	// Source is the owner of a user of another source (one a record may
	// adopt); "" for the source's own users.
	Source string `json:"source,omitempty"`
	// Owns are, for pushed users, the uids of the departments the user is
	// an owner of (NocoBase's isOwner), sorted; they need not have arrived.
	Owns []string `json:"owns,omitempty"`
}

// Group is a group owned by the source. Pushed departments have their uid
// as ExternalID and their parent's uid as Parent.
type Group struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId,omitempty"`
	Parent      string `json:"parent,omitempty"`
}

// Action is what a plan does to one user.
type Action string

const (
	Create      Action = "create"
	Update      Action = "update"
	Deactivate  Action = "deactivate"
	Delete      Action = "delete"
	Restore     Action = "restore"
	NotRestored Action = "not_restored"
	Skip        Action = "skip"
	// Adopt takes over a user of another source whose login (or, for a
	// push, matchKey value) a record finds, keeping its id (SPEC §4.4):
	// Before is that user as its old owner left it (Before.Source names
	// the owner), After the user as the record makes it.
	Adopt Action = "adopt"
)

// Change is one user's planned change. Before is nil for a create; After is
// the complete desired state (for Skip and NotRestored it equals Before).
type Change struct {
	Action Action   `json:"action"`
	Line   int      `json:"line,omitempty"`
	Before *User    `json:"before,omitempty"`
	After  User     `json:"after"`
	Fields []string `json:"fields,omitempty"` // attributes an update changes
	Reason string   `json:"reason,omitempty"` // why a record was skipped
}

// Membership links a user, or a child department, to one of the source's
// groups.
type Membership struct {
	GroupID string `json:"groupId"`
	UserID  string `json:"userId"`
	// MemberType is MemberGroup for a nested department; "" is a user.
	MemberType string `json:"memberType,omitempty"`
}

// MemberGroup is the MemberType of a nested group.
const MemberGroup = "Group"

// Pending is a membership in a pushed department that has not arrived yet;
// it becomes a Membership when the department comes.
type Pending struct {
	DeptUID    string `json:"deptUid"`
	MemberID   string `json:"memberId"`
	MemberType string `json:"memberType,omitempty"`
}

// Counts are the per-action totals of a task (SPEC §8.1).
type Counts struct {
	Created     int `json:"created"`
	Updated     int `json:"updated"`
	Unchanged   int `json:"unchanged"`
	Deactivated int `json:"deactivated"`
	Deleted     int `json:"deleted"`
	Restored    int `json:"restored"`
	NotRestored int `json:"not_restored"`
	Skipped     int `json:"skipped"`
	// Adopted counts users of other sources the task took over
	// (on_conflict: adopt).
	Adopted int `json:"adopted"`
	// Groups counts departments a push created, updated and deleted.
	GroupsCreated int `json:"groups_created,omitempty"`
	GroupsUpdated int `json:"groups_updated,omitempty"`
	GroupsDeleted int `json:"groups_deleted,omitempty"`
}

// Plan is everything a task would change. Applying it is all or nothing.
type Plan struct {
	Source string `json:"source"`
	// Revision is the source's revision the plan was computed against; the
	// store refuses to apply it when the source changed since.
	Revision int64  `json:"revision"`
	Counts   Counts `json:"counts"`
	// Records is how many records the snapshot held; Total is how many
	// users the source owned (not deleted) before the plan.
	Records int `json:"records"`
	Total   int `json:"total"`

	Changes           []Change     `json:"changes,omitempty"`
	GroupCreates      []Group      `json:"group_creates,omitempty"`
	GroupRenames      []Group      `json:"group_renames,omitempty"`
	GroupDeletes      []Group      `json:"group_deletes,omitempty"`
	MembershipAdds    []Membership `json:"membership_adds,omitempty"`
	MembershipRemoves []Membership `json:"membership_removes,omitempty"`
	PendingAdds       []Pending    `json:"pending_adds,omitempty"`
	PendingRemoves    []Pending    `json:"pending_removes,omitempty"`
	// OwnerAdds and OwnerRemoves make users owners of departments, or
	// no longer, by the departments' uids (MemberID is the user's id).
	OwnerAdds    []Pending `json:"owner_adds,omitempty"`
	OwnerRemoves []Pending `json:"owner_removes,omitempty"`

	Warnings []string             `json:"warnings,omitempty"`
	Errors   []sources.FieldError `json:"errors,omitempty"`
	// Hold says why the safety valve stops the plan; empty when it may be
	// applied.
	Hold string `json:"hold,omitempty"`
}

// Removals counts the users the plan would deactivate or delete.
func (p *Plan) Removals() int { return p.Counts.Deactivated + p.Counts.Deleted }

// Valved counts what the safety valve weighs: removals and adoptions. A
// source that takes over many users of another one changes who owns them
// (and what a later sync may remove) as much as a mass removal does.
func (c Counts) Valved() int { return c.Deactivated + c.Deleted + c.Adopted }

// Empty reports whether applying the plan would change nothing.
func (p *Plan) Empty() bool {
	for _, c := range p.Changes {
		if c.Action != Skip && c.Action != NotRestored {
			return false
		}
	}
	return len(p.GroupCreates)+len(p.GroupRenames)+len(p.GroupDeletes)+
		len(p.MembershipAdds)+len(p.MembershipRemoves)+len(p.PendingAdds)+len(p.PendingRemoves)+
		len(p.OwnerAdds)+len(p.OwnerRemoves) == 0
}

// Key is the identity of a login name or group name: lower-cased, in
// Unicode normalization form C (sources.NormalizeLogin), so that neither
// case nor a decomposed accent makes two names of one.
func Key(s string) string { return strings.ToLower(sources.NormalizeLogin(s)) }
