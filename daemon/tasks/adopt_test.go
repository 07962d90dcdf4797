package tasks_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// twoSources returns a Runner whose config has the csv sources "old"
// (reading old.csv) and "new" (new.csv, on_conflict: adopt), streamed
// from streamFrom bytes.
func twoSources(t *testing.T, s *store.Store, dir string, streamFrom int) *tasks.Runner {
	t.Helper()
	yaml := "log:\n  dir: log\nsources:\n" +
		"  - name: old\n    type: csv\n    path: old.csv\n" +
		"  - name: new\n    type: csv\n    path: new.csv\n    on_conflict: adopt\n    max_removals: 100%\n"
	path := filepath.Join(dir, "roster.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.StreamFrom = config.ByteSize(streamFrom)
	if err := s.SyncSources(t.Context(), []string{"old", "new"}, []string{"csv", "csv"}); err != nil {
		t.Fatal(err)
	}
	return &tasks.Runner{Store: s, Config: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))}
}

// logs collects what runners of this file log.
var logs syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.b.String()
	b.b.Reset()
	return s
}

type owned struct{ ID, Source, ExternalID, State string }

func ownerOf(t *testing.T, s *store.Store, login string) owned {
	t.Helper()
	var o owned
	if err := s.DB().Raw(`SELECT id, source, external_id, state FROM users WHERE user_name_key = ? AND state <> 'deleted'`, login).
		Row().Scan(&o.ID, &o.Source, &o.ExternalID, &o.State); err != nil {
		t.Fatalf("user %s: %v", login, err)
	}
	return o
}

// TestAdoptTakesOverUsersOfAnotherSource syncs a csv source, then
// another csv source with on_conflict: adopt whose file has the same
// logins under new ids: the users keep their ids and move to the new
// source, leave the old source's groups, join the new one's, and the old
// source can no longer sync them. Whole and streamed plans alike.
func TestAdoptTakesOverUsersOfAnotherSource(t *testing.T) {
	for _, mode := range []struct {
		name       string
		streamFrom int
	}{{"whole", 1 << 30}, {"streamed", 0}} {
		t.Run(mode.name, func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				dir := t.TempDir()
				r := twoSources(t, s, dir, mode.streamFrom)
				writeFile(t, filepath.Join(dir, "old.csv"), "1,Ada,King,ada,ada@example.com,Eng,\n2,Bob,Lee,bob,,Eng|Ops,\n3,Cy,Moe,cy,,,\n")
				res, err := r.Sync(ctx, "old", tasks.Options{})
				if err != nil || res.Task.Status != store.StatusSucceeded {
					t.Fatalf("sync old: %v %+v", err, res)
				}
				before := map[string]owned{}
				for _, l := range []string{"ada", "bob", "cy"} {
					before[l] = ownerOf(t, s, l)
				}
				oldRev, _ := s.GetSource(ctx, "old")

				writeFile(t, filepath.Join(dir, "new.csv"), "e-1,Ada,King,ADA,ada@corp.example,Staff,\ne-2,Bob,Lee,bob,,,\ne-3,Cy,Moe,cy,,,\ne-4,Di,Noe,di,,Staff,\n")
				logs.take()
				res, err = r.Sync(ctx, "new", tasks.Options{})
				if err != nil || res.Task.Status != store.StatusSucceeded {
					t.Fatalf("sync new: %v %+v", err, res)
				}
				if l := logs.take(); strings.Contains(l, "planning the whole input") {
					t.Errorf("the adopting sync was planned whole: %s", l)
				}
				v := tasks.ViewOf(res.Task, nil)
				if v.Counts.Adopted != 3 || v.Counts.Created != 1 || v.Counts.Updated != 0 {
					t.Errorf("counts %+v; want adopted 3, created 1", v.Counts)
				}
				for l, b := range before {
					a := ownerOf(t, s, l)
					if a.ID != b.ID || a.Source != "new" || !strings.HasPrefix(a.ExternalID, "e-") || a.State != "active" {
						t.Errorf("%s: %+v, was %+v; want the same id, owned by new", l, a, b)
					}
				}
				var oldMembers, newMembers int
				s.DB().Raw(`SELECT COUNT(*) FROM memberships m JOIN groups g ON g.id = m.group_id WHERE g.source = 'old'`).Row().Scan(&oldMembers)
				s.DB().Raw(`SELECT COUNT(*) FROM memberships m JOIN groups g ON g.id = m.group_id WHERE g.source = 'new'`).Row().Scan(&newMembers)
				if oldMembers != 0 || newMembers != 2 {
					t.Errorf("memberships in old's groups %d, in new's %d; want 0 and 2", oldMembers, newMembers)
				}
				if now, _ := s.GetSource(ctx, "old"); now.Revision <= oldRev.Revision {
					t.Errorf("old's revision %d after the adoption, was %d: a held plan of old could still apply", now.Revision, oldRev.Revision)
				}
				var email string
				s.DB().Raw(`SELECT value FROM user_emails WHERE user_id = ?`, before["ada"].ID).Row().Scan(&email)
				if email != "ada@corp.example" {
					t.Errorf("ada's e-mail %q; want the new source's", email)
				}

				// The same file again changes nothing; the old source's file
				// now conflicts with the new owner.
				res, _ = r.Sync(ctx, "new", tasks.Options{Force: true})
				if v := tasks.ViewOf(res.Task, nil); v.Counts.Unchanged != 4 || v.Counts.Adopted != 0 {
					t.Errorf("second sync of new: %+v; want 4 unchanged", v.Counts)
				}
				res, _ = r.Sync(ctx, "old", tasks.Options{Force: true})
				if v := tasks.ViewOf(res.Task, nil); res.Task.Status != store.StatusFailed ||
					!strings.Contains(v.Errors[0].Message, `is already used by a user of source "new"`) {
					t.Errorf("old synced after the adoption: %s %+v", res.Task.Status, v.Errors)
				}
			})
		})
	}
}

// TestAdoptHeldBySafetyValve checks that adoptions count in max_removals:
// a source that would adopt more than it allows is held, lists the
// adoptions, and applies them once approved.
func TestAdoptHeldBySafetyValve(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		dir := t.TempDir()
		r := twoSources(t, s, dir, 1<<30)
		r.Config.Sources[1].MaxRemovals = config.Removals{Percent: 50, IsPercent: true}
		var oldCSV, newCSV strings.Builder
		for _, l := range []string{"a", "b", "c", "d", "e", "f", "g"} {
			oldCSV.WriteString(l + ",G,F," + l + ",,,\n")
			newCSV.WriteString("n" + l + ",G,F," + l + ",,,\n")
		}
		writeFile(t, filepath.Join(dir, "old.csv"), oldCSV.String())
		writeFile(t, filepath.Join(dir, "new.csv"), newCSV.String())
		if res, err := r.Sync(ctx, "old", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync old: %v %+v", err, res)
		}
		res, err := r.Sync(ctx, "new", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusHeld {
			t.Fatalf("sync new: %v %+v; want held", err, res)
		}
		hp, err := s.GetHeldPlan(ctx, res.Task.ID)
		if err != nil {
			t.Fatal(err)
		}
		v := tasks.ViewOf(res.Task, hp)
		if len(v.Removals) != 7 || v.Removals[0].Action != "adopt" || !strings.Contains(v.Hold, "adopt 7") {
			t.Fatalf("held plan %q lists %d changes; want the 7 adoptions", v.Hold, len(v.Removals))
		}
		if o := ownerOf(t, s, "a"); o.Source != "old" {
			t.Fatalf("a held plan was applied: %+v", o)
		}
		res, err = r.Approve(ctx, res.Task.ID)
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("approve: %v %+v", err, res)
		}
		if o := ownerOf(t, s, "g"); o.Source != "new" || o.ExternalID != "ng" {
			t.Errorf("after approval g is %+v; want new's", o)
		}
	})
}

// TestRetire: a source removed from the configuration is listed as
// retired; retiring it is refused while it is configured, plans a held
// task that changes nothing, can be rejected, and an approval fails when
// another source adopted one of its users after the plan was held; a
// fresh retirement then deactivates the rest and deletes its groups.
func TestRetire(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		dir := t.TempDir()
		r := twoSources(t, s, dir, 1<<30)
		writeFile(t, filepath.Join(dir, "old.csv"), "1,Ada,King,ada,,Eng,\n2,Bob,Lee,bob,,Eng,\n3,Cy,Moe,cy,,,\n")
		if res, err := r.Sync(ctx, "old", tasks.Options{}); err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync old: %v %+v", err, res)
		}
		if _, err := r.Retire(ctx, "old", ""); err == nil || !strings.Contains(err.Error(), "still in") {
			t.Fatalf("retiring a configured source: %v", err)
		}
		r.Config.Sources = r.Config.Sources[1:] // old is removed from the configuration
		counts, err := s.DirectoryCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		retired, err := r.Retired(ctx, counts)
		if err != nil || len(retired) != 1 || retired[0].Name != "old" || retired[0].Counts != (tasks.Counts{Active: 3, Groups: 1}) {
			t.Fatalf("Retired = %+v, %v", retired, err)
		}
		if _, err := r.Retire(ctx, "old", "purge"); err == nil || !strings.Contains(err.Error(), "use deactivate or delete") {
			t.Errorf("--orphans purge: %v", err)
		}

		res, err := r.Retire(ctx, "old", "")
		if err != nil || res.Task.Status != store.StatusHeld || res.Task.Trigger != tasks.TriggerRetire {
			t.Fatalf("Retire: %v %+v", err, res)
		}
		if o := ownerOf(t, s, "ada"); o.State != "active" {
			t.Fatalf("a held retirement was applied: %+v", o)
		}
		if _, err := r.Reject(ctx, res.Task.ID); err != nil {
			t.Fatal(err)
		}

		res, err = r.Retire(ctx, "old", "deactivate")
		if err != nil {
			t.Fatal(err)
		}
		// new adopts bob after the retirement was held: its plan is stale.
		writeFile(t, filepath.Join(dir, "new.csv"), "n2,Bob,Lee,bob,,,\n")
		if res, err := r.Sync(ctx, "new", tasks.Options{}); err != nil || tasks.ViewOf(res.Task, nil).Counts.Adopted != 1 {
			t.Fatalf("sync new: %v %+v", err, res)
		}
		stale, err := r.Approve(ctx, res.Task.ID)
		if err != nil || stale.Task.Status != store.StatusFailed || !strings.Contains(tasks.ViewOf(stale.Task, nil).Errors[0].Message, "changed after task") {
			t.Fatalf("approving a stale retirement: %v %+v", err, stale)
		}

		res, err = r.Retire(ctx, "old", "deactivate")
		if err != nil {
			t.Fatal(err)
		}
		done, err := r.Approve(ctx, res.Task.ID)
		if err != nil || done.Task.Status != store.StatusSucceeded || tasks.ViewOf(done.Task, nil).Counts.Deactivated != 2 {
			t.Fatalf("approve the retirement: %v %+v", err, done)
		}
		for _, l := range []string{"ada", "cy"} {
			if o := ownerOf(t, s, l); o.Source != "old" || o.State != "inactive" {
				t.Errorf("%s after the retirement: %+v", l, o)
			}
		}
		if o := ownerOf(t, s, "bob"); o.Source != "new" || o.State != "active" {
			t.Errorf("bob, adopted by new, after old's retirement: %+v", o)
		}
		counts, _ = s.DirectoryCounts(ctx)
		if retired, _ := r.Retired(ctx, counts); len(retired) != 1 || retired[0].Counts != (tasks.Counts{Inactive: 2}) {
			t.Errorf("after a retirement that deactivates: %+v; want old with its 2 inactive users, no groups", retired)
		}
		// Nothing is left to deactivate; another source may still adopt them.
		if _, err := r.Retire(ctx, "old", "deactivate"); err == nil || !strings.Contains(err.Error(), "nothing to retire") {
			t.Errorf("retiring again: %v", err)
		}
		writeFile(t, filepath.Join(dir, "new.csv"), "n2,Bob,Lee,bob,,,\nn1,Ada,King,ada,,,\n")
		res, _ = r.Sync(ctx, "new", tasks.Options{})
		if o := ownerOf(t, s, "ada"); o.Source != "new" || o.State != "active" {
			t.Errorf("ada, a retired source's inactive user, adopted: %+v (task %+v)", o, tasks.ViewOf(res.Task, nil))
		}
	})
}
