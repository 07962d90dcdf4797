package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/admin"
	"github.com/rosterd/roster/daemon/adminui"
	"github.com/rosterd/roster/daemon/pushapi"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/scim/scimerr"
	"github.com/rosterd/roster/sources/push"
)

// Server timeouts. The header timeout stops clients that send their
// headers slowly; bodies follow the rule of body.go (bodyGrace, then a
// minimum rate), which readTimeout only backs up for routes mounted
// without Handle. An admin request may run a sync, so the write timeout
// is generous.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = readHeaderTimeout + bodyGrace
	writeTimeout      = 10 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	readyTimeout      = 5 * time.Second
)

// Handle mounts h on the main listener, for the SCIM and admin handlers.
// Request bodies are bounded by limits.request_body (read when the request
// arrives, so a reload applies at once): reading past it fails with an
// *http.MaxBytesError, which the handler answers with 413 in its own error
// format. They are bounded in time too (see bodyGrace): reading a body
// that comes too slowly fails with errBodyTooSlow. It may be called
// before or while Run runs.
func (d *Daemon) Handle(pattern string, h http.Handler) {
	d.mux.Handle(pattern, d.limit(h, func(c *config.Config) config.ByteSize { return c.Limits.RequestBody }))
}

// HandleUpload is Handle for push payloads and CSV uploads: their bodies
// are bounded by limits.push_body instead.
func (d *Daemon) HandleUpload(pattern string, h http.Handler) {
	d.mux.Handle(pattern, d.limit(h, func(c *config.Config) config.ByteSize { return c.Limits.PushBody }))
}

func (d *Daemon) limit(h http.Handler, size func(*config.Config) config.ByteSize) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !d.up.Load() && !alwaysServed(r.URL.Path) {
			d.notUp(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			w = bound(w, r, int64(size(d.Config())))
		}
		h.ServeHTTP(w, r)
	})
}

var _ admin.Queue = (*Daemon)(nil)

// alwaysServed reports whether a path answers before the database does:
// liveness, readiness and metrics.
func alwaysServed(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// storeRetryAfter is the Retry-After, in seconds, of the answers given
// while roster waits for the database at start.
const storeRetryAfter = 5

// notUp answers a request that arrived before the database answered and
// the migrations ran: 503 with Retry-After, in the error format of the
// route (SCIM, NocoBase push, admin API and page), saying nothing of the
// database's address (the log has the details).
func (d *Daemon) notUp(w http.ResponseWriter, r *http.Request) {
	const msg = "roster is starting and waits for its database; try again later"
	w.Header().Set("Retry-After", strconv.Itoa(storeRetryAfter))
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case strings.HasPrefix(r.URL.Path, "/scim/"):
		scimerr.Write(w, &scimerr.Error{Status: http.StatusServiceUnavailable, Detail: msg})
	case r.URL.Path == "/api/userData:push":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"code": http.StatusServiceUnavailable, "message": msg}) //nolint:errcheck // the client went away
	case strings.HasPrefix(r.URL.Path, "/api/"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"error": msg}) //nolint:errcheck // the client went away
	default:
		http.Error(w, msg, http.StatusServiceUnavailable)
	}
}

// routes mounts health, readiness, metrics and the admin API.
func (d *Daemon) routes() {
	d.mux = http.NewServeMux()
	d.Handle("GET /healthz", http.HandlerFunc(d.healthz))
	d.Handle("GET /readyz", http.HandlerFunc(d.readyz))
	api := admin.New(admin.Options{Store: d.store, Config: d.Config, Queue: d, Log: d.log,
		Finished: func(t *store.Task) { d.finished(t, d.Config()) }})
	d.Handle("/api/v1/", api)
	d.HandleUpload("PUT /api/v1/sources/{name}/file", api)
	pushes := pushapi.New(pushapi.Options{
		Config: d.Config,
		Accept: func(ctx context.Context, source string, p *push.Payload) (*store.Task, error) {
			r, _ := d.currentRunner()
			return r.AcceptPush(ctx, source, p)
		},
		Applied: func(source string) {
			if err := d.Trigger(source, tasks.TriggerPush); err != nil {
				// Stored all the same: the next poll or start applies it.
				d.log.Warn("push stored but not started", "source", source, "err", err)
			}
		},
		Task: d.store.GetTask,
		Observe: func(source string, code int) {
			d.metrics.pushRequests.WithLabelValues(source, strconv.Itoa(code)).Inc()
		},
		Log: d.log,
	})
	d.HandleUpload("POST /api/v1/sources/{name}/push", pushes)
	d.HandleUpload("POST /api/userData:push", pushes)
	ui := adminui.New(adminui.Options{Store: d.store, Config: d.Config, Queue: d, Log: d.log,
		Finished: func(t *store.Task) { d.finished(t, d.Config()) }})
	d.Handle("/admin", ui)
	d.Handle("/admin/", ui)
	d.HandleUpload("POST /admin/sources/{name}/file", ui)
	metrics := promhttp.HandlerFor(d.gatherer, promhttp.HandlerOpts{
		// A failing collector (the database down) must not hide the rest.
		ErrorHandling:     promhttp.ContinueOnError,
		ErrorLog:          promLogger{d.log},
		Timeout:           30 * time.Second,
		EnableOpenMetrics: true,
	})
	if d.cfg.MetricsListen == "" {
		d.Handle("GET /metrics", metrics)
		return
	}
	d.metricsMux = http.NewServeMux()
	d.metricsMux.Handle("GET /metrics", metrics)
	d.metricsMux.HandleFunc("GET /healthz", d.healthz)
}

// healthz answers 200 while the process runs.
func (d *Daemon) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 when the database answers and has the schema this
// build needs, and roster is not starting or stopping; 503 with a generic
// reason otherwise. Anyone who reaches the port may ask, so the answer
// names no driver, host, user or database: the details go to the log.
func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	status, body := http.StatusOK, map[string]any{"status": "ready"}
	if reason := d.notReady(ctx); reason != "" {
		status, body = http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": reason}
	} else {
		body["schema_version"] = store.Latest()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client went away
}

// The reasons /readyz gives.
const (
	reasonStopping    = "roster is starting or stopping"
	reasonUnreachable = "database unreachable"
	reasonMigrations  = "migrations pending"
)

func (d *Daemon) notReady(ctx context.Context) string {
	if !d.serving.Load() {
		return reasonStopping
	}
	if !d.up.Load() {
		// waitForStore logs why, once per attempt.
		if r := d.waiting.Load(); r != nil {
			return *r
		}
		return reasonStopping
	}
	if err := d.store.Ping(ctx); err != nil {
		d.logNotReady(fmt.Sprintf("the %s database does not answer: %v", d.store.Driver(), err))
		return reasonUnreachable
	}
	v, err := d.store.SchemaVersion(ctx)
	if err != nil {
		d.logNotReady(fmt.Sprintf("the schema version of the %s database cannot be read: %v", d.store.Driver(), err))
		return reasonUnreachable
	}
	if v != store.Latest() {
		d.logNotReady(fmt.Sprintf("the database is at schema version %d, this roster needs %d: run roster migrate", v, store.Latest()))
		return reasonMigrations
	}
	if last := d.notReadyLogged.Swap(nil); last != nil {
		d.log.Info("ready again", "after", *last)
	}
	return ""
}

// logNotReady logs why /readyz says not ready, once per distinct problem.
func (d *Daemon) logNotReady(problem string) {
	if last := d.notReadyLogged.Swap(&problem); last == nil || *last != problem {
		d.log.Warn("not ready", "reason", problem)
	}
}

// server is one listener and its http.Server.
type server struct {
	*http.Server
	name string
	ln   net.Listener
	tls  bool
}

func (s *server) serve() error {
	var err error
	if s.tls {
		err = s.ServeTLS(s.ln, "", "")
	} else {
		err = s.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s listener on %s: %w", s.name, s.ln.Addr(), err)
}

// listen binds the main listener and, when configured, the metrics
// listener. Both speak TLS when tls is configured.
func (d *Daemon) listen(cfg *config.Config) ([]*server, error) {
	var tlsConfig *tls.Config
	if cfg.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load the TLS certificate (tls.cert_file %s, tls.key_file %s): %w", cfg.TLS.CertFile, cfg.TLS.KeyFile, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	type spec struct {
		name, addr, key string
		h               http.Handler
	}
	specs := []spec{{"main", cfg.Listen, "listen", d.mux}}
	if d.metricsMux != nil {
		specs = append(specs, spec{"metrics", cfg.MetricsListen, "metrics_listen", d.metricsMux})
	}
	var servers []*server
	for _, sp := range specs {
		ln, err := net.Listen("tcp", sp.addr)
		if err != nil {
			for _, s := range servers {
				s.ln.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", sp.key, sp.addr, err)
		}
		s := &server{name: sp.name, ln: ln, tls: tlsConfig != nil, Server: &http.Server{
			Handler:           sp.h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			TLSConfig:         tlsConfig.Clone(), // net/http adds HTTP/2 to it: one each
			ErrorLog:          log.New(serverLog{d.log}, "", 0),
		}}
		servers = append(servers, s)
		d.log.Info("listening", "listener", sp.name, "addr", ln.Addr().String(), "tls", s.tls)
	}
	d.mu.Lock()
	for _, s := range servers {
		d.addrs = append(d.addrs, s.ln.Addr())
	}
	d.mu.Unlock()
	return servers, nil
}

// serverLog sends net/http's messages to slog: handler panics and the
// like as warnings, failed TLS handshakes (port scanners, load balancer
// probes) at debug level.
type serverLog struct{ log *slog.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg)
	return len(p), nil
}

// promLogger sends promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }
