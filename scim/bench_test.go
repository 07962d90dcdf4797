package scim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/scim"
	"github.com/rosterd/roster/scim/scimtest"
)

// benchUsers is the directory size of the SCIM benchmarks: 100,000, or
// ROSTER_BENCH_USERS (SPEC §11 states its target at 1,000,000).
func benchUsers(b *testing.B) int {
	if v := os.Getenv("ROSTER_BENCH_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("ROSTER_BENCH_USERS=%q: want a positive number", v)
		}
		return n
	}
	return 100_000
}

// benchHandler seeds n users into a fresh store of the driver and
// returns the Handler over it, authenticating as the daemon does.
func benchHandler(b *testing.B, driver string, n int) http.Handler {
	b.Helper()
	s := storetest.Open(b, driver)
	start := time.Now()
	scimtest.SeedMany(b, s, "bench", n)
	if driver == store.Postgres {
		// What autovacuum would do soon after a bulk load anyway.
		if err := s.DB().Exec("VACUUM ANALYZE").Error; err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%s: %d users seeded in %v", driver, n, time.Since(start).Round(time.Millisecond))
	tokens := []config.Token{{Name: "bench", Hash: hash(readToken), Scopes: []string{config.ScopeSCIMRead}}}
	return scim.NewHandler(scim.Options{
		Directory:     s.SCIM(),
		Authenticator: scim.Tokens(func() []config.Token { return tokens }),
		BaseURL:       base,
	})
}

// serve sends one GET through the handler, without a network, and
// returns how long it took.
func serve(b *testing.B, h http.Handler, path string, want []byte) time.Duration {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	d := time.Since(start)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), want) {
		b.Fatalf("GET %s: %d %.300s", path, rec.Code, rec.Body)
	}
	return d
}

func percentile(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p)
	return float64(ds[i]) / float64(time.Millisecond)
}

// BenchmarkFilterUserName measures SPEC §11's SCIM target, the lookup
// every identity provider makes before it provisions a user:
// GET /Users?filter=userName eq "..." through the Handler (token check,
// filter parsing, SQL, JSON), on 100,000 users of each store. Each
// iteration looks up 2,000 random users; p50-ms and p99-ms are the
// latency percentiles over all of them. Run with -benchtime=1x.
func BenchmarkFilterUserName(b *testing.B) {
	n := benchUsers(b)
	for _, driver := range storetest.Drivers {
		b.Run(driver, func(b *testing.B) {
			h := benchHandler(b, driver, n)
			rnd := rand.New(rand.NewPCG(1, 2))
			path := func() string {
				f := fmt.Sprintf(`userName eq "USER%06d"`, rnd.IntN(n)+1)
				return "/scim/v2/Users?filter=" + url.PathEscape(f)
			}
			want := []byte(`"totalResults":1,`)
			for range 200 { // warm the connection pool and statement caches
				serve(b, h, path(), want)
			}
			var lat []time.Duration
			b.ResetTimer()
			for range b.N {
				for range 2000 {
					lat = append(lat, serve(b, h, path(), want))
				}
			}
			b.StopTimer()
			b.ReportMetric(percentile(lat, 0.50), "p50-ms")
			b.ReportMetric(percentile(lat, 0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkListDepth shows what cursors are for: a page of 100 users at
// the start and at the end of the directory, by startIndex and by
// cursor. Index pages cost more the deeper they are (the database skips
// the rows before); cursor pages cost the same anywhere (keyset: WHERE
// id > ?). The total is counted on both.
func BenchmarkListDepth(b *testing.B) {
	n := benchUsers(b)
	for _, driver := range storetest.Drivers {
		b.Run(driver, func(b *testing.B) {
			h := benchHandler(b, driver, n)
			want := []byte(`"itemsPerPage":100,`)
			// Walk with cursors to the last thousand users, for a deep
			// cursor.
			cursor, seen := "", 0
			for seen+1000 < n {
				req := httptest.NewRequest("GET", "/scim/v2/Users?attributes=id&count=1000&cursor="+url.QueryEscape(cursor), nil)
				req.Header.Set("Authorization", "Bearer "+readToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				var l listResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || l.NextCursor == "" {
					b.Fatalf("cursor walk at %d: %v %.300s", seen, err, rec.Body)
				}
				cursor, seen = l.NextCursor, seen+len(l.Resources)
			}
			cases := []struct{ name, path string }{
				{"index-first-ms", "/scim/v2/Users?startIndex=1&count=100"},
				{"index-deep-ms", fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=100", n-150)},
				{"cursor-first-ms", "/scim/v2/Users?cursor=&count=100"},
				{"cursor-deep-ms", "/scim/v2/Users?count=100&cursor=" + url.QueryEscape(cursor)},
			}
			lat := make([][]time.Duration, len(cases))
			b.ResetTimer()
			for range b.N {
				for range 20 {
					for i, c := range cases {
						lat[i] = append(lat[i], serve(b, h, c.path, want))
					}
				}
			}
			b.StopTimer()
			for i, c := range cases {
				b.ReportMetric(percentile(lat[i], 0.5), c.name)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}
