package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rosterd/roster/config"
)

const (
	unitPath    = "systemd/roster.service"
	unitExec    = "/usr/local/bin/roster"
	maxExposure = "20" // systemd-analyze security --threshold: 2.0 ("OK") × 10
)

// unitCopy writes the unit with ExecStart pointing at a freshly built
// roster: systemd-analyze verify insists that the binary exists.
func unitCopy(t *testing.T) string {
	t.Helper()
	unit := string(readFile(t, filepath.Join(deployDir, unitPath)))
	if !strings.Contains(unit, "ExecStart="+unitExec+" serve --config /etc/roster/roster.yaml\n") {
		t.Fatalf("%s: ExecStart must be %s serve --config /etc/roster/roster.yaml", unitPath, unitExec)
	}
	unit = strings.ReplaceAll(unit, unitExec, roster(t))
	path := filepath.Join(t.TempDir(), "roster.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSystemdVerify(t *testing.T) {
	sa := need(t, "systemd-analyze", "Debian package systemd")
	unit := unitCopy(t)
	out := run(t, "", sa, "verify", "--man=no", unit)
	// verify exits 0 on some warnings (unknown keys, bad values): any
	// output about our unit is a failure.
	if strings.Contains(out, "roster.service") {
		t.Fatalf("systemd-analyze verify complained:\n%s", out)
	}
}

func TestSystemdSecurity(t *testing.T) {
	sa := need(t, "systemd-analyze", "Debian package systemd")
	unit := unitCopy(t)
	out, err := runErr("", sa, "security", "--offline=yes", "--threshold="+maxExposure, unit)
	m := regexp.MustCompile(`Overall exposure level for roster.service: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no exposure level in its output (%v):\n%s", err, out)
	}
	t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
	if err != nil {
		t.Fatalf("exposure %s is above 2.0 (%v):\n%s", m[1], err, out)
	}
}

// TestSystemdDirectives pins what the daemon relies on: sd_notify
// readiness and watchdog, SIGHUP reload, and the writable directories the
// example config uses.
func TestSystemdDirectives(t *testing.T) {
	unit := string(readFile(t, filepath.Join(deployDir, unitPath)))
	for _, want := range []string{
		"Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID",
		"Restart=on-failure", "StateDirectory=roster", "LogsDirectory=roster",
		"ConfigurationDirectory=roster", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes", "UMask=0077",
	} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("%s lacks %q", unitPath, strings.TrimSpace(want))
		}
	}
	if !regexp.MustCompile(`\nWatchdogSec=[1-9]`).MatchString(unit) {
		t.Errorf("%s lacks a WatchdogSec=", unitPath)
	}
}

// TestSystemdConfig parses deploy/systemd/roster.yaml with roster's own
// config package, its /var/lib/roster and /var/log/roster moved to a
// temporary folder (validation wants the CSV folder to exist).
func TestSystemdConfig(t *testing.T) {
	data := string(readFile(t, filepath.Join(deployDir, "systemd/roster.yaml")))
	tmp := t.TempDir()
	for _, d := range []string{"lib", "log", "etc"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data = strings.ReplaceAll(data, "/var/lib/roster", filepath.Join(tmp, "lib"))
	data = strings.ReplaceAll(data, "/var/log/roster", filepath.Join(tmp, "log"))
	cfg, err := config.Parse([]byte(data), filepath.Join(tmp, "etc", "roster.yaml"))
	if err != nil {
		t.Fatalf("deploy/systemd/roster.yaml: %v", err)
	}
	if cfg.Store.Driver != config.DriverSQLite || cfg.Store.DSN != filepath.Join(tmp, "lib", "roster.db") {
		t.Errorf("store = %s %s, want sqlite in /var/lib/roster", cfg.Store.Driver, cfg.Store.DSN)
	}
	if cfg.Log.Dir != filepath.Join(tmp, "log") {
		t.Errorf("log.dir = %s, want /var/log/roster", cfg.Log.Dir)
	}
}
