package daemon

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/scim"
)

// mountSCIM serves the directory at /scim/v2 with the tokens in force
// (reloads apply at once) and counts every answer.
func (d *Daemon) mountSCIM(reg prometheus.Registerer) error {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roster_scim_requests_total",
		Help: "SCIM requests answered, by method, resource endpoint and status code.",
	}, []string{"method", "resource", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "roster_scim_request_duration_seconds",
		Help:    "How long SCIM requests took to answer, by method and resource endpoint.",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"method", "resource"})
	for _, c := range []prometheus.Collector{requests, duration} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register SCIM metrics: %w", err)
		}
	}
	d.Handle("/scim/v2/", scim.NewHandler(scim.Options{
		Directory:     d.store.SCIM(),
		Writer:        d.store.SCIMWriter(),
		Source:        func() string { return scimSource(d.Config()) },
		Authenticator: scim.Tokens(func() []config.Token { return d.Config().Tokens }),
		Logger:        d.log.With("component", "scim"),
		Observe: func(method, resource string, status int, elapsed time.Duration) {
			method = metricMethod(method)
			requests.WithLabelValues(method, resource, strconv.Itoa(status)).Inc()
			duration.WithLabelValues(method, resource).Observe(elapsed.Seconds())
		},
	}))
	return nil
}

// scimSource names the source SCIM writes go to: the configured source
// of type scim (there is at most one), or "" when there is none or it is
// disabled, as a disabled source takes no input.
func scimSource(cfg *config.Config) string {
	if cfg == nil {
		return ""
	}
	for _, s := range cfg.Sources {
		if s.Type == config.TypeSCIM {
			if !s.Enabled {
				return ""
			}
			return s.Name
		}
	}
	return ""
}

// metricMethod keeps a client's invented methods from creating series.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m
	}
	return "other"
}
