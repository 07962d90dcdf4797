package main

// Helpers of the hostile-input suite (hostile_test.go): one running
// `roster serve` with a token of every scope, a recording HTTP client and
// the checks of each route's error shape.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileTried counts the bad inputs sent by the suite.
var hostileTried atomic.Int64

// The tokens of the hostile daemon, one per scope, and one that the
// configuration does not know.
const (
	hTokRead    = "hostile-read-Tk-5b1f3e"
	hTokWrite   = "hostile-write-Tk-9c2e71"
	hTokAdmin   = "hostile-admin-Tk-77aa02"
	hTokPushAPI = "hostile-pushapi-Tk-31d0c"
	hTokPushAll = "hostile-pushall-Tk-e4c8d"
	hTokUnknown = "hostile-unknown-Tk-00000"
)

// Clear passwords the suite hands to roster: CSV initial passwords, SCIM
// writes. None may come back.
const (
	hPwCSV1   = "CsvInitial-Pw-4711!"
	hPwCSV2   = "CsvInitial-Pw-0815?"
	hPwSCIM   = "ScimClear-Pw-2026#"
	hPwSCIMv2 = "ScimPatch-Pw-2027$"
	hPwUpload = "UploadClear-Pw-99%"
)

func tokenHashOf(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return "sha256:" + hex.EncodeToString(s[:])
}

// hostileConfig is the daemon of the suite: csv source staff, push source
// api, writable scim source idp, small body limits, debug JSON logs.
func hostileConfig(w *workdir) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\n  level: debug\n"+
		"store:\n  driver: %s\n  dsn: %s\nlimits:\n  request_body: %s\n  push_body: %s\ntokens:\n",
		w.driver, yamlQuote(w.dsn), "256KiB", "512KiB")
	for _, tk := range []struct{ name, tok, scope string }{
		{"reader", hTokRead, "scim:read"}, {"writer", hTokWrite, "scim:write"}, {"ops", hTokAdmin, "admin"},
		{"pusher", hTokPushAPI, "push:api"}, {"pushall", hTokPushAll, "'push:*'"},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    hash: %s\n    scopes: [%s]\n", tk.name, tokenHashOf(tk.tok), tk.scope)
	}
	b.WriteString("sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: false\n" +
		"  - name: api\n    type: push\n  - name: idp\n    type: scim\n")
	return b.String()
}

const (
	hRequestLimit = 256 << 10
	hPushLimit    = 512 << 10
)

// hostileStaff is the staff file: two initial passwords.
func hostileStaff() string {
	return csvOf([]person{
		{ID: "00001", First: "Ada", Last: "Lovelace", Login: "alovelace", Email: "ada@example.com", Groups: "Eng|Ops", Password: hPwCSV1},
		{ID: "00002", First: "Alan", Last: "Turing", Login: "aturing", Email: "alan@example.com", Groups: "Eng", Password: hPwCSV2},
		{ID: "00003", First: "Grace", Last: "Hopper", Login: "ghopper", Email: "grace@example.com"},
	})
}

// reply is one answer.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, truncate(string(r.body), 400)) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// hostileEnv is one running daemon and a transcript of every answer it
// gave, for the secrets check.
type hostileEnv struct {
	w *workdir
	p *serveProc

	mu                      sync.Mutex
	transcript              bytes.Buffer
	victimUser, victimGroup string
}

func startHostile(t *testing.T, driver string) *hostileEnv {
	t.Helper()
	return startHostileWith(t, driver, "")
}

// startHostileWith is startHostile with more top-level configuration
// (such as attributes:) after hostileConfig's.
func startHostileWith(t *testing.T, driver, more string) *hostileEnv {
	t.Helper()
	w := newWorkdir(t, driver)
	w.write(t, "staff.csv", hostileStaff())
	w.write(t, "roster.yaml", hostileConfig(w)+more)
	h := &hostileEnv{w: w}
	h.p = startServeProc(t, w)
	h.p.waitReady(t)
	// The daemon syncs staff at start.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := h.do(t, "GET", "/api/v1/tasks?source=staff", hTokAdmin, nil, nil)
		if strings.Contains(string(r.body), `"status":"succeeded"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first sync of staff did not succeed: %s; the log:\n%s", r, h.p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return h
}

// do sends one request; body may be nil, a string, []byte or an
// io.Reader (sent chunked, without Content-Length).
func (h *hostileEnv) do(t testing.TB, method, path, token string, body any, hdr map[string]string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = struct{ io.Reader }{b} // hide the length: chunked
	default:
		t.Fatalf("body of type %T", body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.p.base+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, truncate(path, 200), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	h.record(resp.Header, b)
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (h *hostileEnv) record(hdr http.Header, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hdr.Write(&h.transcript) //nolint:errcheck // a buffer
	h.transcript.Write(body)
	h.transcript.WriteByte('\n')
}

// scimErr checks an RFC 7644 §3.12 error: the status, as a string in the
// body too, and scimType when want is not empty.
func scimErr(t testing.TB, what string, r reply, code int, scimType string) {
	t.Helper()
	var e struct {
		Schemas  []string
		Status   string
		ScimType string
		Detail   string
	}
	if r.code != code {
		t.Errorf("%s: got %s, want %d %s", what, r, code, scimType)
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/scim+json") {
		t.Errorf("%s: Content-Type %q, want application/scim+json", what, ct)
	}
	if err := json.Unmarshal(r.body, &e); err != nil || len(e.Schemas) != 1 ||
		e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || e.Status != fmt.Sprint(code) || e.Detail == "" {
		t.Errorf("%s: not an RFC 7644 error: %s", what, r)
		return
	}
	if scimType != "" && e.ScimType != scimType {
		t.Errorf("%s: scimType %q, want %q: %s", what, e.ScimType, scimType, r)
	}
}

// apiErr checks an admin API or push error: {"error": "..."} with code.
func apiErr(t testing.TB, what string, r reply, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: got %s, want %d", what, r, code)
		return
	}
	var e struct{ Error string }
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: not {\"error\": ...}: %s", what, r)
	}
}

// nocobaseErr checks an error of NocoBase's path: {"code": code, "message"}.
func nocobaseErr(t testing.TB, what string, r reply, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: got %s, want %d", what, r, code)
		return
	}
	var e struct {
		Code    int
		Message string
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Code != code || e.Message == "" {
		t.Errorf("%s: not NocoBase's error shape: %s", what, r)
	}
}

// listTotal checks a 200 SCIM list answer and returns totalResults.
func listTotal(t testing.TB, what string, r reply) int {
	t.Helper()
	var l struct {
		Schemas      []string
		TotalResults *int
	}
	if r.code != 200 || json.Unmarshal(r.body, &l) != nil || l.TotalResults == nil ||
		len(l.Schemas) != 1 || l.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
		t.Errorf("%s: not a 200 ListResponse: %s", what, r)
		return -1
	}
	return *l.TotalResults
}

// fingerprint is the whole directory as SCIM shows it (every user and
// group with its version) and the number of tasks: what a refused request
// must leave alone.
func (h *hostileEnv) fingerprint(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, res := range []string{"Users", "Groups"} {
		r := h.do(t, "GET", "/scim/v2/"+res+"?count=1000&attributes=id,userName,displayName,active,meta", hTokRead, nil, nil)
		if r.code != 200 {
			t.Fatalf("GET /%s: %s", res, r)
		}
		var l struct {
			TotalResults int
			Resources    []map[string]any
		}
		if err := json.Unmarshal(r.body, &l); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d\n", res, l.TotalResults)
		for _, x := range l.Resources {
			meta, _ := x["meta"].(map[string]any)
			fmt.Fprintf(&b, "%v %s %v %v\n", x["id"], truncate(fmt.Sprint(x["userName"], x["displayName"]), 80), x["active"], meta["version"])
		}
	}
	r := h.do(t, "GET", "/api/v1/tasks?limit=1", hTokAdmin, nil, nil)
	var l struct{ Total int }
	if r.code != 200 || json.Unmarshal(r.body, &l) != nil {
		t.Fatalf("GET /api/v1/tasks: %s", r)
	}
	fmt.Fprintf(&b, "tasks %d\n", l.Total)
	return b.String()
}

// userCount is totalResults of GET /Users.
func (h *hostileEnv) userCount(t testing.TB) int {
	t.Helper()
	return listTotal(t, "count users", h.do(t, "GET", "/scim/v2/Users?count=0", hTokRead, nil, nil))
}

// q escapes a query parameter value.
func q(s string) string { return url.QueryEscape(s) }

// p escapes a path segment.
func pseg(s string) string { return url.PathEscape(s) }

// waitTaskDone polls an admin task until it is no longer queued or running.
func (h *hostileEnv) waitTaskDone(t testing.TB, id int64) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := h.do(t, "GET", fmt.Sprintf("/api/v1/tasks/%d", id), hTokAdmin, nil, nil)
		var tk struct{ Status string }
		if r.code != 200 || json.Unmarshal(r.body, &tk) != nil {
			t.Fatalf("task %d: %s", id, r)
		}
		if tk.Status != "queued" && tk.Status != "running" {
			return tk.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %d still %s after 60s", id, tk.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taskIDOf decodes the id of a task answer.
func taskIDOf(t testing.TB, r reply) int64 {
	t.Helper()
	var tk struct{ ID int64 }
	if json.Unmarshal(r.body, &tk) != nil || tk.ID == 0 {
		t.Fatalf("not a task: %s", r)
	}
	return tk.ID
}
