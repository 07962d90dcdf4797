package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rosterd/roster/daemon/store"
)

const bulkURN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

// maxBulkOps bounds one /Bulk request whatever the service allows, so
// that a failed request costs little to repeat.
const maxBulkOps = 200

// bulkLimits are what the service's /ServiceProviderConfig allows of one
// /Bulk request (RFC 7644 §3.7); ops 0: the service takes no /Bulk.
type bulkLimits struct {
	ops, payload int
}

// bulkOp is one create or update waiting for the next /Bulk request.
type bulkOp struct {
	method, path string
	data         any
	kind, id     string
	// counter counts the op when the service did it.
	counter *int
	// recreate creates the resource again when an update finds the
	// service lost it (404).
	recreate func() error
	size     int
}

type bulkQueue struct {
	c    *Counts
	ops  []bulkOp
	size int
}

// bulkOverhead is what an operation's envelope (method, path, bulkId)
// and the request's envelope add to the payload, generously.
const bulkOverhead = 256

// queue adds an operation, sending the queue first when the operation
// would take it past the service's limits.
func (s *Sink) queue(ctx context.Context, op bulkOp) error {
	data, err := json.Marshal(op.data)
	if err != nil {
		return fmt.Errorf("sink %s: encode %s %s: %w", s.cfg.Name, op.kind, op.id, err)
	}
	op.size = len(data) + len(op.path) + bulkOverhead
	q := s.pending
	if len(q.ops) > 0 && (len(q.ops) >= s.bulk.ops || q.size+op.size > s.bulk.payload) {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	q.ops = append(q.ops, op)
	q.size += op.size
	return nil
}

// flush sends the queued operations in one /Bulk request. An operation
// the service refused is handled as the same request sent alone would
// be: counted and reported, or, for a failing service (429, 5xx), the
// end of the step. A /Bulk request the service refuses whole (too large
// after all, or not understood) is sent again one request at a time.
func (s *Sink) flush(ctx context.Context) (rerr error) {
	q := s.pending
	if q == nil || len(q.ops) == 0 {
		return nil
	}
	ops := q.ops
	q.ops, q.size = nil, 0
	if len(ops) == 1 {
		return s.alone(ctx, ops[0])
	}
	req := map[string]any{"schemas": []string{bulkURN}}
	list := make([]any, len(ops))
	for i, op := range ops {
		list[i] = map[string]any{"method": op.method, "path": op.path, "bulkId": "op" + strconv.Itoa(i), "data": op.data}
	}
	req["Operations"] = list
	var res struct {
		Operations []struct {
			BulkID   string          `json:"bulkId"`
			Location string          `json:"location"`
			Status   json.RawMessage `json:"status"`
			Response json.RawMessage `json:"response"`
		} `json:"Operations"`
	}
	err := s.client.do(ctx, http.MethodPost, "/Bulk", req, &res)
	if err != nil {
		var se *ServiceError
		if transient(err) || !errors.As(err, &se) {
			return err
		}
		s.log.Warn("the service refused a /Bulk request; sending its operations one at a time", "error", err)
		for _, op := range ops {
			if err := s.alone(ctx, op); err != nil {
				if err := s.failed(err, q.c, op.kind, op.id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// The service ids are recorded together, also when an operation
	// ends the step: what the service created must not be created again.
	made := map[string]string{}
	defer func() {
		if err := s.store.SetServiceIDs(ctx, s.cfg.Name, store.KindUser, made); err != nil && rerr == nil {
			rerr = err
		}
	}()
	byID := make(map[string]int, len(res.Operations))
	for i, r := range res.Operations {
		if r.BulkID != "" {
			byID[r.BulkID] = i
		}
	}
	for i, op := range ops {
		j, ok := byID["op"+strconv.Itoa(i)]
		if !ok {
			j = i // answers come in the order of the operations
		}
		if j >= len(res.Operations) {
			err = &ServiceError{Method: op.method, Path: op.path, Status: http.StatusOK, Detail: "the /Bulk answer has no result for this operation"}
		} else {
			r := res.Operations[j]
			err = s.bulkResult(ctx, op, status(r.Status), r.Location, r.Response, made)
		}
		if err != nil {
			if err := s.failed(err, q.c, op.kind, op.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// bulkResult applies what the service did with one operation.
// A created resource's service id goes into made, or to the store at
// once when made is nil.
func (s *Sink) bulkResult(ctx context.Context, op bulkOp, code int, location string, response []byte, made map[string]string) error {
	switch {
	case code >= 200 && code < 300:
		if op.method != http.MethodPost {
			*op.counter++
			return nil
		}
		var res struct {
			ID string `json:"id"`
		}
		json.Unmarshal(response, &res)
		if res.ID == "" && location != "" {
			res.ID = location[strings.LastIndexByte(location, '/')+1:]
		}
		if res.ID == "" {
			return &ServiceError{Method: op.method, Path: op.path, Status: code, Detail: "the /Bulk answer gives no id nor location"}
		}
		*op.counter++
		if made != nil {
			made[op.id] = res.ID
			return nil
		}
		return s.setServiceID(ctx, s.cfg.Name, op.kind, op.id, res.ID)
	case code == http.StatusConflict && op.method == http.MethodPost:
		// Most often the answer to a create that was sent again because
		// the first answer was lost (a timeout): the user is there.
		p := s.pending
		s.pending = nil
		defer func() { s.pending = p }()
		return s.conflict(ctx, op, response)
	case code == http.StatusNotFound && op.recreate != nil:
		p := s.pending
		s.pending = nil // sent at once: the next flush may be the last
		defer func() { s.pending = p }()
		return op.recreate()
	default:
		return &ServiceError{Method: op.method, Path: op.path, Status: code, Detail: detail(response)}
	}
}

// conflict adopts the user a create was refused for when the service
// holds one of its userName, and updates it; otherwise the refusal
// stands.
func (s *Sink) conflict(ctx context.Context, op bulkOp, response []byte) error {
	refused := &ServiceError{Method: op.method, Path: op.path, Status: http.StatusConflict, Detail: detail(response)}
	body, _ := op.data.(map[string]any)
	name, _ := body["userName"].(string)
	if name == "" || op.kind != store.KindUser {
		return refused
	}
	sid, err := s.match(ctx, "/Users", "userName", name)
	if err != nil || sid == "" {
		if err != nil {
			return err
		}
		return refused
	}
	if err := s.setServiceID(ctx, s.cfg.Name, op.kind, op.id, sid); err != nil {
		return err
	}
	var ignored int
	return s.update(ctx, "/Users/", op.kind, op.id, sid, body, op.counter, &ignored)
}

// alone sends one queued operation as a request of its own.
func (s *Sink) alone(ctx context.Context, op bulkOp) error {
	var made struct {
		ID string `json:"id"`
	}
	var out any
	if op.method == http.MethodPost {
		out = &made
	}
	err := s.client.do(ctx, op.method, op.path, op.data, out)
	var se *ServiceError
	if errors.As(err, &se) {
		return s.bulkResult(ctx, op, se.Status, "", []byte(`{"detail":`+strconv.Quote(se.Detail)+`}`), nil)
	}
	if err != nil {
		return err
	}
	if op.method == http.MethodPost {
		body, _ := json.Marshal(made)
		return s.bulkResult(ctx, op, http.StatusCreated, "", body, nil)
	}
	return s.bulkResult(ctx, op, http.StatusOK, "", nil, nil)
}

// status reads an operation's status, a string in RFC 7644's examples
// and a number for some services.
func status(raw json.RawMessage) int {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		n, _ := strconv.Atoi(strings.TrimSpace(s))
		return n
	}
	var n int
	json.Unmarshal(raw, &n)
	return n
}
