package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// passwordSpy stands between roster and its sink's service and counts
// the requests whose body carries a "password".
type passwordSpy struct {
	mu      sync.Mutex
	creates int      // POST /Users with a password
	others  []string // any other request with a password
}

func (p *passwordSpy) handler(target string) http.Handler {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"password"`)) {
			p.mu.Lock()
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Users") {
				p.creates++
			} else {
				p.others = append(p.others, r.Method+" "+r.URL.Path)
			}
			p.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	})
}

// TestSinkInitialPasswords provisions a second `roster serve` from a
// roster on each store, with and without secrets.key: with the key (and
// passwords: true) each csv-created user's initial password reaches the
// service once, on create, the service can verify it, and afterwards the
// database holds neither its ciphertext nor its clear text; without the
// key nothing but hashes is kept and no password is sent. No log, task,
// raw record or metric holds a password.
func TestSinkInitialPasswords(t *testing.T) {
	for _, driver := range storetest.Drivers {
		for _, tt := range []struct{ withKey, stream bool }{{true, false}, {true, true}, {false, false}} {
			t.Run(fmt.Sprintf("%s/key=%v/stream=%v", driver, tt.withKey, tt.stream), func(t *testing.T) {
				sinkPasswords(t, driver, tt.withKey, tt.stream)
			})
		}
	}
}

func sinkPasswords(t *testing.T, driver string, withKey, stream bool) {
	const n = 20
	sum := sha256.Sum256([]byte(sinkToken))
	hash := "sha256:" + hex.EncodeToString(sum[:])
	svcDir := newWorkdir(t, store.SQLite)
	svcDir.write(t, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\nstore:\n  dsn: %s\n"+
		"tokens:\n  - {name: up, hash: '%s', scopes: [scim:read, scim:write]}\nsources:\n  - {name: idp, type: scim}\n",
		yamlQuote(svcDir.dsn), hash))
	svc := startServeProc(t, svcDir)
	svc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
	spy := &passwordSpy{}
	proxy := httptest.NewServer(spy.handler(svc.base))
	defer proxy.Close()

	people := sinkPeople(n, "Given")
	clear := map[string]string{} // by userName
	for i := range people {
		people[i].Password = fmt.Sprintf("Initial-%s-%s", people[i].Login, rand.Text()[:12])
		clear[people[i].Login] = people[i].Password
	}
	up := newWorkdir(t, driver)
	up.write(t, "staff.csv", csvOf(people))
	key := make([]byte, 32)
	rand.Read(key)
	up.write(t, "key", hex.EncodeToString(key))
	secrets, passwords := "", ""
	if stream {
		// Every csv sync streamed, however small (the other way through
		// the engine).
		secrets = "limits: {stream_from: 0}\n"
	}
	if withKey {
		secrets, passwords = secrets+"secrets: {key: '${file:key}'}\n", "    passwords: true\n"
	}
	up.write(t, "roster.yaml", fmt.Sprintf("listen: 127.0.0.1:0\nlog:\n  dir: log\n  format: json\n  level: debug\nstore:\n  driver: %s\n  dsn: %s\n"+
		"tokens:\n  - {name: check, hash: '%s', scopes: [scim:read]}\n"+
		"sources:\n  - name: staff\n    type: csv\n    path: staff.csv\n    watch: true\n%s"+
		"sinks:\n  - name: svc\n    url: %s/scim/v2\n    auth: {bearer: %s}\n    interval: 200ms\n%s",
		driver, yamlQuote(up.dsn), hash, secrets, proxy.URL, sinkToken, passwords))
	proc := startServeProc(t, up)
	proc.waitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "roster is running" })
	for deadline := time.Now().Add(time.Minute); len(heldBy(t, svc.base)) < n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the service holds %d users, want %d", len(heldBy(t, svc.base)), n)
		}
	}
	converged(t, "first delivery", proc.base, svc.base)
	if withKey {
		// The sink wipes a password right after the service has the user.
		st := up.open(t)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			kept, err := st.InitialPasswordsKept(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if kept == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d initial passwords are still kept after the delivery", kept)
			}
		}
		st.Close()
	}

	// An update goes without the password.
	renamed := sinkPeople(n, "Renamed")
	for i := range renamed {
		renamed[i].Password = people[i].Password
	}
	up.write(t, "staff.csv", csvOf(renamed))
	for deadline := time.Now().Add(time.Minute); partly(heldBy(t, svc.base), n, "Renamed"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the service did not get the updates")
		}
	}
	converged(t, "updates", proc.base, svc.base)
	_, metrics := proc.get(t, "/metrics")
	tasksJSON := up.want(t, 0, "tasks", "--json").stdout
	proc.signalAndWait(t, syscall.SIGTERM, 30*time.Second)

	spy.mu.Lock()
	creates, others := spy.creates, spy.others
	spy.mu.Unlock()
	wantCreates := 0
	if withKey {
		wantCreates = n
	}
	if creates != wantCreates || len(others) > 0 {
		t.Fatalf("%d creates carried a password (want %d); other requests with a password: %v", creates, wantCreates, others)
	}

	// The service can verify each password (or holds none).
	svcStore := svcDir.open(t)
	rows, err := svcStore.DB().Raw(`SELECT user_name, password_hash FROM users`).Rows()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var login, h string
		if err := rows.Scan(&login, &h); err != nil {
			t.Fatal(err)
		}
		seen++
		if !withKey {
			if h != "" {
				t.Errorf("%s has a password on the service without secrets.key", login)
			}
			continue
		}
		if ok, err := password.Verify(h, clear[login]); !ok || err != nil {
			t.Errorf("the service cannot verify the initial password of %s: %v, %v", login, ok, err)
		}
	}
	rows.Close()
	svcStore.Close()
	if seen != n {
		t.Fatalf("the service holds %d users, want %d", seen, n)
	}

	// The database holds no kept password, no clear text; nor does any
	// log, task, raw record or metric.
	st := up.open(t)
	defer st.Close()
	for _, table := range []string{"initial_passwords", "initial_password_sinks"} {
		var left int64
		if err := st.DB().Raw(`SELECT COUNT(*) FROM ` + table).Row().Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Errorf("%s holds %d rows after the delivery", table, left)
		}
	}
	dump := dumpTables(t, st)
	var files strings.Builder
	filepath.WalkDir(up.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(path) != "staff.csv" {
			b, _ := os.ReadFile(path)
			files.Write(b)
		}
		return nil
	})
	for login, pw := range clear {
		for what, text := range map[string]string{"the database": dump, "the log": proc.stderr.String(), "the metrics": metrics,
			"the tasks": tasksJSON, "the work folder (store files, raw records)": files.String()} {
			if strings.Contains(text, pw) {
				t.Fatalf("%s holds the clear password of %s", what, login)
			}
		}
	}
}

// dumpTables renders every row of every table of the store's schema.
func dumpTables(t *testing.T, st *store.Store) string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if st.Driver() == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	var tables []string
	if err := st.DB().Raw(q).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("only %d tables found: %v", len(tables), tables)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := st.DB().Raw(`SELECT * FROM "` + table + `"`).Rows()
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					b.Write(bs)
				} else {
					fmt.Fprint(&b, v)
				}
				b.WriteByte('|')
			}
		}
		rows.Close()
	}
	return b.String()
}
