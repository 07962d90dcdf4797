package deploycheck

import (
	"os"
	"os/exec"
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

// installedRoot lays out a root directory as the install steps of the
// unit (and docs/operations.md) leave a host: the unit, unchanged, at
// /etc/systemd/system/roster.service and a freshly built roster at its
// ExecStart path /usr/local/bin/roster, beside this host's own systemd
// units and kill(1), which the unit's ExecReload runs. systemd-analyze
// then checks the unit with --root as an operator's systemd would load it
// (it insists that ExecStart's binary exists there), rather than a copy
// whose ExecStart was rewritten to point at a build folder.
func installedRoot(t *testing.T) string {
	t.Helper()
	unit := readFile(t, filepath.Join(deployDir, unitPath))
	if !strings.Contains(string(unit), "ExecStart="+unitExec+" serve --config /etc/roster/roster.yaml\n") {
		t.Fatalf("%s: ExecStart must be %s serve --config /etc/roster/roster.yaml", unitPath, unitExec)
	}
	root := t.TempDir()
	install := func(dst string, data []byte, mode os.FileMode) {
		t.Helper()
		path := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	install("etc/systemd/system/roster.service", unit, 0o644)
	install(strings.TrimPrefix(unitExec, "/"), readFile(t, roster(t)), 0o755)
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatalf("kill(1), which ExecReload runs, is not on this host: %v", err)
	}
	install("bin/kill", readFile(t, kill), 0o755)
	// The host's own units: the targets the unit orders itself against.
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		units, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, u := range units {
			if fi, err := os.Stat(u); err == nil && fi.Mode().IsRegular() {
				install(filepath.Join(strings.TrimPrefix(dir, "/"), filepath.Base(u)), readFile(t, u), 0o644)
			}
		}
	}
	return root
}

// TestSystemdVerify runs `systemd-analyze verify` on the unit as
// installed (see installedRoot); the same command checks a real install:
// systemd-analyze verify /etc/systemd/system/roster.service.
func TestSystemdVerify(t *testing.T) {
	sa := need(t, "systemd-analyze", "Debian package systemd")
	root := installedRoot(t)
	out := run(t, "", sa, "verify", "--man=no", "--root="+root, "roster.service")
	// verify exits 0 on some warnings (unknown keys, bad values): any
	// output about our unit is a failure.
	if strings.Contains(out, "roster.service") {
		t.Fatalf("systemd-analyze verify complained:\n%s", out)
	}
}

func TestSystemdSecurity(t *testing.T) {
	sa := need(t, "systemd-analyze", "Debian package systemd")
	root := installedRoot(t)
	out, err := runErr("", sa, "security", "--offline=yes", "--root="+root, "--threshold="+maxExposure, "roster.service")
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
