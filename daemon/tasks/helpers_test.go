package tasks_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
)

// runner returns a Runner on s whose config has one csv source "staff"
// reading file, with extra YAML lines added to the source.
func runner(tb testing.TB, s *store.Store, dir, file string, extra ...string) *tasks.Runner {
	tb.Helper()
	yaml := "log:\n  dir: log\nsources:\n  - name: staff\n    type: csv\n    path: " + file + "\n"
	for _, e := range extra {
		yaml += "    " + e + "\n"
	}
	path := filepath.Join(dir, "roster.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.SyncSources(tb.Context(), []string{"staff"}, []string{"csv"}); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("ROSTER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if os.Getenv("ROSTER_TEST_STREAM") != "" {
		cfg.Limits.StreamFrom = 0
	}
	return &tasks.Runner{Store: s, Config: cfg, Log: log}
}
