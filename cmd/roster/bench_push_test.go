package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// BenchmarkPushSustained pushes 1,000-user payloads from concurrent
// clients over loopback to the real `roster serve` for a fixed time
// (ROSTER_BENCH_PUSH, default 20s), then waits until every accepted push is
// applied. It reports records per second accepted and applied, and the
// time from a push's 202 to the commit of its task (p50, p99). Clients
// that find limits.push_queue reached wait as Retry-After says. Run it with
// `make bench` or `go test -run '^$' -bench PushSustained -benchtime 1x ./cmd/roster`.
func BenchmarkPushSustained(b *testing.B) {
	const clients, perPayload = 4, 1000
	duration := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ROSTER_BENCH_PUSH")); err == nil {
		duration = d
	}
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			for range b.N {
				benchPush(b, driver, clients, perPayload, duration)
			}
		})
	}
}

func benchPush(b *testing.B, driver string, clients, perPayload int, duration time.Duration) {
	w := newWorkdir(b, driver)
	const token = "bench-push-token"
	hash := strings.TrimSpace(runRoster(b, w.dir, token, nil, "token").stdout)
	w.write(b, "staff.csv", "s1,Sam,Smith,sam,,,\n")
	w.write(b, "roster.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
log: {dir: log, format: json}
store: {driver: %s, dsn: %s}
limits: {push_body: 64MiB}
tokens:
  - {name: bench, hash: %q, scopes: ["push:api"]}
sources:
  - {name: api, type: push}
`, w.driver, yamlQuote(w.dsn), hash))
	p := startServeProc(b, w)
	// The departments come first, as an HR system sends them.
	deps := `{"dataType":"department","records":[`
	for i := range 10 {
		deps += fmt.Sprintf(`%s{"uid":"d-%d","title":"Department %d"}`, map[bool]string{true: ",", false: ""}[i > 0], i, i)
	}
	if code := postPush(b, p.base, token, []byte(deps+`]}`)); code != http.StatusAccepted {
		b.Fatalf("departments: %d", code)
	}

	type accepted struct {
		id int64
		at time.Time
	}
	var mu sync.Mutex
	var acks []accepted
	var refused int
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	client := &http.Client{Timeout: time.Minute}
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				body := pushPayload(fmt.Sprintf("c%d-%d", c, n), perPayload)
				req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/sources/api/push", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var task struct {
					ID int64 `json:"id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&task)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == http.StatusAccepted && err == nil {
					acks = append(acks, accepted{task.ID, time.Now()})
				} else {
					refused++
				}
				mu.Unlock()
				if resp.StatusCode == http.StatusServiceUnavailable {
					// limits.push_queue is reached: wait as the server asks.
					wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(max(wait, 1)) * time.Second):
					}
				}
			}
		})
	}
	wg.Wait()
	sent := time.Since(began)

	// Wait for every accepted push to be applied, then read the tasks.
	st := w.open(b)
	deadline := time.Now().Add(10 * time.Minute)
	var finished map[int64]store.Task
	for {
		all, _, err := st.ListTasks(context.Background(), store.TaskFilter{Source: "api", Limit: 1_000_000})
		if err != nil {
			b.Fatal(err)
		}
		finished = map[int64]store.Task{}
		waiting := 0
		for _, t := range all {
			if t.Status == store.StatusQueued || t.Status == store.StatusRunning {
				waiting++
			}
			finished[t.ID] = t
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d pushes still waiting after 10 minutes", waiting)
		}
		time.Sleep(100 * time.Millisecond)
	}
	applied := time.Since(began)
	b.StopTimer()

	var lat []time.Duration
	for _, a := range acks {
		t := finished[a.id]
		if t.Status != store.StatusSucceeded || t.FinishedAt == nil {
			b.Fatalf("push task %d ended %s: %s", a.id, t.Status, t.Errors)
		}
		lat = append(lat, max(t.FinishedAt.Sub(a.at), 0))
	}
	var users int64
	if err := st.DB().Raw(`SELECT COUNT(*) FROM users WHERE source = 'api'`).Scan(&users).Error; err != nil {
		b.Fatal(err)
	}
	var members int64
	if err := st.DB().Raw(`SELECT COUNT(*) FROM memberships`).Scan(&members).Error; err != nil {
		b.Fatal(err)
	}
	if want := int64(len(acks) * perPayload); users != want || members != want {
		b.Fatalf("%d users and %d memberships in the directory, want %d (every accepted record once)", users, members, want)
	}
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	records := float64(len(acks) * perPayload)
	b.ReportMetric(records/sent.Seconds(), "accepted-records/s")
	b.ReportMetric(records/applied.Seconds(), "applied-records/s")
	b.ReportMetric(float64(pct(0.50).Milliseconds()), "p50-202-to-applied-ms")
	b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99-202-to-applied-ms")
	b.Logf("%s: %d payloads of %d users accepted in %s (%d refused with 503: push_queue reached) by %d clients; all applied %s after the start; 202→applied p50 %s, p99 %s, max %s",
		driver, len(acks), perPayload, sent.Round(time.Millisecond), refused, clients, applied.Round(time.Millisecond),
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	p.signalAndWait(b, syscall.SIGTERM, 30*time.Second)
}

func postPush(b *testing.B, base, token string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/sources/api/push", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// pushPayload is n users with uids unique to prefix, each in one of ten
// departments.
func pushPayload(prefix string, n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"dataType":"user","records":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"uid":"%s-%d","username":"%s-%d","nickname":"Person %d","email":"%s-%d@example.com","departments":["d-%d"]}`,
			prefix, i, prefix, i, i, prefix, i, i%10)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}
