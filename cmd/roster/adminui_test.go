package main

// The admin web page (/admin) of the real `roster serve` binary, driven in
// headless Chromium through chromedriver (see webdriver_test.go), on
// SQLite. It saves a screenshot of every page as admin-*.png: into the
// folder $ROSTER_SCREENSHOTS when set (`make screenshots` refreshes the
// README's pictures in docs/img), else into the test's temporary folder.
// Times and ids are shown fixed in the pictures and a file is only
// written when its pixels change, so that an unchanged page leaves
// docs/img as it was.

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

func TestAdminUIBrowser(t *testing.T) {
	screenshotDir := os.Getenv("ROSTER_SCREENSHOTS")
	if screenshotDir == "" {
		screenshotDir = t.TempDir()
	}
	b := startBrowser(t)
	b.viewport(1280, 900)
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var rewritten []string
	shot := func(name string) {
		t.Helper()
		if b.steadyScreenshot(filepath.Join(screenshotDir, "admin-"+name+".png")) {
			rewritten = append(rewritten, name)
		}
	}

	w := newWorkdir(t, "sqlite")
	const token = "e2e-browser-admin-token"
	hash := strings.TrimSpace(runRoster(t, w.dir, token, nil, "token").stdout)
	const pushToken = "e2e-browser-push-token"
	pushHash := strings.TrimSpace(runRoster(t, w.dir, pushToken, nil, "token").stdout)
	people := basePeople()
	w.write(t, "staff.csv", csvOf(people))
	// hr's file is invalid: its first sync at start fails.
	w.write(t, "hr.csv", "h1,Ann,Able,ann,ann@example.com,,\nh2,Ben,Baker,ben,ben@,,\nh3,Cy,Cole,,cy@example.com,,\n")
	config := func(sources string) string {
		return fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\n"+
			"store:\n  driver: sqlite\n  dsn: %s\ntokens:\n  - name: ops\n    hash: %s\n    scopes: [admin]\n"+
			"  - name: pusher\n    hash: "+pushHash+"\n    scopes: [\"push:api\"]\n"+
			"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n    schedule: \"@daily\"\n"+
			"  - name: api\n    type: push\n"+sources, yamlQuote(w.dsn), hash)
	}
	w.write(t, "roster.yaml", config(""))
	p := startServeProc(t, w)
	p.waitReady(t)
	waitTask(t, w, p, "the first sync of staff", func(tk taskJSON) bool { return tk.Status == "succeeded" })
	// hr joins by a reload once staff's first sync has ended, so that the
	// tasks are numbered alike in every run (the pictures show them).
	w.write(t, "roster.yaml", config("  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var hrFailed taskJSON
	deadline := time.Now().Add(60 * time.Second)
	for hrFailed.ID == 0 {
		for _, tk := range w.tasks(t, "--source", "hr") {
			if tk.Status == "failed" {
				hrFailed = tk
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hr's first sync has not failed after 60s; the log:\n%s", p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Every page sends to the login form.
	b.navigate(p.base + "/admin/tasks")
	if u := b.url(); u != p.base+"/admin/login" {
		t.Fatalf("without a session, /admin/tasks went to %s", u)
	}
	b.find("#token").sendKeys("not-the-token")
	b.find("#login").click()
	if got := b.text("#error"); !strings.Contains(got, "not valid") {
		t.Fatalf("a wrong token: %q", got)
	}
	b.find("#token").sendKeys(token)
	shot("login")
	b.find("#login").click()
	b.find("#source-staff")
	if u := b.url(); u != p.base+"/admin" {
		t.Fatalf("after the login the browser is at %s", u)
	}
	if got := b.text("#source-staff"); !strings.Contains(got, "succeeded") || !strings.Contains(got, "idle") {
		t.Fatalf("staff on the overview: %q", got)
	}
	if got := b.text("#source-hr"); !strings.Contains(got, "failed") {
		t.Fatalf("hr on the overview: %q", got)
	}
	shot("overview")
	// On a laptop's 1280 px the overview fits: no table scrolls sideways.
	var wide []string
	b.execute(`return [...document.querySelectorAll(".scroll")].filter(e => e.scrollWidth > e.clientWidth).map(e => e.scrollWidth + ">" + e.clientWidth);`, &wide)
	if len(wide) > 0 {
		t.Errorf("at 1280 px the overview scrolls sideways (scroll width > width): %v", wide)
	}

	// An invalid upload lists every error; the file stays.
	bad := filepath.Join(t.TempDir(), "staff-bad.csv")
	if err := os.WriteFile(bad, []byte(csvOf(people)+"99,No,Login,,bad@,,\n01001,Dup,Id,dup,,,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.find("#source-staff input[type=file]").sendKeys(bad)
	b.find("#source-staff button.upload").click()
	errs := b.text("#upload-errors")
	for _, want := range []string{"3 errors", "line 21, column 4 (login)", `line 21, column 5 (email): "bad@" is not a valid e-mail address`, "line 22, column 1 (id)"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the upload's errors lack %q:\n%s", want, errs)
		}
	}
	if w.read(t, "staff.csv") != csvOf(people) {
		t.Fatal("an invalid upload changed the file")
	}
	shot("upload-errors")

	// A valid upload replaces the file and syncs it.
	people = append(people, person{ID: ext(21), First: "New", Last: "Person", Login: "user21", Email: "user21@example.com"})
	good := filepath.Join(t.TempDir(), "staff.csv")
	if err := os.WriteFile(good, []byte(csvOf(people)), 0o600); err != nil {
		t.Fatal(err)
	}
	b.find("#source-staff input[type=file]").sendKeys(good)
	b.find("#source-staff button.upload").click()
	b.waitURL("/admin/tasks/")
	b.waitText("#status", "succeeded", 60*time.Second)
	if w.read(t, "staff.csv") != csvOf(people) {
		t.Fatal("a valid upload did not replace the file")
	}

	// Sync: the file changed on disk.
	people[2].Email = "changed@example.com"
	w.write(t, "staff.csv", csvOf(people))
	b.navigate(p.base + "/admin")
	b.find("#source-staff button.sync").click()
	b.waitURL("/admin/tasks/")
	b.waitText("#status", "succeeded", 60*time.Second)
	if got := b.text("table.counts"); !strings.Contains(got, "0 1 20 0 0 0 0 0") {
		t.Errorf("counts of the sync (want updated 1, unchanged 20): %q", got)
	}
	shot("task")

	// The task list, filtered to hr's failed task.
	b.navigate(p.base + "/admin/tasks")
	if !b.has(fmt.Sprintf("#task-%d", hrFailed.ID)) {
		t.Fatalf("the task list lacks hr's task %d: %s", hrFailed.ID, b.text("body"))
	}
	shot("tasks")
	b.navigate(p.base + "/admin/tasks?source=hr&status=failed")
	b.find(fmt.Sprintf("#task-%d a", hrFailed.ID)).click()
	b.waitURL(fmt.Sprintf("/admin/tasks/%d", hrFailed.ID))
	failedErrs := b.text("#errors")
	for _, want := range []string{`line 2, column 5 (email): "ben@" is not a valid e-mail address`, "line 3, column 4 (login)"} {
		if !strings.Contains(failedErrs, want) {
			t.Errorf("the failed task's errors lack %q:\n%s", want, failedErrs)
		}
	}
	shot("task-failed")
	// Fixed, the retry reads the file afresh (the task's input was
	// invalid: its raw record explains the failure, it is not run again).
	w.write(t, "hr.csv", "h1,Ann,Able,ann,ann@example.com,,\nh2,Ben,Baker,ben,ben@example.com,,\nh3,Cy,Cole,cy,cy@example.com,,\n")
	b.find("#retry").click()
	b.waitURL("?flash=retried")
	b.waitText("#status", "succeeded", 60*time.Second)
	if got := b.text("dl.facts"); !strings.Contains(got, fmt.Sprintf("#%d", hrFailed.ID)) || !strings.Contains(got, "retry") {
		t.Fatalf("the retry's task: %q", got)
	}

	// The safety valve: a file without most people is held, then approved.
	w.write(t, "staff.csv", csvOf(people[:3]))
	b.navigate(p.base + "/admin")
	b.find("#source-staff button.sync").click()
	b.waitURL("/admin/tasks/")
	b.waitText("#status", "held", 60*time.Second)
	plan := b.text("#plan")
	for _, want := range []string{"user21", ext(21), "deactivate"} {
		if !strings.Contains(plan, want) {
			t.Errorf("the held plan lacks %q:\n%s", want, plan)
		}
	}
	shot("task-held")
	b.find("#approve").click()
	b.waitURL("?flash=approved")
	b.waitText("#status", "succeeded", 60*time.Second)
	if got := b.text("#flash"); !strings.Contains(got, "approved") {
		t.Errorf("after Approve: %q", got)
	}
	if u := w.state(t, "staff").Users[ext(21)]; u.Active {
		t.Fatal("the approved plan did not deactivate user21")
	}

	// Users, searched.
	b.navigate(p.base + "/admin/users")
	b.find("#q").sendKeys("user2")
	b.find("#search").click()
	b.waitURL("q=user2")
	if got := b.text("table.users"); !strings.Contains(got, "user21") || !strings.Contains(got, "inactive") || strings.Contains(got, "user03") {
		t.Fatalf("users matching user2: %q", got)
	}
	b.navigate(p.base + "/admin/users")
	shot("users")

	// Deactivate and activate a user with the buttons of the Users page.
	b.find("#deactivate-user03").click()
	b.waitURL("flash=deactivated")
	if u := w.state(t, "staff").Users[ext(3)]; u.Active || u.StateReason != "admin" {
		t.Fatalf("user03 after Deactivate: %+v", u)
	}
	if !b.has("#activate-user03") || b.has("#deactivate-user03") {
		t.Fatalf("the Users page after Deactivate: %s", b.text("table.users"))
	}
	b.find("#activate-user03").click()
	b.waitURL("flash=activated")
	if u := w.state(t, "staff").Users[ext(3)]; !u.Active {
		t.Fatalf("user03 after Activate: %+v", u)
	}

	// A push waits behind the source's lock, held here: its task's page
	// shows it queued and follows it, without a click, to its end.
	st := w.open(t)
	defer st.Close()
	e := &pushEnv{w: w, p: p, s: st}
	unlock, err := st.TryLockSource(context.Background(), "api")
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := e.do(t, pushToken, "POST", "/api/v1/sources/api/push", `{"dataType": "department", "records": [
		{"uid": "1", "title": "Zentrale"}, {"uid": "2", "title": "Entwicklung", "parentUid": "1"}, {"uid": "3", "title": "Vertrieb", "parentUid": "1"}]}`)
	var queued taskJSON
	if err := json.Unmarshal(body, &queued); err != nil || code != 202 {
		t.Fatalf("push: %d %s", code, body)
	}
	b.navigate(fmt.Sprintf("%s/admin/tasks/%d", p.base, queued.ID))
	if got := b.text("#status"); got != "queued" {
		t.Fatalf("the pushed task's page shows %q, want queued", got)
	}
	if !b.has("meta[http-equiv=refresh]") {
		t.Fatal("the page of a queued task does not refresh itself")
	}
	unlock()
	// The test does not reload: only the page's own refresh shows the end.
	b.waitShown("#status", "succeeded", 30*time.Second)
	if u := b.url(); u != fmt.Sprintf("%s/admin/tasks/%d", p.base, queued.ID) {
		t.Errorf("the task page moved to %s", u)
	}
	if b.has("meta[http-equiv=refresh]") {
		t.Error("the page of an ended task still refreshes")
	}

	// Groups: the departments as a tree, with owners and member counts.
	code, _, body = e.do(t, pushToken, "POST", "/api/v1/sources/api/push", `{"dataType": "user", "records": [
		{"uid": "u1", "username": "jweiss", "departments": [{"uid": "2", "isOwner": true}]},
		{"uid": "u2", "username": "zschaefer", "departments": ["2"]}]}`)
	var users taskJSON
	if err := json.Unmarshal(body, &users); err != nil || code != 202 {
		t.Fatalf("push: %d %s", code, body)
	}
	if tk := e.waitDone(t, users.ID); tk.Status != store.StatusSucceeded {
		t.Fatalf("the pushed users: %s %s", tk.Status, tk.Errors)
	}
	groups, _, err := st.ListGroups(context.Background(), store.GroupFilter{Source: "api", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, g := range groups {
		ids[g.DisplayName] = g.ID
	}
	b.navigate(p.base + "/admin")
	b.find(`header nav a[href="/admin/groups"]`).click()
	b.waitURL("/admin/groups")
	dev := fmt.Sprintf("#group-%s #group-%s", ids["Zentrale"], ids["Entwicklung"])
	if !b.has(dev) || !b.has(fmt.Sprintf("#group-%s #group-%s", ids["Zentrale"], ids["Vertrieb"])) {
		t.Fatalf("the Groups page does not nest the departments under Zentrale: %s", b.text("#source-api"))
	}
	if got := b.text(dev); !strings.Contains(got, "2 members") || !strings.Contains(got, "owners: jweiss") {
		t.Errorf("Entwicklung on the Groups page: %q", got)
	}
	if got := b.text("#source-staff"); !strings.Contains(got, "Sales") || !strings.Contains(got, "Eng") {
		t.Errorf("staff's groups on the Groups page: %q", got)
	}
	shot("groups")

	// A sink joins by a reload: its first run is recorded with what it
	// created and the user the service refused; Run now runs it again.
	// Its interval is an hour, so that the runs are the same in every run
	// of the test (the pictures show them).
	svc := pickyService(t, "user05")
	w.write(t, "roster.yaml", config("  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n")+
		"sinks:\n  - name: wiki\n    url: "+svc.URL+"/scim/v2\n    auth: {bearer: e2e-browser-sink-token}\n    interval: 1h\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSinkRun := func(id int64) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			var v sinkViewJSON
			if err := json.Unmarshal([]byte(w.run(t, "sink", "wiki", "--json").stdout), &v); err == nil && v.LastRun != nil && v.LastRun.ID >= id {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %d of the sink is not recorded after 60s; the log:\n%s", id, p.stderr)
			}
		}
	}
	waitSinkRun(1)
	b.navigate(p.base + "/admin")
	b.find(`header nav a[href="/admin/sinks"]`).click()
	b.waitURL("/admin/sinks")
	if got := b.text("#sink-wiki"); !strings.Contains(got, "ok") || !strings.Contains(got, "#1") {
		t.Fatalf("wiki on the Sinks page: %q", got)
	}
	shot("sinks")
	b.find(`#sink-wiki a[href="/admin/sinks/wiki"]`).click()
	b.waitURL("/admin/sinks/wiki")
	if got := b.text("#errors-1"); !strings.Contains(got, "POST /Users") || !strings.Contains(got, "userName user05 is reserved on this service") {
		t.Fatalf("the refused user on the sink's page: %q", got)
	}
	b.find("#run").click()
	b.waitURL("/admin/sinks/wiki?flash=sinkrun")
	waitSinkRun(2)
	b.navigate(p.base + "/admin/sinks/wiki")
	if got := b.text("#run-2"); !strings.Contains(got, "operator") || !strings.Contains(got, "ok") {
		t.Fatalf("the run asked for on the sink's page: %q", got)
	}
	shot("sink")
	if strings.Contains(b.text("main"), "e2e-browser-sink-token") || strings.Contains(b.text("main"), svc.URL) {
		t.Fatal("the sink's page shows its token or URL")
	}

	// On a phone.
	b.viewport(390, 844)
	b.navigate(p.base + "/admin")
	shot("overview-phone")
	b.viewport(1280, 900)

	b.find("#logout").click()
	b.waitURL("/admin/login?flash=loggedout")
	b.navigate(p.base + "/admin")
	if u := b.url(); u != p.base+"/admin/login" {
		t.Fatalf("after logout /admin went to %s", u)
	}

	for _, name := range []string{"login", "overview", "upload-errors", "task", "tasks", "task-failed", "task-held", "users", "groups", "sinks", "sink", "overview-phone"} {
		f, err := os.Open(filepath.Join(screenshotDir, "admin-"+name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil {
			t.Fatalf("admin-%s.png: %v", name, err)
		}
		t.Logf("docs/img/admin-%s.png: %dx%d", name, cfg.Width, cfg.Height)
	}
	t.Logf("screenshots written (their pixels changed): %v", rewritten)

	if code := p.signalAndWait(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit %d; the log:\n%s", code, p.stderr)
	}
	if strings.Contains(p.stderr.String(), token) {
		t.Fatal("the token is in the log")
	}
}
