package deploycheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func promtool(t *testing.T) string {
	return need(t, "promtool", "Debian package prometheus: apt-get install -y prometheus")
}

// metricRef finds the metric names an expression uses: every roster_,
// go_ and process_ identifier, and up, outside quoted strings.
var (
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	metricRef = regexp.MustCompile(`\b(roster_[a-zA-Z0-9_:]+|go_[a-zA-Z0-9_:]+|process_[a-zA-Z0-9_:]+|up)\b`)
	gVar      = regexp.MustCompile(`\$\{?(\w+)\}?`)
	labelVals = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$`)
)

func metricsOf(expr string) []string {
	return metricRef.FindAllString(quoted.ReplaceAllString(expr, `""`), -1)
}

// checkMetrics fails for every metric an expression uses that roster does
// not export.
func checkMetrics(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	for _, m := range metricsOf(expr) {
		if !exported[m] {
			t.Errorf("%s: %s is not a metric roster exports: %s", where, m, expr)
		}
	}
}

// promtoolCheck writes exprs as recording rules and runs promtool check
// rules on them: each must parse as PromQL.
func promtoolCheck(t *testing.T, exprs map[string]string) {
	t.Helper()
	pt := promtool(t)
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for where, e := range exprs {
		rules = append(rules, rule{Record: "deploycheck:" + regexp.MustCompile(`\W+`).ReplaceAllString(where, "_"), Expr: e})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "", pt, "check", "rules", path)
}

// grafanaExpr turns a dashboard query into PromQL: Grafana's variables
// become a value of their kind.
func grafanaExpr(e string) string {
	return gVar.ReplaceAllStringFunc(e, func(v string) string {
		switch gVar.FindStringSubmatch(v)[1] {
		case "__rate_interval", "__interval", "__range":
			return "5m"
		case "__range_s", "__interval_ms":
			return "300"
		}
		return "x"
	})
}

func TestGrafanaDashboard(t *testing.T) {
	var dash map[string]any
	data := readFile(t, filepath.Join(deployDir, "grafana/roster.json"))
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana/roster.json: %v", err)
	}
	if v, _ := dash["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v, want a current one (39)", dash["schemaVersion"])
	}
	exprs := map[string]string{}
	vars := map[string]bool{}
	// Template variables: label_values(METRIC, label) or a PromQL query.
	templ, _ := dash["templating"].(map[string]any)
	list, _ := templ["list"].([]any)
	for _, v := range list {
		v := v.(map[string]any)
		name, _ := v["name"].(string)
		vars[name] = true
		if v["type"] != "query" {
			continue
		}
		q, _ := v["query"].(string)
		if m, ok := v["query"].(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		where := "variable " + name
		if m := labelVals.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		exprs[where] = grafanaExpr(q)
	}
	for _, want := range []string{"datasource", "source", "sink"} {
		if !vars[want] {
			t.Errorf("the dashboard has no %q variable", want)
		}
	}
	// Every target of every panel, rows' nested panels included.
	var walk func(panels []any)
	walk = func(panels []any) {
		for _, p := range panels {
			p := p.(map[string]any)
			if ds, ok := p["datasource"].(map[string]any); ok && ds["uid"] != "${datasource}" {
				t.Errorf("panel %q: datasource %v, want ${datasource}", p["title"], ds)
			}
			targets, _ := p["targets"].([]any)
			for i, tg := range targets {
				e, _ := tg.(map[string]any)["expr"].(string)
				if e == "" {
					t.Errorf("panel %q target %d has no expr", p["title"], i)
					continue
				}
				exprs[fmt.Sprintf("panel %v %q target %d", p["id"], p["title"], i)] = grafanaExpr(e)
			}
			for _, g := range gVar.FindAllStringSubmatch(fmt.Sprint(targets), -1) {
				if !vars[g[1]] && !strings.HasPrefix(g[1], "__") {
					t.Errorf("panel %q uses the undefined variable $%s", p["title"], g[1])
				}
			}
			if sub, ok := p["panels"].([]any); ok {
				walk(sub)
			}
		}
	}
	panels, _ := dash["panels"].([]any)
	walk(panels)
	if len(exprs) < 10 {
		t.Fatalf("only %d queries found in the dashboard", len(exprs))
	}
	// Every sink series has a panel (SPEC §12: lag, queue, delivered,
	// failed, quarantine).
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricsOf(e) {
			used[m] = true
		}
	}
	for _, want := range []string{"roster_sink_lag_seconds", "roster_sink_queue", "roster_sink_delivered_total",
		"roster_sink_failed_total", "roster_sink_quarantined"} {
		if !used[want] {
			t.Errorf("no panel of the dashboard shows %s", want)
		}
	}
	exported := exportedMetrics(t)
	for where, e := range exprs {
		if len(metricsOf(e)) == 0 {
			t.Errorf("%s uses no roster metric: %s", where, e)
		}
		checkMetrics(t, where, e, exported)
	}
	promtoolCheck(t, exprs)
}

func TestPrometheusRules(t *testing.T) {
	pt := promtool(t)
	dir := filepath.Join(deployDir, "prometheus")
	run(t, dir, pt, "check", "rules", "roster-rules.yml")
	run(t, dir, pt, "test", "rules", "roster-rules.test.yml")

	var file struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Record      string            `json:"record"`
				Expr        string            `json:"expr"`
				For         string            `json:"for"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "roster-rules.yml")), &file); err != nil {
		t.Fatalf("roster-rules.yml: %v", err)
	}
	tests := string(readFile(t, filepath.Join(dir, "roster-rules.test.yml")))
	ops := string(readFile(t, filepath.Join(repoDir, "docs/operations.md")))
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(ops, -1) {
		anchors[githubAnchor(m[1])] = true
	}
	exported := exportedMetrics(t)
	seen := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			seen[r.Alert] = true
			checkMetrics(t, "alert "+r.Alert, r.Expr, exported)
			url := r.Annotations["runbook_url"]
			const prefix = "https://github.com/rosterd/roster/blob/main/docs/operations.md#"
			if !strings.HasPrefix(url, prefix) {
				t.Errorf("alert %s: runbook_url %q does not point into docs/operations.md", r.Alert, url)
			} else if a := strings.TrimPrefix(url, prefix); !anchors[a] {
				t.Errorf("alert %s: docs/operations.md has no heading with the anchor #%s", r.Alert, a)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a severity label and a summary", r.Alert)
			}
			// Fired and not fired in the unit tests.
			n := strings.Count(tests, "alertname: "+r.Alert+"\n")
			if n < 2 || !strings.Contains(tests, "alertname: "+r.Alert+"\n        exp_alerts: []") {
				t.Errorf("alert %s: roster-rules.test.yml must test it firing and not firing", r.Alert)
			}
		}
	}
	for _, want := range []string{"RosterDown", "RosterSyncFailing", "RosterSyncStale", "RosterTaskHeld", "RosterSCIMErrors", "RosterConfigReloadFailed",
		"RosterSinkLagging", "RosterSinkQuarantined"} {
		if !seen[want] {
			t.Errorf("roster-rules.yml has no alert %s", want)
		}
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}
