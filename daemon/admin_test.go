package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// TestAdminAPIIsMounted: the daemon serves the admin API on its main
// listener, with uploads bounded by push_body and the rest by request_body.
func TestAdminAPIIsMounted(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
		sum := sha256.Sum256([]byte("admin-token"))
		cfg := loadConfig(t, dir, "limits:\n  request_body: 1KiB\n  push_body: 8KiB\n"+
			"tokens:\n  - name: ops\n    hash: sha256:"+hex.EncodeToString(sum[:])+"\n    scopes: [admin]\n"+staffConfig("watch: false"))
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
		h.waitQuiet()

		do := func(method, path, body string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer admin-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %s: Content-Type %q", method, path, ct)
			}
			return resp.StatusCode, string(b)
		}
		if code, body := h.get("/api/v1/sources"); code != 401 || !strings.Contains(body, `"error"`) {
			t.Fatalf("GET /api/v1/sources without a token = %d %s", code, body)
		}
		if code, body := do("GET", "/api/v1/sources", ""); code != 200 || !strings.Contains(body, `"name":"staff"`) {
			t.Fatalf("GET /api/v1/sources = %d %s", code, body)
		}
		// A 4KiB file is above request_body but within push_body.
		if code, body := do("PUT", "/api/v1/sources/staff/file", people(60)); code != 202 || !strings.Contains(body, `"trigger":"manual"`) {
			t.Fatalf("upload of %d bytes = %d %s", len(people(60)), code, body)
		}
		if code, body := do("PUT", "/api/v1/sources/staff/file", people(200)); code != 413 || !strings.Contains(body, "limits.push_body") {
			t.Fatalf("upload of %d bytes = %d %s", len(people(200)), code, body)
		}
		if code, body := do("POST", "/api/v1/sources/staff/sync", `{"force": "`+strings.Repeat("x", 2000)+`"}`); code != 413 || !strings.Contains(body, "limits.request_body") {
			t.Fatalf("sync with a 2KiB body = %d %s", code, body)
		}
		h.waitQuiet()
		if got := statuses(h.tasks("staff")); strings.Join(got, " ") != "schedule/succeeded manual/succeeded" {
			t.Fatalf("tasks = %v", got)
		}
	})
}

// TestEnqueue: an operator's request waits for the task that serves it;
// while the source is busy it joins the one follow-up, which it forces.
func TestEnqueue(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(3))
		cfg := loadConfig(t, dir, staffConfig("watch: false")+"  - name: api\n    type: push\n")
		h := startConfig(t, st, cfg)
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
		h.waitQuiet()

		// Idle: the task as recorded.
		tk, err := h.d.Enqueue(ctx, "staff", tasks.TriggerManual, false)
		if err != nil || tk == nil || tk.Trigger != tasks.TriggerManual || tk.Status != store.StatusSkipped {
			t.Fatalf("Enqueue of an idle source with an unchanged file = %+v, %v; want a skipped manual task", tk, err)
		}

		// Busy: the first request waits for the lock, the next ones join
		// the follow-up; one of them asks for force.
		h.waitQuiet()
		unlock, err := st.LockSource(ctx, "staff")
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if tk, err := h.d.Enqueue(short, "staff", tasks.TriggerManual, false); tk != nil || err != nil {
			t.Fatalf("Enqueue while the lock is held = %+v, %v; want nil, nil", tk, err)
		}
		if err := h.d.Trigger("staff", tasks.TriggerWatch); err != nil {
			t.Fatal(err)
		}
		type answer struct {
			tk  *store.Task
			err error
		}
		ch := make(chan answer, 1)
		go func() {
			tk, err := h.d.Enqueue(ctx, "staff", tasks.TriggerManual, true)
			ch <- answer{tk, err}
		}()
		eventually(t, 10*time.Second, "the forced request did not join the follow-up", func() bool {
			q := h.queue("staff")
			q.mu.Lock()
			defer q.mu.Unlock()
			return q.next != nil && q.next.force && len(q.next.waiters) == 1
		})
		unlock()
		a := <-ch
		if a.err != nil || a.tk == nil || a.tk.Trigger != tasks.TriggerWatch || !a.tk.Force {
			t.Fatalf("the forced request heard %+v, %v; want the forced follow-up (trigger watch)", a.tk, a.err)
		}
		h.waitQuiet()
		if got := statuses(h.tasks("staff")); strings.Join(got, " ") != "schedule/succeeded manual/skipped manual/skipped watch/succeeded" {
			t.Fatalf("tasks = %v", got)
		}

		if _, err := h.d.Enqueue(ctx, "api", tasks.TriggerManual, false); err == nil {
			t.Error("Enqueue of a push source succeeded")
		}
	})
}
