package main

// The hostile-input part of the robustness suite (issue 7): the real
// binary over real HTTP, fed SQL injection attempts, oversized and deeply
// nested bodies, slow clients, invalid UTF-8 and tokens of the wrong
// scope, and then searched for leaked secrets. Every bad input must be
// refused cleanly (a 4xx in the route's error shape, or the correct
// ordinary answer), never a 500, and must leave the directory as it was.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
)

func TestHostile(t *testing.T) {
	t.Run("drivers", func(t *testing.T) {
		for _, driver := range storetest.Drivers {
			t.Run(driver, func(t *testing.T) {
				t.Parallel()
				h := startHostile(t, driver)
				t.Run("injection", func(t *testing.T) { hostileInjection(t, h) })
				if driver != "sqlite" {
					return
				}
				t.Run("slowloris", func(t *testing.T) { t.Parallel(); hostileSlowClients(t, h) })
				t.Run("bodies", func(t *testing.T) { hostileBodies(t, h) })
				t.Run("nesting", func(t *testing.T) { hostileNesting(t, h) })
				t.Run("utf8", func(t *testing.T) { hostileUTF8(t, h) })
				t.Run("scopes", func(t *testing.T) { hostileScopes(t, h) })
				t.Run("secrets", func(t *testing.T) { hostileSecrets(t, h) })
			})
		}
	})
	t.Run("config", hostileConfigFiles)
	t.Logf("hostile: %d bad inputs tried, all refused cleanly", hostileTried.Load())
}

// outcome is what a hostile request must get: a SCIM error (scimType set
// or code >= 400 on a SCIM path), an admin/push error, or a 200 list with
// total results.
type outcome struct {
	code     int
	scimType string // SCIM errors
	total    int    // SCIM lists (code 200): totalResults; -1 for any
}

// hostileInjection sends SQL injection attempts through every input that
// reaches a query, and checks that the directory is intact afterwards.
func hostileInjection(t *testing.T, h *hostileEnv) {
	before := h.fingerprint(t)
	users := h.userCount(t)
	const (
		sq   = `x' OR '1'='1`
		drop = `x"); DROP TABLE users;--`
	)
	scimCases := []struct {
		method, path string
		body         string
		want         outcome
	}{
		// filter values: parameters, so nothing matches
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "`+sq+`"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "x\"); DROP TABLE users;--"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "' OR ''='"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName co "%"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName co "_"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName sw "\\"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName ew "%' --"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`emails[value eq "a' OR 'a'='a"]`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`emails[type eq "work' OR 1=1--" and value co "@"]`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "';DELETE FROM users;--"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`name.givenName eq "Ada' OR 'x'='x"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`externalId eq "00001' OR '1'='1"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Groups?filter=" + q(`displayName eq "Eng' OR '1'='1"`), "", outcome{200, "", 0}},
		{"GET", "/scim/v2/Groups?filter=" + q(`members[value eq "' OR 1=1--"]`), "", outcome{200, "", 0}},
		// filters that are no filters
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "x" or 1=1`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq `+sq), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "x"; DROP TABLE users`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "x" --`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`1=1`), "", outcome{400, "invalidFilter", 0}},
		// attribute paths
		{"GET", "/scim/v2/Users?filter=" + q(`userName'; DROP TABLE users;-- eq "x"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName) OR (1=1 eq "x"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`"userName" eq "x"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`users.userName eq "x"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`urn:x' OR '1'='1:userName eq "x"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`emails[value eq "x"].value;DROP eq "x"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`meta.lastModified gt "2020' OR 1=1--"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`active eq "true' OR 1=1"`), "", outcome{400, "invalidFilter", 0}},
		// sorting
		{"GET", "/scim/v2/Users?sortBy=" + q(`userName; DROP TABLE users`), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?sortBy=" + q(`userName,(SELECT 1)`), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?sortBy=" + q(`(CASE WHEN 1=1 THEN userName END)`), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?sortBy=userName&sortOrder=" + q(`descending; DROP TABLE users`), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?sortBy=userName&sortOrder=" + q(`ASC, (SELECT 1)`), "", outcome{400, "invalidValue", 0}},
		// attributes: unknown names are ignored
		{"GET", "/scim/v2/Users?attributes=" + q(`userName,(SELECT 1)`), "", outcome{200, "", -1}},
		{"GET", "/scim/v2/Users?excludedAttributes=" + q(`userName;DROP TABLE users`), "", outcome{200, "", -1}},
		{"GET", "/scim/v2/Groups?excludedAttributes=" + q(`members') --`), "", outcome{200, "", -1}},
		// paging
		{"GET", "/scim/v2/Users?cursor=" + q(`' OR 1=1--`), "", outcome{400, "invalidCursor", 0}},
		{"GET", "/scim/v2/Users?cursor=" + q(`eyJpZCI6IicgT1IgMT0xLS0ifQ`), "", outcome{400, "invalidCursor", 0}},
		{"GET", "/scim/v2/Users?startIndex=" + q(`1 OR 1=1`), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?count=" + q(`1;DROP TABLE users`), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?startIndex=99999999999999999999", "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?startIndex=9223372036854775807&count=1000", "", outcome{200, "", -1}},
		// ids
		{"GET", "/scim/v2/Users/" + pseg(`' OR 1=1--`), "", outcome{404, "", 0}},
		{"GET", "/scim/v2/Users/" + pseg(`1 UNION SELECT password FROM users`), "", outcome{404, "", 0}},
		{"GET", "/scim/v2/Groups/" + pseg(`x'--`), "", outcome{404, "", 0}},
		{"PUT", "/scim/v2/Users/" + pseg(`' OR '1'='1`), `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"inj"}`, outcome{404, "", 0}},
		{"PATCH", "/scim/v2/Users/" + pseg(`' OR '1'='1`), `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`, outcome{404, "", 0}},
		{"DELETE", "/scim/v2/Users/" + pseg(`' OR '1'='1`), "", outcome{404, "", 0}},
		{"DELETE", "/scim/v2/Groups/" + pseg(`1; DROP TABLE groups`), "", outcome{404, "", 0}},
		// invalid UTF-8 in query parameters and ids
		{"GET", "/scim/v2/Users?filter=" + q("userName eq \"\xff\xfe\""), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q("userName\xff eq \"x\""), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q("emails[value co \"\xc3\x28\"]"), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?sortBy=" + q("userName\xff"), "", outcome{400, "invalidValue", 0}},
		{"GET", "/scim/v2/Users?attributes=" + q("userName,\xff"), "", outcome{200, "", -1}},
		{"GET", "/scim/v2/Users?cursor=" + q("\xff\xfe"), "", outcome{400, "invalidCursor", 0}},
		{"GET", "/scim/v2/Users/%FF%FE", "", outcome{404, "", 0}},
		{"GET", "/scim/v2/Groups/%C3%28", "", outcome{404, "", 0}},
		// NUL, which PostgreSQL's text cannot hold
		{"GET", "/scim/v2/Users?filter=" + q(`userName eq "a\u0000b"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q("userName eq \"a\x00b\""), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`emails[value co "\u0000"]`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users?filter=" + q(`userName sw "\u0000" or displayName co "\u0000"`), "", outcome{400, "invalidFilter", 0}},
		{"GET", "/scim/v2/Users/a%00b", "", outcome{404, "", 0}},
		{"POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"\u0000\""}`, outcome{400, "invalidFilter", 0}},
		{"POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"\\u0000\""}`, outcome{400, "invalidFilter", 0}},
		// .search bodies
		{"POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"` + sq + `\""}`, outcome{200, "", 0}},
		{"POST", "/scim/v2/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"sortBy":"userName; DROP TABLE users"}`, outcome{400, "invalidValue", 0}},
		{"POST", "/scim/v2/Groups/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"displayName co \"%\"","attributes":["displayName","(SELECT 1)"]}`, outcome{200, "", 0}},
		// a PATCH path that is an injection
		{"POST", "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"` + strings.ReplaceAll(drop, `"`, `\"`) + `","password":"` + hPwSCIM + `"}`, outcome{201, "", 0}},
	}
	for _, c := range scimCases {
		hostileTried.Add(1)
		tok := hTokRead
		if c.method != "GET" && !strings.HasSuffix(c.path, "/.search") {
			tok = hTokWrite
		}
		var body any
		if c.body != "" {
			body = c.body
		}
		r := h.do(t, c.method, c.path, tok, body, map[string]string{"Content-Type": "application/scim+json"})
		what := c.method + " " + c.path
		switch {
		case c.want.code == 200:
			if n := listTotal(t, what, r); c.want.total >= 0 && n != c.want.total {
				t.Errorf("%s: totalResults %d, want %d", what, n, c.want.total)
			}
		case c.want.code < 300:
			if r.code != c.want.code {
				t.Errorf("%s: got %s, want %d", what, r, c.want.code)
			}
		default:
			scimErr(t, what, r, c.want.code, c.want.scimType)
		}
	}
	// The user whose userName is an injection was created as it is, and
	// is found by it.
	r := h.do(t, "GET", "/scim/v2/Users?filter="+q(`userName eq "x\"); DROP TABLE users;--"`), hTokRead, nil, nil)
	if n := listTotal(t, "the injected userName", r); n != 1 {
		t.Errorf("the user named %q: %d found", drop, n)
	}
	users++

	adminCases := []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/api/v1/tasks?source=" + q(sq), "", 200},
		{"GET", "/api/v1/tasks?source=" + q(`staff'--`), "", 200},
		{"GET", "/api/v1/tasks?source=%FF%FE", "", 400},
		{"GET", "/api/v1/tasks?status=%FF", "", 400},
		{"GET", "/api/v1/tasks?source=a%00b", "", 400},
		{"PATCH", "/api/v1/users/a%00b", `{"active":false}`, 404},
		{"PATCH", "/api/v1/users/%FF%FE", `{"active":false}`, 404},
		{"POST", "/api/v1/sources/%FF/sync", "", 404},
		{"GET", "/api/v1/tasks?status=" + q(`succeeded' OR '1'='1`), "", 400},
		{"GET", "/api/v1/tasks?limit=" + q(`1;DROP TABLE tasks`), "", 400},
		{"GET", "/api/v1/tasks?offset=" + q(`0 OR 1=1`), "", 400},
		{"GET", "/api/v1/tasks?offset=-1", "", 400},
		{"GET", "/api/v1/tasks?limit=99999999999999999999", "", 400},
		{"GET", "/api/v1/tasks/" + pseg(`1 OR 1=1`), "", 400},
		{"GET", "/api/v1/tasks/" + pseg(`1;DROP TABLE tasks`), "", 400},
		{"GET", "/api/v1/tasks/-1", "", 400},
		{"GET", "/api/v1/tasks/9223372036854775807", "", 404},
		{"POST", "/api/v1/tasks/" + pseg(`1' OR '1'='1`) + "/retry", "", 400},
		{"POST", "/api/v1/tasks/" + pseg(`1 OR 1=1`) + "/approve", "", 400},
		{"POST", "/api/v1/tasks/" + pseg(`1--`) + "/reject", "", 400},
		{"PATCH", "/api/v1/users/" + pseg(`' OR 1=1--`), `{"active":false}`, 404},
		{"PATCH", "/api/v1/users/" + pseg(`x'; UPDATE users SET active=0;--`), `{"active":false}`, 404},
		{"POST", "/api/v1/sources/" + pseg(`staff' OR '1'='1`) + "/sync", "", 404},
		{"PUT", "/api/v1/sources/" + pseg(`x'--`) + "/file", "1,a,b,c,,,\n", 404},
	}
	for _, c := range adminCases {
		hostileTried.Add(1)
		var body any
		if c.body != "" {
			body = c.body
		}
		r := h.do(t, c.method, c.path, hTokAdmin, body, nil)
		what := c.method + " " + c.path
		if c.code == 200 {
			var l struct{ Total *int }
			if r.code != 200 || json.Unmarshal(r.body, &l) != nil || l.Total == nil || *l.Total != 0 {
				t.Errorf("%s: got %s, want 200 with no task", what, r)
			}
			continue
		}
		apiErr(t, what, r, c.code)
	}

	// Push: injection strings are data, stored as they are.
	hostileTried.Add(1)
	r = h.do(t, "POST", "/api/v1/sources/api/push", hTokPushAPI, `{"dataType":"department","records":[{"uid":"d' OR '1'='1","title":"Dept'); DROP TABLE groups;--"}]}`, nil)
	if r.code != 202 {
		t.Fatalf("push of an injected department: %s", r)
	}
	if st := h.waitTaskDone(t, taskIDOf(t, r)); st != "succeeded" {
		t.Errorf("push of an injected department: task %s", st)
	}
	push := `{"dataType":"user","records":[{"uid":"' OR 1=1--","username":"p'); DROP TABLE users;--",` +
		`"nickname":"Robert'); DROP TABLE students;--","email":"bobby@example.com","departments":["d' OR '1'='1"]}]}`
	hostileTried.Add(1)
	r = h.do(t, "POST", "/api/v1/sources/api/push", hTokPushAPI, push, nil)
	if r.code != 202 {
		t.Fatalf("push of injection strings: %s", r)
	}
	if st := h.waitTaskDone(t, taskIDOf(t, r)); st != "succeeded" {
		t.Errorf("push of injection strings: task %s", st)
	}
	users++
	r = h.do(t, "GET", "/scim/v2/Users?filter="+q(`userName eq "p'); DROP TABLE users;--"`), hTokRead, nil, nil)
	if n := listTotal(t, "the pushed injection", r); n != 1 {
		t.Errorf("the pushed user is not found by its userName: %d", n)
	}
	r = h.do(t, "GET", "/scim/v2/Groups?filter="+q(`displayName eq "Dept'); DROP TABLE groups;--"`), hTokRead, nil, nil)
	if n := listTotal(t, "the pushed department", r); n != 1 {
		t.Errorf("the pushed department is not found by its name: %d", n)
	}
	pushCases := []struct {
		path, body string
		code       int
		nocobase   bool
	}{
		{"/api/v1/sources/api/push", `{"dataType":"user","matchKey":"uid; DROP TABLE users","records":[{"uid":"1","username":"a"}]}`, 400, false},
		{"/api/v1/sources/api/push", `{"dataType":"user' OR '1'='1","records":[{"uid":"1","username":"a"}]}`, 400, false},
		{"/api/v1/sources/" + pseg(`api' OR '1'='1`) + "/push", `{"dataType":"user","records":[{"uid":"1","username":"a"}]}`, 404, false},
		{"/api/userData:push", "{\"sourceName\":\"api\xff\",\"dataType\":\"user\",\"records\":[]}", 404, true},
		{"/api/userData:push", `{"sourceName":"api' OR '1'='1","dataType":"user","records":[{"uid":"1","username":"a"}]}`, 404, true},
	}
	for _, c := range pushCases {
		hostileTried.Add(1)
		r := h.do(t, "POST", c.path, hTokPushAll, c.body, nil)
		if c.nocobase {
			nocobaseErr(t, c.path, r, c.code)
		} else {
			apiErr(t, c.path, r, c.code)
		}
	}

	// The directory is intact: every table answers, nothing else changed.
	if n := h.userCount(t); n != users {
		t.Errorf("after the injections: %d users, want %d", n, users)
	}
	after := h.fingerprint(t)
	if strings.Count(after, "\n") != strings.Count(before, "\n")+3 {
		t.Errorf("the directory changed beyond the two injected users and one group:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, line := range strings.Split(strings.TrimSpace(before), "\n") {
		if strings.HasPrefix(line, "Users ") || strings.HasPrefix(line, "Groups ") || strings.HasPrefix(line, "tasks ") {
			continue
		}
		if !strings.Contains(after, line+"\n") {
			t.Errorf("%q changed or vanished after the injections:\n%s", line, after)
		}
	}
	if r := h.do(t, "GET", "/api/v1/sources", hTokAdmin, nil, nil); r.code != 200 {
		t.Errorf("sources after the injections: %s", r)
	}
	if c, body := h.p.get(t, "/readyz"); c != 200 {
		t.Errorf("/readyz after the injections: %d %s", c, body)
	}
}
