package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rosterd/roster/sources"
)

// users returns a JSON array of n minimal users numbered from first.
func users(first, n int) string {
	var parts []string
	for i := first; i < first+n; i++ {
		parts = append(parts, fmt.Sprintf(`{"externalId":"%d","userName":"user%d","email":"user%d@example.com"}`, i, i, i))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func sum(bodies ...string) string {
	h := sha256.Sum256([]byte(strings.Join(bodies, "")))
	return hex.EncodeToString(h[:])
}

func fastOpts(url string) Options {
	return Options{URL: url, Backoff: time.Millisecond, Retries: 3, Timeout: 5 * time.Second}
}

func TestFetchPaging(t *testing.T) {
	tests := []struct {
		name string
		// bodies for page 1..3 given the server URL
		bodies  func(base string) []string
		link    func(base string, page int) string // Link header, "" for none
		records string
		next    string
	}{
		{
			name:   "link header",
			bodies: func(string) []string { return []string{users(1, 2), users(3, 2), users(5, 2)} },
			link: func(base string, page int) string {
				switch page {
				case 1:
					return `<` + base + `/users?page=2>; rel="next"`
				case 2:
					// Several links, quoted rel with several values, a relative target.
					return `<` + base + `/users?page=1>; rel="prev first", </users?page=3>; title="a, b; c"; rel="next last"`
				}
				return `<` + base + `/users?page=1>; rel=first`
			},
		},
		{
			name: "next field absolute",
			bodies: func(base string) []string {
				return []string{
					`{"data":` + users(1, 2) + `,"links":{"next":"` + base + `/users?page=2"}}`,
					`{"data":` + users(3, 2) + `,"links":{"next":"` + base + `/users?page=3"}}`,
					`{"data":` + users(5, 2) + `,"links":{"next":null}}`,
				}
			},
			records: "/data",
			next:    "/links/next",
		},
		{
			name: "next field relative",
			bodies: func(string) []string {
				return []string{
					`{"data":` + users(1, 2) + `,"links":{"next":"users?page=2"}}`,
					`{"data":` + users(3, 2) + `,"links":{"next":"/users?page=3"}}`,
					`{"data":` + users(5, 2) + `,"links":{"next":""}}`,
				}
			},
			records: "/data",
			next:    "/links/next",
		},
		{
			name: "next field missing on last page",
			bodies: func(string) []string {
				return []string{
					`{"data":` + users(1, 2) + `,"next":"?page=2"}`,
					`{"data":` + users(3, 2) + `,"next":"?page=3"}`,
					`{"data":` + users(5, 2) + `}`,
				}
			},
			records: "/data",
			next:    "/next",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base string
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				page := 1
				fmt.Sscan(r.URL.Query().Get("page"), &page)
				if r.URL.Path != "/users" || page < 1 || page > 3 {
					http.NotFound(w, r)
					return
				}
				if tc.link != nil {
					if l := tc.link(base, page); l != "" {
						w.Header().Add("Link", l)
					}
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, tc.bodies(base)[page-1])
			}))
			defer srv.Close()
			base = srv.URL
			o := fastOpts(base + "/users")
			o.Records, o.Next = tc.records, tc.next
			res, err := Fetch(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pages != 3 || hits.Load() != 3 {
				t.Errorf("pages = %d, requests = %d, want 3 and 3", res.Pages, hits.Load())
			}
			if len(res.Records) != 6 {
				t.Fatalf("got %d records, want 6", len(res.Records))
			}
			for i, rec := range res.Records {
				if rec.Line != i+1 || rec.ExternalID != fmt.Sprint(i+1) || rec.UserName != fmt.Sprintf("user%d", i+1) {
					t.Errorf("record %d = %+v", i+1, rec)
				}
			}
			if want := sum(tc.bodies(base)...); res.SHA256 != want {
				t.Errorf("sha256 = %s, want %s", res.SHA256, want)
			}
			// Same data, same digest.
			again, err := Fetch(context.Background(), o)
			if err != nil || again.SHA256 != res.SHA256 {
				t.Errorf("second fetch: %v, digest %s vs %s", err, again.SHA256, res.SHA256)
			}
		})
	}
}

func TestFetchRetries(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int // answers before success; the last one repeats if no success
		retryAfer string
		retries   int
		wantErr   []string // substrings; nil means success
		transient bool
		wantHits  int32
		minWait   time.Duration
		maxWait   time.Duration
	}{
		{name: "503 then success", statuses: []int{503}, retries: 3, wantHits: 2},
		{name: "429 with Retry-After", statuses: []int{429}, retryAfer: "1", retries: 3, wantHits: 2,
			minWait: 900 * time.Millisecond, maxWait: 4 * time.Second},
		{name: "502 until the retries run out", statuses: []int{502, 502, 502, 502}, retries: 2, wantHits: 3,
			wantErr: []string{"page 1", "/users", "502 Bad Gateway", "after 3 attempts", "upstream is down"}, transient: true},
		{name: "404 fails at once", statuses: []int{404, 404}, retries: 3, wantHits: 1,
			wantErr: []string{"page 1", "/users", "404 Not Found", "upstream is down"}},
		{name: "no retries", statuses: []int{500, 500}, retries: 0, wantHits: 1,
			wantErr: []string{"500 Internal Server Error"}, transient: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(hits.Add(1))
				if n <= len(tc.statuses) {
					if tc.retryAfer != "" {
						w.Header().Set("Retry-After", tc.retryAfer)
					}
					w.WriteHeader(tc.statuses[n-1])
					fmt.Fprint(w, "upstream is down\n"+strings.Repeat("x", 1000))
					return
				}
				fmt.Fprint(w, users(1, 1))
			}))
			defer srv.Close()
			o := fastOpts(srv.URL + "/users")
			o.Retries = tc.retries
			start := time.Now()
			res, err := Fetch(context.Background(), o)
			elapsed := time.Since(start)
			if hits.Load() != tc.wantHits {
				t.Errorf("requests = %d, want %d", hits.Load(), tc.wantHits)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Records) != 1 || len(res.Warnings) != 1 {
					t.Errorf("records %d, warnings %q", len(res.Records), res.Warnings)
				}
				if want := sum(users(1, 1)); res.SHA256 != want {
					t.Errorf("digest counts a failed attempt")
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				if len(err.Error()) > 600 {
					t.Errorf("error is %d bytes long; the body excerpt is not cut", len(err.Error()))
				}
				if IsTransient(err) != tc.transient {
					t.Errorf("IsTransient = %v, want %v", IsTransient(err), tc.transient)
				}
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tc.statuses[0] {
					t.Errorf("not a *StatusError with status %d: %#v", tc.statuses[0], err)
				}
			}
			if elapsed < tc.minWait || (tc.maxWait > 0 && elapsed > tc.maxWait) {
				t.Errorf("took %s, want between %s and %s", elapsed, tc.minWait, tc.maxWait)
			}
		})
	}
}

func TestFetchNetworkErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	o := fastOpts(url + "/users")
	o.Retries = 1
	_, err := Fetch(context.Background(), o)
	if err == nil || !IsTransient(err) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("connection refused: %v (transient %v)", err, IsTransient(err))
	}

	// A request that outlives Timeout is a transient failure.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	o = fastOpts(slow.URL)
	o.Retries, o.Timeout = 0, 50*time.Millisecond
	_, err = Fetch(context.Background(), o)
	if err == nil || !IsTransient(err) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("timeout: %v", err)
	}

	// Cancelling the context ends a backoff wait at once and is not transient.
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Fetch(ctx, fastOpts(busy.URL))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || IsTransient(err) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled: %v after %s", err, time.Since(start))
	}
}

func TestFetchBadPages(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		ctype   string
		records string
		maxBody int64
		want    string
	}{
		{name: "malformed", body: `[{"externalId": "1",}]`, want: "malformed JSON at byte 21"},
		{name: "cut short", body: `[{"externalId": "1"`, want: "ends in the middle"},
		{name: "trailing data", body: `[] []`, want: "more data follows"},
		{name: "empty", body: ``, want: "the body is empty"},
		{name: "html", body: `<html>oops</html>`, ctype: "text/html", want: "Content-Type is text/html"},
		{name: "records missing", body: `{"items":[]}`, records: "/data", want: "the records pointer /data finds nothing"},
		{name: "records not an array", body: `{"data":{"a":1}}`, records: "/data", want: "finds an object, not an array"},
		{name: "records null", body: `{"data":null}`, records: "/data", want: "finds null, not an array"},
		{name: "body not an array", body: `{"data":[]}`, want: "the body is an object, not an array of records"},
		{name: "record not an object", body: `[{"externalId":"1","userName":"a"}, "b"]`, want: "record 2 (item 2 of the page's array) is a string, not an object"},
		{name: "too large", body: users(1, 100), maxBody: 1000, want: "larger than 1000 bytes"},
		{name: "too large but valid prefix", body: `[]` + strings.Repeat(" ", 2000), maxBody: 1000, want: "larger than 1000 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			o := fastOpts(srv.URL + "/people")
			o.Records, o.MaxBody = tc.records, tc.maxBody
			res, err := Fetch(context.Background(), o)
			var pe *PageError
			if !errors.As(err, &pe) || res != nil {
				t.Fatalf("got %v, %v; want a *PageError", res, err)
			}
			if IsTransient(err) {
				t.Error("a bad page is not transient")
			}
			for _, s := range []string{"page 1", srv.URL + "/people", tc.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestFetchOAuth2(t *testing.T) {
	var tokenHits, apiHits atomic.Int32
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tokenHits.Add(1)
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !ok || id != "roster" || secret != "s3cr3t-client" ||
			r.PostFormValue("grant_type") != "client_credentials" || r.PostFormValue("scope") != "users.read groups.read" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"bearer","expires_in":3600}`, n)
	}))
	defer tokenSrv.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiHits.Add(1)
		auth := r.Header.Get("Authorization")
		switch r.URL.Query().Get("page") {
		case "":
			if auth != "Bearer tok-1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{"data":`+users(1, 1)+`,"next":"?page=2"}`)
		case "2":
			// The first token expired early on the server's side.
			if auth != "Bearer tok-2" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"token expired"}`)
				return
			}
			fmt.Fprint(w, `{"data":`+users(2, 1)+`}`)
		}
	}))
	defer api.Close()

	o := fastOpts(api.URL)
	o.Records, o.Next = "/data", "/next"
	o.OAuth2 = &OAuth2{TokenURL: tokenSrv.URL + "/token", ClientID: "roster", ClientSecret: "s3cr3t-client", Scopes: []string{"users.read", "groups.read"}}
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 2 || tokenHits.Load() != 2 || apiHits.Load() != 3 {
		t.Errorf("records %d, token requests %d (want 2), API requests %d (want 3)", len(res.Records), tokenHits.Load(), apiHits.Load())
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "401") {
		t.Errorf("warnings %q", res.Warnings)
	}

	// A token the API keeps refusing fails after one refresh.
	tokenHits.Store(0)
	deny := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer deny.Close()
	o.URL = deny.URL
	_, err = Fetch(context.Background(), o)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 401 || IsTransient(err) || tokenHits.Load() != 2 {
		t.Errorf("refused twice: %v, %d token requests", err, tokenHits.Load())
	}

	// Token endpoint failures name the token URL and the status.
	o.URL = api.URL
	bad := o
	bad.OAuth2 = &OAuth2{TokenURL: tokenSrv.URL + "/token", ClientID: "roster", ClientSecret: "wrong-secret"}
	_, err = Fetch(context.Background(), bad)
	var te *TokenError
	if !errors.As(err, &te) || te.StatusCode != 401 || IsTransient(err) ||
		!strings.Contains(err.Error(), tokenSrv.URL+"/token") || !strings.Contains(err.Error(), "401") ||
		!strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	bad.OAuth2 = &OAuth2{TokenURL: down.URL + "/token", ClientID: "roster", ClientSecret: "s3cr3t-client"}
	_, err = Fetch(context.Background(), bad)
	if !errors.As(err, &te) || te.StatusCode != 503 || !IsTransient(err) || !strings.Contains(err.Error(), down.URL+"/token") {
		t.Errorf("token endpoint down: %v", err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	bad.OAuth2.TokenURL = gone.URL + "/token"
	_, err = Fetch(context.Background(), bad)
	if !errors.As(err, &te) || !IsTransient(err) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("token endpoint unreachable: %v", err)
	}
}

func TestFetchAuthAndHeaders(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*Options)
		check func(r *http.Request) string // "" when fine
	}{
		{
			name: "bearer",
			set:  func(o *Options) { o.Bearer = "b-token" },
			check: func(r *http.Request) string {
				return ifNot(r.Header.Get("Authorization") == "Bearer b-token", "Authorization "+r.Header.Get("Authorization"))
			},
		},
		{
			name: "basic",
			set:  func(o *Options) { o.Basic = &Basic{Username: "svc", Password: "pa:ss"} },
			check: func(r *http.Request) string {
				u, p, ok := r.BasicAuth()
				return ifNot(ok && u == "svc" && p == "pa:ss", "basic "+u+" "+p)
			},
		},
		{
			name: "custom headers and method",
			set: func(o *Options) {
				o.Method = http.MethodPost
				o.Headers = map[string]string{"X-Api-Key": "k-123", "X-Tenant": "acme", "Accept": "application/vnd.hr+json"}
			},
			check: func(r *http.Request) string {
				return ifNot(r.Method == http.MethodPost && r.Header.Get("X-Api-Key") == "k-123" &&
					r.Header.Get("X-Tenant") == "acme" && r.Header.Get("Accept") == "application/vnd.hr+json",
					fmt.Sprintf("%s %v", r.Method, r.Header))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problem := make(chan string, 10)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				problem <- tc.check(r)
				fmt.Fprint(w, users(1, 1))
			}))
			defer srv.Close()
			o := fastOpts(srv.URL)
			tc.set(&o)
			if _, err := Fetch(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if p := <-problem; p != "" {
				t.Errorf("request: %s", p)
			}
		})
	}
}

func ifNot(ok bool, msg string) string {
	if ok {
		return ""
	}
	return msg
}

func TestFetchMapping(t *testing.T) {
	body := `{"result":{"people":[
	  {"id": 12345678901234567890, "login": {"name": " jdoe "}, "a/b": "Jane", "m~n": "Doe",
	   "contact": {"mail": "jane@example.com", "phone": 4930123}, "teams": ["Eng", " Ops ", "eng", "", 7],
	   "state": "TRUE"},
	  {"id": "00123", "login": {"name": "max"}, "teams": "Sales", "state": false, "contact": null},
	  {"id": 1.5e3, "login": {"name": "eva"}, "teams": null, "state": " False "},
	  {"id": "x", "login": {"name": "kim"}}
	]}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	o := fastOpts(srv.URL)
	o.Records = "/result/people"
	o.Map = map[string]string{
		"externalId": "/id", "userName": "/login/name", "givenName": "/a~1b", "familyName": "/m~0n",
		"email": "/contact/mail", "phone": "/contact/phone", "groups": "/teams", "active": "/state",
	}
	res, err := Fetch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := []sources.Record{
		{Line: 1, ExternalID: "12345678901234567890", UserName: "jdoe", GivenName: "Jane", FamilyName: "Doe",
			Email: "jane@example.com", Phone: "4930123", Groups: []string{"Eng", "Ops", "7"}, Active: &yes},
		{Line: 2, ExternalID: "00123", UserName: "max", Groups: []string{"Sales"}, Active: &no},
		{Line: 3, ExternalID: "1.5e3", UserName: "eva", Active: &no},
		{Line: 4, ExternalID: "x", UserName: "kim"},
	}
	if len(res.Records) != len(want) {
		t.Fatalf("got %d records", len(res.Records))
	}
	for i, w := range want {
		g := res.Records[i]
		if fmt.Sprint(g.Groups) != fmt.Sprint(w.Groups) || fmt.Sprint(deref(g.Active)) != fmt.Sprint(deref(w.Active)) {
			t.Errorf("record %d: groups %q active %v, want %q %v", i+1, g.Groups, deref(g.Active), w.Groups, deref(w.Active))
		}
		g.Groups, w.Groups, g.Active, w.Active = nil, nil, nil, nil
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i+1, g, w)
		}
	}
}

func deref(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func TestFetchValidation(t *testing.T) {
	pages := []string{
		`[{"externalId":"1","userName":"ann","email":"ann@example.com"},
		  {"externalId":"2","userName":"bob","email":"bob@"},
		  {"userName":"cid"},
		  {"externalId":"4","userName":"ANN"}]`,
		`[{"externalId":"2","userName":"dan\u0007"},
		  {"externalId":{"x":1},"userName":"eve","active":"yes"},
		  {"externalId":"7","userName":"fay","groups":{"a":1},"email":true},
		  {"externalId":"8","userName":"gus","active":1,"groups":["ok",null],"givenName":"bad \ud800 surrogate"},
		  {"externalId":"9","userName":"hal","email":"h@\",\"password\":\"Passw0rdLEAK"},
		  {"externalId":"10","userName":"\uff49vy"},
		  {"externalId":"11","userName":"jose\u0301"},{"externalId":"12","userName":"jos\u00e9"}]`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("p") == "2" {
			fmt.Fprint(w, pages[1])
			return
		}
		w.Header().Set("Link", `</?p=2>; rel=next`)
		fmt.Fprint(w, pages[0])
	}))
	defer srv.Close()
	res, err := Fetch(context.Background(), fastOpts(srv.URL))
	var ve *sources.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *sources.ValidationError", err)
	}
	if IsTransient(err) {
		t.Error("invalid records are not transient")
	}
	if res == nil || len(res.Records) != 12 || res.Pages != 2 {
		t.Fatalf("the result comes with the validation error: %+v", res)
	}
	want := []string{
		`record 2 (email): "bob@" is not a valid e-mail address`,
		`record 3 (externalId): a value is required; the record has nothing at /externalId`,
		`record 4 (userName): "ANN" is already used by record 1`,
		`record 5 (externalId): "2" is already used by record 2`,
		`record 5 (userName): "dan\a" contains the control character U+0007`,
		`record 6 (externalId): the value is an object; expected a string or a number`,
		`record 6 (active): "yes" is neither true nor false`,
		`record 7 (email): the value is true; expected a string or a number`,
		`record 7 (groups): the value is an object; expected an array of group names or one group name`,
		"record 8 (givenName): \"bad \ufffd surrogate\" is not valid text",
		`record 8 (groups): group 2 is null; expected a group name`,
		`record 8 (active): the value is a number; expected true or false`,
		// A value that ran on over other members is not shown.
		`record 9 (email): the value (28 characters, not shown: it holds a quote and may hold other members) is not a valid e-mail address`,
		`record 10 (userName): "ｉvy" holds compatibility characters that stand for plainer ones (such as fullwidth letters); write it as "ivy"`,
		// One login, decomposed and composed: the second is a duplicate.
		`record 12 (userName): "josé" is already used by record 11 (login names are compared without regard to case)`,
	}
	var got []string
	for _, fe := range ve.Errors {
		got = append(got, fe.Message)
		if fe.Line < 1 || fe.Field == "" || !strings.HasPrefix(fe.Message, fmt.Sprintf("record %d (%s): ", fe.Line, fe.Field)) {
			t.Errorf("inconsistent FieldError %+v", fe)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range min(len(got), len(want)) {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

func TestFetchPageLimits(t *testing.T) {
	tests := []struct {
		name     string
		next     func(base string, page int) string
		maxPages int
		want     string
	}{
		{name: "loop to the first page", next: func(b string, p int) string { return fmt.Sprintf("%s/u?page=%d", b, p%2+1) },
			want: "/u?page=1 was read before; the pages form a loop"},
		{name: "loop to itself", next: func(b string, p int) string { return fmt.Sprintf("/u?page=%d", min(p+1, 3)) },
			want: "/u?page=3 was read before"},
		{name: "too many pages", next: func(b string, p int) string { return fmt.Sprintf("/u?page=%d", p+1) },
			maxPages: 5, want: "more than 5 pages"},
		{name: "another host", next: func(b string, p int) string { return "http://evil.example/steal" },
			want: "leaves http://127.0.0.1"},
		{name: "not a URL", next: func(b string, p int) string { return "http://[::1" },
			want: "is not a valid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base string
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				page := 1
				fmt.Sscan(r.URL.Query().Get("page"), &page)
				fmt.Fprintf(w, `{"users":[],"next":%q}`, tc.next(base, page))
			}))
			defer srv.Close()
			base = srv.URL
			o := fastOpts(base + "/u?page=1")
			o.Records, o.Next, o.MaxPages = "/users", "/next", tc.maxPages
			_, err := Fetch(context.Background(), o)
			var pe *PageError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a *PageError with %q", err, tc.want)
			}
			if hits.Load() > 10 {
				t.Errorf("%d requests", hits.Load())
			}
		})
	}
}

func TestSecretsNeverShown(t *testing.T) {
	const (
		bearer       = "bearer-SECRET-1"
		password     = "basic-SECRET-2"
		clientSecret = "client-SECRET-3"
		accessToken  = "access-SECRET-4"
		apiKey       = "key-SECRET-5"
		urlPassword  = "url-SECRET-6"
		queryKey     = "query-SECRET-7"
		querySig     = "sig-SECRET-8"
	)
	secrets := []string{bearer, password, clientSecret, accessToken, apiKey, urlPassword, queryKey, querySig,
		base64.StdEncoding.EncodeToString([]byte("svc:" + password)),
		base64.StdEncoding.EncodeToString([]byte("svc:" + urlPassword))}
	// echo answers with everything the request carried.
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprintf(w, "denied: %v %s", r.Header, r.URL)
		}
	}
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, s, _ := r.BasicAuth(); s != clientSecret {
			echo(http.StatusUnauthorized)(w, r)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":"3600"}`, accessToken)
	}))
	defer tokenSrv.Close()
	tokenEcho := httptest.NewServer(echo(http.StatusBadRequest))
	defer tokenEcho.Close()
	api403 := httptest.NewServer(echo(http.StatusForbidden))
	defer api403.Close()
	api500 := httptest.NewServer(echo(http.StatusInternalServerError))
	defer api500.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"users":[], "next": "http://other.example/?token=%s"}`, bearer)
	}))
	defer bad.Close()
	// signed announces a next page signed with a key roster never saw.
	signed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"users":[], "next": "http://other.example/?page=2&X-Amz-Signature=%s"}`, querySig)
	}))
	defer signed.Close()
	// unparsable announces a next page URL that does not parse.
	unparsable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"users":[], "next": "http://bad host/?sig=%s"}`, querySig)
	}))
	defer unparsable.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	withPass := func(u string) string { return strings.Replace(u, "http://", "http://svc:"+urlPassword+"@", 1) }

	tests := []struct {
		name string
		o    Options
	}{
		{"bearer echoed by 403", Options{URL: api403.URL, Bearer: bearer}},
		{"bearer echoed by 500 after retries", Options{URL: api500.URL, Bearer: bearer, Retries: 2}},
		{"basic password echoed", Options{URL: api403.URL, Basic: &Basic{Username: "svc", Password: password}}},
		{"api key echoed", Options{URL: api403.URL, Headers: map[string]string{"X-Api-Key": apiKey}}},
		{"url password echoed", Options{URL: withPass(api403.URL)}},
		{"url password, connection refused", Options{URL: withPass(closed.URL) + "/x?access_token=" + bearer, Bearer: bearer}},
		{"access token echoed", Options{URL: api403.URL, OAuth2: &OAuth2{TokenURL: tokenSrv.URL, ClientID: "c", ClientSecret: clientSecret}}},
		{"client secret echoed by token endpoint", Options{URL: api403.URL, OAuth2: &OAuth2{TokenURL: tokenEcho.URL, ClientID: "c", ClientSecret: clientSecret}}},
		{"token url with password", Options{URL: api403.URL, OAuth2: &OAuth2{TokenURL: withPass(closed.URL), ClientID: "c", ClientSecret: clientSecret}}},
		{"secret in next url", Options{URL: bad.URL, Bearer: bearer, Records: "/users", Next: "/next"}},
		{"bad url with password", Options{URL: "ftp://u:" + urlPassword + "@host/x"}},
		{"query api key echoed", Options{URL: api403.URL + "/x?page=1&api_key=" + queryKey}},
		{"query api key, connection refused", Options{URL: closed.URL + "/x?api_key=" + queryKey}},
		{"query api key, 500 after retries", Options{URL: api500.URL + "/x?Token=" + queryKey, Retries: 1}},
		{"bad url with a query api key", Options{URL: "ftp://host/x?api_key=" + queryKey}},
		{"unknown signature in next url", Options{URL: signed.URL + "/x?api_key=" + queryKey, Records: "/users", Next: "/next"}},
		{"unknown signature in an invalid next url", Options{URL: unparsable.URL, Records: "/users", Next: "/next"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Backoff = time.Millisecond
			res, err := Fetch(context.Background(), tc.o)
			if err == nil {
				t.Fatal("no error")
			}
			texts := []string{err.Error(), fmt.Sprintf("%+v", err)}
			if res != nil {
				texts = append(texts, res.Warnings...)
			}
			for _, text := range texts {
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%q shows the secret %s", text, s)
					}
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://api.example/users?page=2&limit=100", "https://api.example/users?page=2&limit=100"},
		{"https://api.example/users?api_key=abc123&page=2", "https://api.example/users?api_key=xxxxx&page=2"},
		{"https://u:pw@api.example/?access_token=t&X-Amz-Signature=s&sig=x&passwd=p&Auth=a&q=", "https://u:xxxxx@api.example/?access_token=xxxxx&X-Amz-Signature=xxxxx&sig=xxxxx&passwd=xxxxx&Auth=xxxxx&q="},
		{"https://api.example/?api%5Fkey=abc&token", "https://api.example/?api%5Fkey=xxxxx&token"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactURL(u); got != tc.want {
			t.Errorf("redactURL(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestPointer(t *testing.T) {
	doc := map[string]any{
		"a":   map[string]any{"b": []any{"x", "y", map[string]any{"c": "deep"}}},
		"":    "empty key",
		"m~n": "tilde", "a/b": "slash", "~1": "literal",
		"n": nil,
	}
	tests := []struct {
		ptr     string
		want    any
		found   bool
		badSpec bool
	}{
		{ptr: "", want: doc, found: true},
		{ptr: "/a/b/0", want: "x", found: true},
		{ptr: "/a/b/2/c", want: "deep", found: true},
		{ptr: "/a/b/3", found: false},
		{ptr: "/a/b/01", found: false},
		{ptr: "/a/b/-", found: false},
		{ptr: "/a/b/x", found: false},
		{ptr: "/a/b/0/c", found: false},
		{ptr: "/", want: "empty key", found: true},
		{ptr: "/m~0n", want: "tilde", found: true},
		{ptr: "/a~1b", want: "slash", found: true},
		{ptr: "/~01", want: "literal", found: true},
		{ptr: "/n", want: nil, found: true},
		{ptr: "/missing", found: false},
		{ptr: "a", badSpec: true},
		{ptr: "/a~2", badSpec: true},
		{ptr: "/a~", badSpec: true},
	}
	for _, tc := range tests {
		p, err := parsePointer(tc.ptr)
		if (err != nil) != tc.badSpec {
			t.Errorf("parsePointer(%q) error %v", tc.ptr, err)
			continue
		}
		if err != nil {
			continue
		}
		got, found := p.lookup(doc)
		if found != tc.found || (found && fmt.Sprint(got) != fmt.Sprint(tc.want)) {
			t.Errorf("%q: got %v, %v; want %v, %v", tc.ptr, got, found, tc.want, tc.found)
		}
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{[]string{`<https://a/?p=2>; rel="next"`}, "https://a/?p=2"},
		{[]string{`<https://a/?p=1>; rel="prev", <https://a/?p=3>; rel="next"`}, "https://a/?p=3"},
		{[]string{`<https://a/?p=1>; rel=prev`, `<https://a/?p=3>; rel=next`}, "https://a/?p=3"},
		{[]string{`<https://a/x,y>; title="a, <b>; rel=next"; rel="last NEXT"`}, "https://a/x,y"},
		{[]string{`</p2>;rel=next`}, "/p2"},
		{[]string{`<https://a/1>; rel="nextpage"`}, ""},
		{[]string{`<https://a/1>; rel="prev"; rel="next"`}, ""}, // only the first rel counts
		{[]string{`garbage, <https://a/2>; rel=next`}, "https://a/2"},
		{[]string{`<https://a/2`}, ""},
		{[]string{`<https://a/1>; @@; rel=next, <https://a/2>; rel=next`}, "https://a/2"},
		{nil, ""},
	}
	for _, tc := range tests {
		if got := nextLink(tc.values); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.values, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"99999":                         MaxRetryAfter,
		"soon":                          0,
		"Sun, 22 Nov 2026 10:00:20 GMT": 20 * time.Second,
		"Sun, 22 Nov 2026 09:00:00 GMT": 0,
		"Mon, 23 Nov 2026 10:00:00 GMT": MaxRetryAfter,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{URL: "ftp://x/"}, "not an http or https URL"},
		{Options{URL: "http:///path"}, "has no host"},
		{Options{URL: "http://x/", Bearer: "b", Basic: &Basic{}}, "only one of"},
		{Options{URL: "http://x/", Map: map[string]string{"userName": "/u"}}, "externalId is required"},
		{Options{URL: "http://x/", Map: map[string]string{"externalId": "/id", "userName": "/u", "title": ""}}, `the pointer for title is empty`},
		{Options{URL: "http://x/", Records: "data"}, "records:"},
		{Options{URL: "http://x/", Headers: map[string]string{"X-A": "a\nb"}}, "line break"},
		{Options{URL: "http://x/", Bearer: "b", Headers: map[string]string{"authorization": "c"}}, "exclude each other"},
		{Options{URL: "http://x/", OAuth2: &OAuth2{TokenURL: "http://t/"}}, "client id"},
	}
	for _, tc := range tests {
		_, err := Fetch(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestFetchRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, users(1, 1))
	}))
	defer other.Close()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/old":
			http.Redirect(w, r, "/new", http.StatusFound)
		case "/new":
			fmt.Fprint(w, users(1, 2))
		default:
			// Same address under another name: a different host.
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1), http.StatusFound)
		}
	}))
	defer srv.Close()
	res, err := Fetch(context.Background(), fastOpts(srv.URL+"/old"))
	if err != nil || len(res.Records) != 2 {
		t.Fatalf("same-host redirect: %v", err)
	}
	hits.Store(0)
	o := fastOpts(srv.URL + "/away")
	o.Bearer = "tok"
	_, err = Fetch(context.Background(), o)
	if err == nil || IsTransient(err) || hits.Load() != 1 || !strings.Contains(err.Error(), "refused a redirect") {
		t.Errorf("cross-host redirect: %v, %d requests", err, hits.Load())
	}
}

func TestCheck(t *testing.T) {
	if err := Check(Options{URL: "https://hr.example.com/api/people", Bearer: "x", Records: "/data", Next: "/links/next",
		Map: map[string]string{"externalId": "/id", "userName": "/login", "givenName": "/first", "familyName": "/last",
			"email": "/mail", "groups": "/teams", "active": "/active"}}); err != nil {
		t.Errorf("the SPEC example: %v", err)
	}
	if err := Check(Options{URL: "https://x/", Next: "links"}); err == nil {
		t.Error("a bad next pointer passed")
	}
}

// TestFetchCheck: Options.Check checks the values of mapped attribute
// paths beyond sources.CheckAttribute (the daemon passes the custom
// attributes' types), and a refused value fails the read naming the record
// and the path.
func TestFetchCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":"1","login":"ann","lvl":"3"},{"id":"2","login":"bo","lvl":"three"}]`)
	}))
	defer srv.Close()
	o := fastOpts(srv.URL)
	o.Map = map[string]string{"externalId": "/id", "userName": "/login", "floor": "/lvl"}
	o.Check = func(path, v string) string {
		if path == "floor" && strings.Trim(v, "0123456789") != "" {
			return "is not an integer"
		}
		return ""
	}
	_, err := Fetch(context.Background(), o)
	var verr *sources.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), `record 2 (floor): "three" is not an integer`) || strings.Contains(err.Error(), "record 1") {
		t.Fatalf("Fetch = %v, want record 2's floor refused", err)
	}
	o.Check = nil
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatalf("without Check: %v", err)
	}
}
