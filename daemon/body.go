package daemon

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Request bodies must keep arriving: a client that sends its body slowly
// (a slow-loris) holds a connection and a goroutine for as long as the
// server waits. A body gets bodyGrace from the moment its handler starts,
// plus one second per bodyMinRate bytes it has delivered, so that a small
// form must be complete within bodyGrace and a 64 MiB upload needs a link
// of bodyMinRate (1 Mbit/s) on average. The part of a body a handler never
// read (the request was refused before, for a missing token or session)
// gets unreadGrace once the answer starts, then the connection is closed:
// a refused request is cheap however slowly its body comes.
const (
	bodyGrace   = 10 * time.Second
	bodyMinRate = 128 << 10 // bytes per second
	unreadGrace = time.Second
)

// errBodyTooSlow is what reading a body that did not arrive in time
// returns; handlers show it to the client, and may answer 408 as it is an
// os.ErrDeadlineExceeded.
var errBodyTooSlow error = bodyTooSlow{}

type bodyTooSlow struct{}

func (bodyTooSlow) Error() string {
	return fmt.Sprintf("the request body arrived too slowly: it must be complete within %s plus one second per %d KiB", bodyGrace, bodyMinRate>>10)
}

func (bodyTooSlow) Unwrap() error { return os.ErrDeadlineExceeded }

// timedBody is a request body whose read deadline moves with what has
// arrived, per the rule above.
type timedBody struct {
	r        io.ReadCloser
	rc       *http.ResponseController
	start    time.Time
	read     int64
	deadline atomic.Int64 // Unix nanoseconds; the guard reads it too
	done     atomic.Bool  // EOF or an error: nothing more will be read
}

// bound installs the body rule on r, and returns the ResponseWriter that
// cuts the unread part of the body short when the answer starts.
func bound(w http.ResponseWriter, r *http.Request, max int64) http.ResponseWriter {
	rc := http.NewResponseController(w)
	now := time.Now()
	b := &timedBody{r: http.MaxBytesReader(w, r.Body, max), rc: rc, start: now}
	b.deadline.Store(now.Add(bodyGrace).UnixNano())
	// The server's own ReadTimeout is only a backstop; an error means the
	// writer cannot set deadlines (a test recorder), and ReadTimeout holds.
	rc.SetReadDeadline(now.Add(bodyGrace)) //nolint:errcheck // see above
	r.Body = b
	return &bodyGuard{ResponseWriter: w, body: b}
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil {
		b.done.Store(true)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errBodyTooSlow
		}
	}
	if n > 0 {
		b.read += int64(n)
		due := b.start.Add(bodyGrace + time.Duration(float64(b.read)/bodyMinRate*float64(time.Second)))
		// Moving a deadline costs a system call: once a second is enough.
		if due.UnixNano()-b.deadline.Load() >= int64(time.Second) {
			b.deadline.Store(due.UnixNano())
			b.rc.SetReadDeadline(due) //nolint:errcheck // as in bound
			// A long upload still gets the whole write timeout to be
			// answered, counted from when its body is due.
			b.rc.SetWriteDeadline(due.Add(writeTimeout)) //nolint:errcheck // as in bound
		}
	}
	return n, err
}

func (b *timedBody) Close() error { return b.r.Close() }

// bodyGuard gives the body unreadGrace, not more, once the answer starts
// while the body was not read to its end. Without it net/http, before
// sending the answer, waits for up to 256 KiB of the rest of the body
// until the read deadline.
type bodyGuard struct {
	http.ResponseWriter
	body    *timedBody
	started bool
}

func (g *bodyGuard) answer() {
	if g.started {
		return
	}
	g.started = true
	if g.body.done.Load() {
		return
	}
	if soon := time.Now().Add(unreadGrace); soon.UnixNano() < g.body.deadline.Load() {
		g.body.rc.SetReadDeadline(soon) //nolint:errcheck // as in bound
	}
}

func (g *bodyGuard) WriteHeader(code int) {
	if code >= 200 {
		g.answer()
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *bodyGuard) Write(p []byte) (int, error) {
	g.answer()
	return g.ResponseWriter.Write(p)
}

// Flush keeps http.Flusher working through the guard.
func (g *bodyGuard) Flush() {
	g.answer()
	http.NewResponseController(g.ResponseWriter).Flush() //nolint:errcheck // as http.Flusher, which cannot fail
}

// Unwrap lets http.ResponseController reach the connection.
func (g *bodyGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }
