package tasks_test

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/push"
)

// heapGrowth runs fn and returns by how much the Go heap grew above what
// it held before, at its peak (sampled every millisecond, with the
// collector made eager so that the peak is what is live, not garbage).
func heapGrowth(fn func()) int64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapAlloc)
	var peak atomic.Int64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if d := int64(ms.HeapAlloc) - base; d > peak.Load() {
				peak.Store(d)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	return peak.Load()
}

// accept stores a push without applying it and returns its task and the
// size of its stored body.
func accept(t *testing.T, r *tasks.Runner, body string) *store.Task {
	t.Helper()
	p, err := push.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	task, err := r.AcceptPush(t.Context(), "api", p)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// drain applies the queued push task and returns how much the heap grew.
func drain(t *testing.T, r *tasks.Runner, task *store.Task) (*store.Task, int64) {
	t.Helper()
	grew := heapGrowth(func() {
		if _, err := r.DrainPush(t.Context(), "api"); err != nil {
			t.Error(err)
		}
	})
	done, err := r.Store.GetTask(t.Context(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done, grew
}

// TestPushApplyMemory: applying a user push holds one part at a time —
// its records, the users they name and its plan — besides the stored
// body, whatever the size of the push (issue 16). With parts of 500
// records, a push changing the nickname of each of 10,000 users must not
// grow the heap by more than three bodies (the stored text, its bytes,
// and the driver's copy while it is read) and 4 MB (8 KB per record of a
// part: the record, its user before and after, the change, the
// statements' arguments, and the collector's slack): 8.4 MB. Before, the
// apply held the decoded payload and every user it named, with their
// index entries, for the whole apply: 17.8 MB here on SQLite and 17.7 MB
// on PostgreSQL (after: 6.8 and 5.8 MB).
func TestPushApplyMemory(t *testing.T) {
	const n, part = 10000, 500
	defer tasks.SetPushPart(part)()
	body := func(nick string) string {
		var b strings.Builder
		b.WriteString(`{"dataType":"user","records":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"uid":"u-%d","username":"user%d","nickname":"%s %d","email":"user%d@example.com","phone":"+1555%07d","departments":["d-1"]}`,
				i, i, nick, i, i, i)
		}
		b.WriteString(`]}`)
		return b.String()
	}
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		pushNow(t, r, `{"dataType":"department","records":[{"uid":"d-1","title":"One"}]}`)
		created := pushNow(t, r, body("First"))
		if created.Status != store.StatusSucceeded || counts(t, created).Created != n {
			t.Fatalf("the first push: %s %s %s", created.Status, created.Counts, created.Errors)
		}
		second := body("Second")
		size := int64(len(second))
		task := accept(t, r, second)
		done, grew := drain(t, r, task)
		if done.Status != store.StatusSucceeded || counts(t, done).Updated != n {
			t.Fatalf("the second push: %s %s %s", done.Status, done.Counts, done.Errors)
		}
		limit := 3*size + 4<<20
		t.Logf("a push changing %d users (a %.1f MB body), in parts of %d: the heap grew by %.1f MB (bound %.1f MB)",
			n, float64(size)/1e6, part, float64(grew)/1e6, float64(limit)/1e6)
		if grew > limit {
			t.Errorf("the apply grew the heap by %.1f MB; want at most three bodies and 4 MB (%.1f MB): it holds more than one part",
				float64(grew)/1e6, float64(limit)/1e6)
		}
	})
}

// TestDepartmentPushMemory: a department push is planned and applied in
// parts too (issue 16). Its departments are held whole, since every part
// and the cycle check need them: the source's departments by uid, id and
// name, and what each new parent is (a few words a department, not its
// record). So the heap may grow by three bodies (as for users) and 650
// bytes a department of the source: 18.1 MB for 20,000 departments each
// under the one before (a chain: every record gives a parent). Before,
// the whole payload and the whole plan (each department's creation and
// its membership in its parent) were held besides: 21.2 MB on SQLite
// and 22.6 MB on PostgreSQL (after: 15.3 and 16.7 MB; about 510 bytes a
// department beyond the bodies, 800 before).
func TestDepartmentPushMemory(t *testing.T) {
	const n, part = 20000, 500
	defer tasks.SetPushPart(part)()
	var b strings.Builder
	b.WriteString(`{"dataType":"department","records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		parent := ""
		if i > 0 {
			parent = fmt.Sprintf(`,"parentUid":"d-%d"`, i-1)
		}
		fmt.Fprintf(&b, `{"uid":"d-%d","title":"Department number %d of the chain"%s}`, i, i, parent)
	}
	b.WriteString(`]}`)
	body := b.String()
	size := int64(len(body))
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		task := accept(t, r, body)
		done, grew := drain(t, r, task)
		if done.Status != store.StatusSucceeded || counts(t, done).GroupsCreated != n {
			t.Fatalf("the push: %s %s %s", done.Status, done.Counts, done.Errors)
		}
		limit := 3*size + 650*n
		t.Logf("a push of %d departments (a %.1f MB body), in parts of %d: the heap grew by %.1f MB (bound %.1f MB)",
			n, float64(size)/1e6, part, float64(grew)/1e6, float64(limit)/1e6)
		if grew > limit {
			t.Errorf("the apply grew the heap by %.1f MB; want at most three bodies and 650 bytes a department (%.1f MB)",
				float64(grew)/1e6, float64(limit)/1e6)
		}
	})
}
