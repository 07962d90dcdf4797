package deploycheck

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// refusedUser is the userName the scrape's SCIM service refuses, so that
// roster_sink_failed_total has a series too.
const refusedUser = "jweiss"

// sinkService is the smallest SCIM service a sink can provision: it takes
// PATCH, holds nobody at first (first contact adopts nothing), creates
// what is posted, and refuses refusedUser with a 400.
func sinkService() *httptest.Server {
	var mu sync.Mutex
	next := 0
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		path := strings.TrimPrefix(r.URL.Path, "/scim/v2")
		switch {
		case r.Method == http.MethodGet && path == "/ServiceProviderConfig":
			io.WriteString(w, `{"patch": {"supported": true}}`) //nolint:errcheck
		case r.Method == http.MethodGet:
			io.WriteString(w, `{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}`) //nolint:errcheck
		case r.Method == http.MethodPost:
			var body struct {
				UserName string `json:"userName"`
			}
			json.NewDecoder(r.Body).Decode(&body) //nolint:errcheck // an empty body is answered like any other
			if body.UserName == refusedUser {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"status": "400", "scimType": "invalidValue", "detail": "refused by the deploycheck service"}`) //nolint:errcheck
				return
			}
			mu.Lock()
			next++
			id := next
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id": "svc-%d"}`, id)
		default:
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{}`) //nolint:errcheck
		}
	}))
}
