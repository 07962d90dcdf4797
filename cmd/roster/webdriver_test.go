package main

// A tiny W3C WebDriver client (https://www.w3.org/TR/webdriver2/) over
// net/http, enough for the admin page's browser test: chromedriver driving
// headless Chromium.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	chromiumBin     = "/usr/bin/chromium"
	chromedriverBin = "/usr/bin/chromedriver"
	// elementKey is the W3C web element identifier.
	elementKey = "element-6066-11e4-a52e-4f735466cecf"
)

// browser is one WebDriver session.
type browser struct {
	t       *testing.T
	base    string // chromedriver's URL
	session string
}

// startBrowser starts chromedriver on a free port and opens a session of
// headless Chromium with a fresh profile. Without Chromium or chromedriver
// the test is skipped, loudly, or fails under CI=true.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	for _, bin := range []string{chromiumBin, chromedriverBin} {
		if _, err := os.Stat(bin); err != nil {
			msg := fmt.Sprintf("SKIPPING the browser test: %s is missing (%v); install the Debian packages chromium and chromium-driver", bin, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + " (CI=true: the browser test must run)")
			}
			t.Skip(msg)
		}
	}
	port := webdriverPort(t)
	logFile := &syncBuffer{}
	cmd := exec.Command(chromedriverBin, "--port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait() //nolint:errcheck // killed
	})
	b := &browser{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		if err := b.call("GET", "/status", nil, &status); err == nil && status.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver is not ready after 30s; its output:\n%s", logFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromiumBin,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--window-size=1280,900", "--user-data-dir=" + t.TempDir()},
		},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("POST", "/session", caps, &created); err != nil {
		t.Fatalf("new WebDriver session: %v; chromedriver's output:\n%s", err, logFile)
	}
	b.session = created.SessionID
	t.Cleanup(func() { b.call("DELETE", "/session/"+b.session, nil, nil) }) //nolint:errcheck // best effort
	b.must(b.call("POST", b.path("/timeouts"), map[string]any{"implicit": 5000, "pageLoad": 60000}, nil))
	return b
}

func webdriverPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (b *browser) path(p string) string { return "/session/" + b.session + p }

func (b *browser) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

// call sends one WebDriver command and decodes its "value" into out.
func (b *browser) call(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(env.Value, &e) //nolint:errcheck // shown raw otherwise
		return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

// navigate loads a URL and waits for it.
func (b *browser) navigate(url string) {
	b.t.Helper()
	b.must(b.call("POST", b.path("/url"), map[string]string{"url": url}, nil))
}

// url is the current page's URL.
func (b *browser) url() string {
	b.t.Helper()
	var u string
	b.must(b.call("GET", b.path("/url"), nil, &u))
	return u
}

// element is a web element of the current page.
type element struct {
	b  *browser
	id string
	q  string
}

// find finds the first element that matches a CSS selector, waiting up to
// the implicit wait for it.
func (b *browser) find(css string) *element {
	b.t.Helper()
	var ref map[string]string
	if err := b.call("POST", b.path("/element"), map[string]string{"using": "css selector", "value": css}, &ref); err != nil {
		b.t.Fatalf("find %q on %s: %v\nthe page says:\n%s", css, b.url(), err, b.text("body"))
	}
	return &element{b: b, id: ref[elementKey], q: css}
}

// has reports whether an element matches a CSS selector now.
func (b *browser) has(css string) bool {
	b.t.Helper()
	var refs []map[string]string
	b.must(b.call("POST", b.path("/elements"), map[string]string{"using": "css selector", "value": css}, &refs))
	return len(refs) > 0
}

func (e *element) click() {
	e.b.t.Helper()
	if err := e.b.call("POST", e.b.path("/element/"+e.id+"/click"), map[string]any{}, nil); err != nil {
		e.b.t.Fatalf("click %q: %v", e.q, err)
	}
}

// sendKeys types text into the element; for a file input, text is the
// file's path.
func (e *element) sendKeys(text string) {
	e.b.t.Helper()
	if err := e.b.call("POST", e.b.path("/element/"+e.id+"/value"), map[string]string{"text": text}, nil); err != nil {
		e.b.t.Fatalf("type into %q: %v", e.q, err)
	}
}

// text is the rendered text of the first element matching css.
func (b *browser) text(css string) string {
	b.t.Helper()
	var ref map[string]string
	if err := b.call("POST", b.path("/element"), map[string]string{"using": "css selector", "value": css}, &ref); err != nil {
		return "(" + err.Error() + ")"
	}
	var s string
	if err := b.call("GET", b.path("/element/"+ref[elementKey]+"/text"), nil, &s); err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// resize sets the window's size.
func (b *browser) resize(width, height int) {
	b.t.Helper()
	b.must(b.call("POST", b.path("/window/rect"), map[string]int{"width": width, "height": height}, nil))
}

// screenshotPNG takes a PNG of the viewport.
func (b *browser) screenshotPNG() []byte {
	b.t.Helper()
	var s string
	b.must(b.call("GET", b.path("/screenshot"), nil, &s))
	png, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		b.t.Fatalf("screenshot: not a PNG")
	}
	return png
}

// steadyScript makes what differs from run to run read the same on the
// page shown (times, user ids), and takes the focus (a blinking caret)
// away, so that the same page gives the same pixels. Only the text the
// browser shows changes; the next navigation loads the real page again.
const steadyScript = `
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  n.nodeValue = n.nodeValue
    .replace(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/g, '2026-11-21 10:00:00 UTC')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '2f1c9a6e-8d4b-4f0a-9c3e-5b7d1e2a4c60');
}
if (document.activeElement) { document.activeElement.blur(); }
return null;`

// steadyScreenshot saves a PNG of the viewport with steadyScript applied,
// and only when its pixels differ from the file's: an unchanged page
// leaves the file (tracked in docs/img) as it was. It reports whether it
// wrote the file.
func (b *browser) steadyScreenshot(file string) bool {
	b.t.Helper()
	b.execute(steadyScript, nil)
	shot := b.screenshotPNG()
	if old, err := os.ReadFile(file); err == nil {
		same, err := samePixels(old, shot)
		if err != nil {
			b.t.Fatalf("%s: %v", file, err)
		}
		if same {
			return false
		}
	}
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return true
}

// samePixels reports whether two PNGs show the same image; their bytes
// may differ (encoders, metadata). A file that is not a PNG differs.
func samePixels(a, b []byte) (bool, error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return false, nil // not a PNG: replace it
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("the new screenshot: %w", err)
	}
	if ia.Bounds() != ib.Bounds() {
		return false, nil
	}
	r := ia.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			r1, g1, b1, a1 := ia.At(x, y).RGBA()
			r2, g2, b2, a2 := ib.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false, nil
			}
		}
	}
	return true, nil
}

// waitText reloads the page until the text of css contains want.
func (b *browser) waitText(css, want string, timeout time.Duration) string {
	b.t.Helper()
	return b.wait(css, want, timeout, true)
}

// waitShown polls the text of css on the page as it is, without loading
// it again, until it contains want: the page must change by itself (its
// own refresh), which waitText, reloading, would not show.
func (b *browser) waitShown(css, want string, timeout time.Duration) string {
	b.t.Helper()
	return b.wait(css, want, timeout, false)
}

func (b *browser) wait(css, want string, timeout time.Duration, reload bool) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.text(css)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			how := ""
			if !reload {
				how = " without a reload"
			}
			b.t.Fatalf("after %s%s, %q on %s is %q, want %q; the page says:\n%s", timeout, how, css, b.url(), got, want, b.text("body"))
		}
		time.Sleep(300 * time.Millisecond)
		if reload {
			b.navigate(b.url())
		}
	}
}

// waitURL waits until the browser is at a URL that contains want (a click
// returns before the navigation it starts has ended).
func (b *browser) waitURL(want string) string {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		u := b.url()
		if strings.Contains(u, want) {
			return u
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("after 30s the browser is at %s, not at %s; the page says:\n%s", u, want, b.text("body"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// execute runs a script in the test browser (not in the page under test's
// own code: the admin page has none) and decodes its result.
func (b *browser) execute(script string, out any) {
	b.t.Helper()
	b.must(b.call("POST", b.path("/execute/sync"), map[string]any{"script": script, "args": []any{}}, out))
}

// viewport sets the size of the page's viewport (the window is larger by
// the browser's own frame).
func (b *browser) viewport(width, height int) {
	b.t.Helper()
	for range 3 {
		var got []int
		b.execute("return [window.innerWidth, window.innerHeight];", &got)
		if len(got) != 2 {
			b.t.Fatalf("the viewport's size is %v", got)
		}
		if got[0] == width && got[1] == height {
			return
		}
		var rect struct{ Width, Height int }
		b.must(b.call("GET", b.path("/window/rect"), nil, &rect))
		b.resize(rect.Width+width-got[0], rect.Height+height-got[1])
	}
}
