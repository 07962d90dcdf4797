package deploycheck

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/rosterd/roster/config"
)

// serveRefuses runs the built roster serve on a config and wants it to
// refuse to start with a configuration error (exit 2) whose message names
// every entry in want.
func serveRefuses(t *testing.T, name, cfgPath string, env []string, want ...string) {
	t.Helper()
	cmd := exec.Command(roster(t), "serve", "--config", cfgPath)
	cmd.Dir = filepath.Dir(cfgPath)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("%s: roster serve did not refuse to start with exit code 2 (%v):\n%s", name, err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("%s: roster serve's refusal does not say %q:\n%s", name, w, out)
		}
	}
}

// TestExampleConfigsShipNoUsableToken: the deployment examples hold
// placeholder token hashes that roster serve refuses, naming each entry,
// and the demo token is accepted on loopback only.
func TestExampleConfigsShipNoUsableToken(t *testing.T) {
	tmp := t.TempDir()
	for _, d := range []string{"lib", "log", "etc"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sys := string(readFile(t, filepath.Join(deployDir, "systemd/roster.yaml")))
	sys = strings.ReplaceAll(sys, "/var/lib/roster", filepath.Join(tmp, "lib"))
	sys = strings.ReplaceAll(sys, "/var/log/roster", filepath.Join(tmp, "log"))
	sysPath := filepath.Join(tmp, "etc", "roster.yaml")
	if err := os.WriteFile(sysPath, []byte(sys), 0o600); err != nil {
		t.Fatal(err)
	}
	serveRefuses(t, "deploy/systemd/roster.yaml", sysPath, nil,
		`tokens[0].hash: token "okta" has the hash of "foo"`, `tokens[1].hash: token "ops" has the hash of "bar"`, "roster token --generate")

	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(deployDir, "kubernetes/configmap.yaml")), &cm); err != nil {
		t.Fatal(err)
	}
	k8sPath := filepath.Join(tmp, "k8s.yaml")
	if err := os.WriteFile(k8sPath, []byte(cm.Data["roster.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	serveRefuses(t, "deploy/kubernetes/configmap.yaml", k8sPath, []string{"ROSTER_DSN=" + docsSecret(t).value},
		`tokens[0].hash: token "entra"`, `tokens[1].hash: token "hr-push"`, `tokens[2].hash: token "ops"`)

	// The demo (make demo, the README's quick start) listens on loopback
	// with its documented demo token; the same config listening beyond
	// loopback is refused.
	demo := string(readFile(t, filepath.Join(deployDir, "examples/roster.yaml")))
	cfg, err := config.Parse([]byte(demo), filepath.Join(deployDir, "examples/roster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := config.CheckPublishedTokens(cfg); err != nil {
		t.Fatalf("the demo config is refused: %v", err)
	}
	if !strings.Contains(demo, config.DemoToken) {
		t.Errorf("deploy/examples/roster.yaml does not name its demo token %q", config.DemoToken)
	}
	open := strings.Replace(demo, "listen: 127.0.0.1:8080", "listen: 0.0.0.0:0", 1)
	openPath := filepath.Join(tmp, "demo-open.yaml")
	if err := os.WriteFile(openPath, []byte(open), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "staff.csv"), readFile(t, filepath.Join(deployDir, "examples/staff.csv")), 0o600); err != nil {
		t.Fatal(err)
	}
	serveRefuses(t, "the demo config on 0.0.0.0", openPath, nil, `token "demo" is the demo token "roster-demo-token"`)
}

// TestExampleListenersAreLoopback: the systemd example serves in clear
// text, so it listens on loopback only; docs/operations.md scrapes its
// metrics where it serves them.
func TestExampleListenersAreLoopback(t *testing.T) {
	tmp := t.TempDir()
	data := string(readFile(t, filepath.Join(deployDir, "systemd/roster.yaml")))
	data = strings.ReplaceAll(data, "/var/lib/roster", tmp)
	data = strings.ReplaceAll(data, "/var/log/roster", tmp)
	cfg, err := config.Parse([]byte(data), filepath.Join(tmp, "roster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.TLS.Enabled() {
		for key, addr := range map[string]string{"listen": cfg.Listen, "metrics_listen": cfg.MetricsListen} {
			if !config.IsLoopback(addr) {
				t.Errorf("deploy/systemd/roster.yaml: %s %s is not loopback, and no TLS is configured", key, addr)
			}
		}
	}
	docs := string(readFile(t, filepath.Join(repoDir, "docs/operations.md")))
	m := regexp.MustCompile(`targets: \["([^"]+)"\]`).FindStringSubmatch(docs)
	if m == nil || m[1] != cfg.MetricsListen {
		t.Errorf("docs/operations.md scrapes %v; the systemd example serves metrics on %s", m, cfg.MetricsListen)
	}
}

// TestDockerignore: the image's build context leaves out the repository's
// history, the binary and what the demo and tests write, and keeps what
// the Dockerfile copies.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(repoDir, ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore: docker build would send .git, the binary and the demo database: %v", err)
	}
	defer f.Close()
	var patterns []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	ignored := func(path string) bool {
		for _, p := range patterns {
			p = strings.TrimPrefix(p, "/")
			if ok, _ := filepath.Match(p, path); ok {
				return true
			}
			if ok, _ := filepath.Match(strings.TrimPrefix(p, "**/"), filepath.Base(path)); ok && strings.HasPrefix(p, "**/") {
				return true
			}
			if strings.HasPrefix(path, p+"/") {
				return true
			}
		}
		return false
	}
	for _, p := range []string{".git", "roster", "roster.db", "deploy/examples/roster.db", "deploy/examples/roster.db-wal",
		"deploy/examples/roster.db.locks", "deploy/examples/log", "log"} {
		if !ignored(p) {
			t.Errorf(".dockerignore does not leave out %s", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/roster/main.go", "deploy/container/roster.yaml", "deploy/examples/roster.yaml"} {
		if ignored(p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
	if slices.Contains(patterns, "*") {
		t.Error(".dockerignore ignores everything")
	}
}
