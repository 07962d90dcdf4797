package main

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

// pickyService is a small SCIM service for the admin page's pictures: it
// holds nothing at first, creates what it is sent under ids of its own,
// and refuses to create the user called refuse, with a SCIM error.
func pickyService(t *testing.T, refuse string) *httptest.Server {
	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		path := strings.TrimPrefix(r.URL.Path, "/scim/v2")
		switch {
		case path == "/ServiceProviderConfig":
			io.WriteString(w, `{"patch": {"supported": true}}`)
		case r.Method == http.MethodGet:
			io.WriteString(w, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}`)
		case r.Method == http.MethodPost:
			var body struct {
				UserName string `json:"userName"`
			}
			json.NewDecoder(r.Body).Decode(&body)
			if path == "/Users" && body.UserName == refuse {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidValue", "detail": "userName %s is reserved on this service"}`, refuse)
				return
			}
			mu.Lock()
			next++
			id := next
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id": "svc-%d"}`, id)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// sinkViewJSON is what the browser test reads of `roster sink NAME --json`.
type sinkViewJSON struct {
	State   string `json:"state"`
	LastRun *struct {
		ID      int64  `json:"id"`
		Trigger string `json:"trigger"`
	} `json:"last_run"`
}
