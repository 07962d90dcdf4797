package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

func TestReload(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st *store.Store) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "staff.csv"), people(2))
		writeFile(t, filepath.Join(dir, "hr.csv"), "h1,Hanna,Rot,hanna,,,\n")
		cfg := loadConfig(t, dir, staffConfig("watch: false"))
		level := new(slog.LevelVar)
		h := startConfig(t, st, cfg, func(d *Daemon) { d.LogLevel = level })
		eventually(t, 30*time.Second, "no first sync", func() bool { return len(h.finished("staff")) == 1 })
		metric := func(want string) {
			t.Helper()
			if _, body := h.get("/metrics"); !strings.Contains(body, want+"\n") {
				t.Fatalf("/metrics lacks %s", want)
			}
		}

		// An invalid configuration is refused; the running one stays.
		writeFile(t, filepath.Join(dir, "roster.yaml"), "sources:\n  - name: staff\n    type: csv\n    schedule: every day\n")
		err := h.d.Reload(t.Context(), func() (*config.Config, error) { return config.Load(filepath.Join(dir, "roster.yaml")) })
		if err == nil || !strings.Contains(err.Error(), "schedule") {
			t.Fatalf("Reload of an invalid file = %v, want the validation problem", err)
		}
		if h.d.Config() != cfg {
			t.Fatal("a refused reload replaced the configuration")
		}
		metric("roster_config_last_reload_successful 0")
		if err := h.d.Trigger("staff", tasks.TriggerManual); err != nil {
			t.Fatalf("the running configuration no longer works: %v", err)
		}

		// A valid one adds a scheduled source, drops staff, changes the
		// log level, and keeps the listener (whose change needs a restart).
		next := loadConfig(t, dir, "listen: 127.0.0.1:1\nlog:\n  dir: log\n  level: debug\n"+
			"sources:\n  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n    schedule: \"@every 1s\"\n")
		if err := h.d.Reload(t.Context(), func() (*config.Config, error) { return next, nil }); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		metric("roster_config_last_reload_successful 1")
		if got := h.d.Config(); got.Listen != cfg.Listen || len(got.Sources) != 1 || got.Sources[0].Name != "hr" {
			t.Fatalf("after the reload: listen %s, sources %+v", got.Listen, got.Sources)
		}
		if level.Level() != slog.LevelDebug {
			t.Fatalf("log level after the reload = %s, want debug", level.Level())
		}
		if code, _ := h.get("/healthz"); code != 200 {
			t.Fatalf("the listener did not survive the reload: %d", code)
		}
		// hr never synced: it syncs at once, then on its schedule.
		eventually(t, 20*time.Second, "the new source was not synced on its schedule", func() bool { return len(h.finished("hr")) >= 2 })
		if first := h.finished("hr")[0]; first.Status != store.StatusSucceeded {
			t.Fatalf("hr's first task is %s", first.Status)
		}
		if err := h.d.Trigger("staff", tasks.TriggerManual); !errors.Is(err, tasks.ErrUsage) {
			t.Fatalf("Trigger of a removed source = %v, want a usage error", err)
		}

		// Custom attributes are fixed for the process: a reload that
		// declares them is refused, saying why.
		custom := loadConfig(t, dir, "attributes:\n  custom:\n    - {name: floor, type: integer}\n"+
			"sources:\n  - name: hr\n    type: csv\n    path: hr.csv\n    watch: false\n")
		running := h.d.Config()
		err = h.d.Reload(t.Context(), func() (*config.Config, error) { return custom, nil })
		if err == nil || !strings.Contains(err.Error(), "restart roster") {
			t.Fatalf("Reload that changes the custom attributes = %v, want it refused", err)
		}
		if h.d.Config() != running {
			t.Fatal("a refused reload replaced the configuration")
		}
	})
}

func TestTLSAndASeparateMetricsListener(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	dir := t.TempDir()
	writeSelfSigned(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	writeFile(t, filepath.Join(dir, "staff.csv"), people(1))
	cfg := loadConfig(t, dir, "tls:\n  cert_file: cert.pem\n  key_file: key.pem\n"+staffConfig("watch: false"))
	cfg.MetricsListen = "127.0.0.1:0"
	h := startConfig(t, st, cfg)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if !strings.HasPrefix(h.base, "https://") {
		t.Fatalf("base URL %s", h.base)
	}
	if code, body := get(t, client, h.base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz over TLS = %d %q", code, body)
	}
	if code, _ := get(t, client, h.base+"/metrics"); code != 404 {
		t.Fatalf("/metrics on the main listener = %d, want 404 when metrics_listen is set", code)
	}
	code, body := get(t, client, "https://"+h.d.MetricsAddr().String()+"/metrics")
	if code != 200 || !strings.Contains(body, "roster_build_info{") || !strings.Contains(body, "roster_directory_users{") {
		t.Fatalf("/metrics on the metrics listener = %d\n%s", code, body)
	}
	// Plain HTTP is not spoken.
	resp, err := http.Get("http://" + h.d.Addr().String() + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the TLS listener answered plain HTTP")
		}
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "roster test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
}
