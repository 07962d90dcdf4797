package tasks

import (
	"encoding/json"
	"time"

	"github.com/rosterd/roster/daemon/reconcile"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/sources"
)

// View is a task in the JSON shape of SPEC §8.1, shared by the CLI and the
// admin API.
type View struct {
	ID         int64                `json:"id"`
	Source     string               `json:"source"`
	Trigger    string               `json:"trigger"`
	Status     string               `json:"status"`
	CreatedAt  time.Time            `json:"created_at"`
	StartedAt  *time.Time           `json:"started_at"`
	FinishedAt *time.Time           `json:"finished_at"`
	Counts     reconcile.Counts     `json:"counts"`
	Warnings   []string             `json:"warnings"`
	Errors     []sources.FieldError `json:"errors"`
	RetryOf    *int64               `json:"retry_of"`
	RawRecord  *string              `json:"raw_record"`
	// Hold and Removals describe a held task's plan: Removals lists the
	// changes the safety valve weighs (deactivations, deletions and
	// adoptions).
	Hold     string             `json:"hold,omitempty"`
	Removals []reconcile.Change `json:"removals,omitempty"`
}

// heldPlan is what a held task keeps of its plan for operators to read:
// the whole plan could be millions of creates, the removals (and
// adoptions) are what they must judge.
type heldPlan struct {
	Counts   reconcile.Counts   `json:"counts"`
	Removals []reconcile.Change `json:"removals"`
	// Orphans is what a retirement (TriggerRetire) does to the users.
	Orphans string `json:"orphans,omitempty"`
}

// ViewOf converts a stored task; plan is the held plan, or nil.
func ViewOf(t *store.Task, plan *store.HeldPlan) View {
	v := View{
		ID: t.ID, Source: t.Source, Trigger: t.Trigger, Status: t.Status,
		CreatedAt: t.CreatedAt.UTC(), StartedAt: utc(t.StartedAt), FinishedAt: utc(t.FinishedAt),
		RetryOf: t.RetryOf, Warnings: []string{}, Errors: []sources.FieldError{},
	}
	// The columns are written only by this package; a decoding failure
	// leaves the zero value rather than hiding the task.
	_ = json.Unmarshal([]byte(t.Counts), &v.Counts)
	_ = json.Unmarshal([]byte(t.Warnings), &v.Warnings)
	_ = json.Unmarshal([]byte(t.Errors), &v.Errors)
	if t.RawRecord != "" {
		raw := t.RawRecord
		v.RawRecord = &raw
	}
	if plan != nil {
		v.Hold = plan.Reason
		var hp heldPlan
		_ = json.Unmarshal([]byte(plan.Plan), &hp)
		v.Removals = hp.Removals
	}
	return v
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
