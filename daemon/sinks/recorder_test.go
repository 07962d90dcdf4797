package sinks_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder is a SCIM service that holds nothing and records every write
// it is sent: what a sink sends, body by body.
type recorder struct {
	mu     sync.Mutex
	writes []recorded
	reads  int
	srv    *httptest.Server
}

type recorded struct {
	Method, Path string
	Body         map[string]any
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	n := 0
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		w.Header().Set("Content-Type", "application/scim+json")
		path := strings.TrimPrefix(req.URL.Path, "/scim/v2")
		if req.Method == http.MethodGet {
			r.reads++
			if path == "/ServiceProviderConfig" {
				io.WriteString(w, `{"patch":{"supported":true}}`)
				return
			}
			io.WriteString(w, `{"totalResults":0,"Resources":[]}`)
			return
		}
		var body map[string]any
		json.NewDecoder(req.Body).Decode(&body)
		r.writes = append(r.writes, recorded{req.Method, path, body})
		switch req.Method {
		case http.MethodPost:
			n++
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":"svc-%d"}`, n)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) sent() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.writes...)
}
