package daemon

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/rosterd/roster/config"
)

// TestHostileServerTimeouts: every listener bounds slow clients. The
// header timeout (slow-loris) is observed over a socket by the
// end-to-end suite (cmd/roster TestHostile); a client that stalls in its
// body is cut off by ReadTimeout, too long to wait for in a test, so the
// values are asserted here.
func TestHostileServerTimeouts(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler), mux: http.NewServeMux(), metricsMux: http.NewServeMux()}
	cfg := &config.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
	servers, err := d.listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 {
		t.Fatalf("%d listeners, want 2", len(servers))
	}
	for _, s := range servers {
		s.ln.Close()
		switch {
		case s.ReadHeaderTimeout <= 0 || s.ReadHeaderTimeout > 30*time.Second:
			t.Errorf("%s: ReadHeaderTimeout %s", s.name, s.ReadHeaderTimeout)
		case s.ReadTimeout <= 0 || s.ReadTimeout > 10*time.Minute:
			t.Errorf("%s: ReadTimeout %s: a stalled body must be cut off", s.name, s.ReadTimeout)
		case s.WriteTimeout <= 0 || s.WriteTimeout < s.ReadTimeout:
			t.Errorf("%s: WriteTimeout %s below ReadTimeout %s", s.name, s.WriteTimeout, s.ReadTimeout)
		case s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20:
			t.Errorf("%s: IdleTimeout %s, MaxHeaderBytes %d", s.name, s.IdleTimeout, s.MaxHeaderBytes)
		}
	}
}
