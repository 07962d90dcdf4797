package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// describing is a registry that remembers the name of every metric
// registered on it, including vectors that have no series yet (a gather
// would miss those).
type describing struct {
	*prometheus.Registry
	names []string
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *describing) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && strings.HasPrefix(m[1], "roster_") {
			r.names = append(r.names, m[1])
		}
	}
	return r.Registry.Register(c)
}

// TestDocsListEveryMetric: docs/operations.md's metric table has a row for
// every roster_ metric the daemon registers and none for a metric that does
// not exist; no page of docs/ or the README names a roster_ metric that
// does not exist (histograms' _bucket, _sum and _count series count as
// theirs).
func TestDocsListEveryMetric(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		reg := &describing{Registry: prometheus.NewRegistry()}
		if _, err := New(config.Default(t.TempDir()), st, testLogger(), reg); err != nil {
			t.Fatal(err)
		}
		if len(reg.names) < 10 {
			t.Fatalf("only %d roster_ metrics registered: %v", len(reg.names), reg.names)
		}
		ops, err := os.ReadFile("../docs/operations.md")
		if err != nil {
			t.Fatal(err)
		}
		row := regexp.MustCompile("^\\| `(roster_[a-z_]+)` \\|")
		var rows []string
		for line := range strings.SplitSeq(string(ops), "\n") {
			if m := row.FindStringSubmatch(line); m != nil {
				rows = append(rows, m[1])
			}
		}
		for _, name := range reg.names {
			if !slices.Contains(rows, name) {
				t.Errorf("docs/operations.md's metric table has no row for %s", name)
			}
		}
		pages, _ := filepath.Glob("../docs/*.md")
		pages = append(pages, "../README.md")
		mention := regexp.MustCompile(`roster_[a-z_]+`)
		for _, page := range pages {
			b, err := os.ReadFile(page)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range mention.FindAllString(string(b), -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if s, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(reg.names, s) {
						base = s
					}
				}
				// A family named by its prefix (`roster_sink_*`) needs one member.
				family := strings.HasSuffix(m, "_") && slices.ContainsFunc(reg.names, func(n string) bool { return strings.HasPrefix(n, m) })
				if !slices.Contains(reg.names, base) && !family {
					t.Errorf("%s names %s, which roster does not export", filepath.Base(page), m)
				}
			}
		}
		for _, name := range rows {
			if !slices.Contains(reg.names, name) {
				t.Errorf("docs/operations.md has a row for %s, which roster does not export", name)
			}
		}
	})
}
