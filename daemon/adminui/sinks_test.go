package adminui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

const sinksYAML = `sinks:
  - name: svc
    url: http://127.0.0.1:9/scim/v2
    auth: {bearer: sink-secret-token}
  - name: idle
    url: http://127.0.0.1:9/scim/v2
    auth: {bearer: sink-secret-token}
    enabled: false
`

func TestSinkPages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newEnv(t, st)
		e.load(configYAML(bothTokens) + sinksYAML)
		if err := st.RegisterSinks(ctx, []string{"svc"}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		run := store.SinkRun{Sink: "svc", Trigger: store.SinkTriggerInterval, Status: store.SinkRunOK, StartedAt: at, FinishedAt: at.Add(time.Second),
			Counts: store.SinkRunCounts{Created: 7, Updated: 2, Failed: 1},
			Errors: []store.ResourceFail{{Kind: store.KindUser, ID: "u-1", Method: "POST", Path: "/Users", Status: 409, Detail: `uniqueness: <b>"ann"</b> exists`}}}
		if err := st.AddSinkRun(ctx, &run); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordSinkRun(ctx, "svc", ""); err != nil {
			t.Fatal(err)
		}
		c := e.login()

		if r := e.get("/admin/sinks", nil); r.code != http.StatusSeeOther {
			t.Fatalf("the sinks without a session: %d", r.code)
		}
		r := e.get("/admin/sinks", c)
		wantHeaders(t, r)
		for _, want := range []string{`href="/admin/sinks" aria-current="page"`, `<a href="/admin/sinks/svc">svc</a>`, `<span class="badge ok">ok</span>`,
			`<span class="badge disabled">disabled</span>`, `#1</a> ok`} {
			if r.code != 200 || !strings.Contains(r.body, want) {
				t.Fatalf("the sinks page lacks %q: %d\n%s", want, r.code, r.body)
			}
		}
		r = e.get("/admin/sinks/svc", c)
		for _, want := range []string{`id="run-1"`, `<td>7</td><td>0</td><td>2</td>`, `id="errors-1"`, `<a href="/admin/users/u-1">User u-1</a>`,
			`<code>POST /Users</code>`, `uniqueness: &lt;b&gt;&#34;ann&#34;&lt;/b&gt; exists`, `id="run"`, `action="/admin/sinks/svc/run"`} {
			if r.code != 200 || !strings.Contains(r.body, want) {
				t.Fatalf("the sink's page lacks %q: %d\n%s", want, r.code, r.body)
			}
		}
		for _, page := range []string{"/admin/sinks", "/admin/sinks/svc", "/admin/sinks/idle"} {
			if r := e.get(page, c); strings.Contains(r.body, "sink-secret-token") || strings.Contains(r.body, "127.0.0.1:9") {
				t.Fatalf("%s shows the sink's token or URL", page)
			}
		}
		if r := e.get("/admin/sinks/idle", c); r.code != 200 || strings.Contains(r.body, `id="run"`) {
			t.Fatalf("a disabled sink offers Run now: %d", r.code)
		}
		if r := e.get("/admin/sinks/nosuch", c); r.code != http.StatusNotFound {
			t.Fatalf("an unknown sink: %d", r.code)
		}

		// Run now: a form with the session's CSRF value records the request.
		if r := e.post("/admin/sinks/svc/run", url.Values{}, c); r.code != http.StatusForbidden {
			t.Fatalf("Run now without the csrf field: %d", r.code)
		}
		if req, _, _ := st.SinkWake(ctx, "svc"); req {
			t.Fatal("a form without the csrf field asked for a run")
		}
		csrf := url.Values{"csrf": {e.csrf(c)}}
		r = e.post("/admin/sinks/svc/run", csrf, c)
		if r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/sinks/svc?flash=sinkrun" {
			t.Fatalf("Run now: %d %s", r.code, r.header.Get("Location"))
		}
		if req, _, _ := st.SinkWake(ctx, "svc"); !req {
			t.Fatal("Run now did not record the request")
		}
		if r := e.get("/admin/sinks/svc?flash=sinkrun", c); !strings.Contains(r.body, "asked to run now") || !strings.Contains(r.body, "has not started yet") {
			t.Fatalf("after Run now:\n%s", r.body)
		}
		if r := e.post("/admin/sinks/idle/run", csrf, c); r.code != http.StatusConflict || !strings.Contains(r.body, "disabled") {
			t.Fatalf("Run now of a disabled sink: %d", r.code)
		}

		// Approve: only a held sink, which shows why and the button.
		if r := e.post("/admin/sinks/svc/approve", csrf, c); r.code != http.StatusConflict || !strings.Contains(r.body, "holds no removals") {
			t.Fatalf("Approve a sink that is not held: %d", r.code)
		}
		if err := st.HoldSink(ctx, "svc", "the next delivery would deactivate 5 of the 7 users"); err != nil {
			t.Fatal(err)
		}
		if r := e.get("/admin/sinks/svc", c); !strings.Contains(r.body, `id="held"`) || !strings.Contains(r.body, "deactivate 5 of the 7") ||
			!strings.Contains(r.body, `<span class="badge held" id="state">held</span>`) {
			t.Fatalf("a held sink's page:\n%s", r.body)
		}
		r = e.post("/admin/sinks/svc/approve", csrf, c)
		if r.code != http.StatusSeeOther || r.header.Get("Location") != "/admin/sinks/svc?flash=sinkapproved" {
			t.Fatalf("Approve: %d %s", r.code, r.header.Get("Location"))
		}
		if s, _ := st.Sink(ctx, "svc"); !s.Approved {
			t.Fatal("Approve did not record the approval")
		}
		if r := e.post("/admin/sinks/svc/other", csrf, c); r.code != http.StatusNotFound {
			t.Fatalf("an unknown action: %d", r.code)
		}
	})
}
