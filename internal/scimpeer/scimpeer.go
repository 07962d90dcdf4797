// Package scimpeer starts an independent SCIM 2.0 service for tests: the
// npm packages scimmy and scimmy-routers behind express, with the small
// glue in testdata/server.js (an in-memory store kept across restarts).
// roster's sinks are tested against it as against any application's SCIM
// API. Its packages are installed by .ci/run (npm ci in testdata); without
// them the tests that need it skip loudly, or fail under CI=true.
package scimpeer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Peer is one running service.
type Peer struct {
	// URL is the service's SCIM base, the folder of /Users and /Groups.
	URL   string
	Token string

	t     testing.TB
	root  string
	port  int
	data  string
	bulk  int
	cmd   *exec.Cmd
	done  chan struct{}
	out   *bytes.Buffer
	httpc *http.Client
}

// Options shape the service.
type Options struct {
	Token string
	// Bulk advertises /Bulk with this maxOperations; 0 does not.
	Bulk int
}

// Dir is the folder of the glue and its node_modules.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// Start starts a service on a free port of 127.0.0.1, its data in a temp
// dir of t; it stops with t.
func Start(t testing.TB, o Options) *Peer {
	t.Helper()
	root := Dir()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(root, "node_modules", "scimmy-routers")); err != nil {
		why = "its npm packages are not installed (run: npm ci --prefix " + root + ", as .ci/run does)"
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the scimmy SCIM service cannot start under CI=true: %s", why)
		}
		t.Skipf("SKIPPING the tests against the scimmy SCIM service: %s", why)
	}
	p := &Peer{Token: o.Token, t: t, root: root, data: filepath.Join(t.TempDir(), "peer.json"), bulk: o.Bulk,
		httpc: &http.Client{Timeout: 2 * time.Minute}}
	p.start()
	t.Cleanup(func() {
		if p.cmd != nil {
			p.Stop()
		}
	})
	return p
}

func (p *Peer) start() {
	p.t.Helper()
	cmd := exec.Command("node", filepath.Join(p.root, "server.js"), "--port", strconv.Itoa(p.port),
		"--data", p.data, "--bulk", strconv.Itoa(p.bulk))
	// The token goes by the environment, not the command line.
	cmd.Env = append(os.Environ(), "SCIMPEER_TOKEN="+p.Token)
	cmd.Dir = p.root
	// A test binary killed by its timeout does not run its cleanups: the
	// service goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	p.out = &bytes.Buffer{}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start the scimmy service: %v", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				n, _ := strconv.Atoi(port)
				ready <- n
			}
		}
	}()
	go func() { cmd.Wait(); close(p.done) }()
	select {
	case port := <-ready:
		p.port = port
	case <-p.done:
		p.t.Fatalf("the scimmy service stopped at start: %s", p.out)
	case <-time.After(30 * time.Second):
		p.t.Fatalf("the scimmy service did not start in 30s: %s", p.out)
	}
	p.URL = fmt.Sprintf("http://127.0.0.1:%d/scim/v2", p.port)
}

// Stop stops the service; it saves its data on the way out.
func (p *Peer) Stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("the scimmy service did not stop on SIGTERM: %s", p.out)
	}
	p.cmd = nil
}

// Restart stops the service and starts it again on the same port with the
// data it held.
func (p *Peer) Restart() {
	p.t.Helper()
	p.Stop()
	p.start()
}

// Fail makes the service answer every SCIM request with status (0 stops).
func (p *Peer) Fail(status int) {
	p.t.Helper()
	if code := p.call("POST", strings.TrimSuffix(p.URL, "/scim/v2")+"/_peer/fail", map[string]int{"status": status}, nil); code != 200 {
		p.t.Fatalf("make the service fail: %d", code)
	}
}

// Stats counts the requests served, by "METHOD /path" (ids as {id}).
func (p *Peer) Stats() map[string]int {
	p.t.Helper()
	out := map[string]int{}
	if code := p.call("GET", strings.TrimSuffix(p.URL, "/scim/v2")+"/_peer/stats", nil, &out); code != 200 {
		p.t.Fatalf("read the service's stats: %d", code)
	}
	return out
}

// Do sends one SCIM request (path below URL) and decodes the answer into
// out when it is not nil; it returns the status.
func (p *Peer) Do(method, path string, body, out any) int {
	p.t.Helper()
	return p.call(method, p.URL+path, body, out)
}

func (p *Peer) call(method, url string, body, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	res, err := p.httpc.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, strings.TrimPrefix(url, p.URL), err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, strings.TrimPrefix(url, p.URL), err, data)
		}
	}
	return res.StatusCode
}

// List returns every resource of the service at path (/Users or /Groups),
// page by page.
func (p *Peer) List(path string) []map[string]any {
	p.t.Helper()
	var all []map[string]any
	for start := 1; ; {
		var page struct {
			TotalResults int              `json:"totalResults"`
			Resources    []map[string]any `json:"Resources"`
		}
		if code := p.Do("GET", fmt.Sprintf("%s?startIndex=%d&count=200", path, start), nil, &page); code != 200 {
			p.t.Fatalf("list %s: %d", path, code)
		}
		all = append(all, page.Resources...)
		start += len(page.Resources)
		if len(page.Resources) == 0 || start > page.TotalResults {
			return all
		}
	}
}
