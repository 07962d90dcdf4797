package scim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/rosterd/roster/scim/scimerr"
)

// MemberReader is a Directory that reads a group's members in pieces, so
// that a group of any size is answered in bounded memory (issue 16: one
// page of large groups built a 96 MB answer). A Directory that
// implements it may leave the members of some groups of a page unread
// and mark them MembersPending; the Handler then reads them here, piece
// by piece, while it writes the answer.
type MemberReader interface {
	// Members returns at most limit members of group id, those whose
	// value (member id) sorts after after ("" from the first), in
	// member id order, as Group.Members holds them.
	Members(ctx context.Context, id, after string, limit int) ([]Reference, error)
}

// MemberPiece is how many members the Handler asks a MemberReader for at
// a time: about 150 KB of answer.
const MemberPiece = 1000

// encoder writes JSON values as writeJSON does (no HTML escaping), one at
// a time, through one reused buffer.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newEncoder() *encoder {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}

// marshal returns v's JSON without the newline Encode adds; the bytes are
// valid until the next call.
func (e *encoder) marshal(v any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")), nil
}

// streamError is a failure after the status line went out: the answer
// cannot become an error any more, so the connection is cut, and the
// client sees a broken answer rather than a short one that parses.
func (h *Handler) streamError(r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		h.log.Debug("scim answer canceled while it was written", "method", r.Method, "path", r.URL.Path)
	} else {
		h.log.Error("scim answer broken off while it was written", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// writeList streams a ListResponse: the envelope, then each resource as
// it is encoded, so that the answer is never held whole. write encodes
// resource i.
func (h *Handler) writeList(w http.ResponseWriter, r *http.Request, resp *ListResponse, n int, write func(bw *bufio.Writer, e *encoder, i int) error) {
	e := newEncoder()
	resp.Resources = json.RawMessage("[]")
	head, err := e.marshal(resp)
	if err != nil || !bytes.HasSuffix(head, []byte(`[]}`)) {
		scimerr.Write(w, fmt.Errorf("encode the list envelope: %v", err))
		return
	}
	head = head[:len(head)-len(`]}`)]
	// Writes to bw are not checked one by one: bufio keeps the first
	// error and Flush reports it.
	w.Header().Set("Content-Type", scimerr.ContentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.Write(head)
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		if err := write(bw, e, i); err != nil {
			h.streamError(r, err)
		}
	}
	bw.WriteString("]}\n")
	if err := bw.Flush(); err != nil {
		h.log.Debug("scim answer not delivered", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// encodeGroup encodes a finished and projected group; a group whose
// members the Directory left pending gets them read and written in
// pieces, between displayName and meta as encoding/json would place them.
func (h *Handler) encodeGroup(ctx context.Context, bw *bufio.Writer, e *encoder, proj *projection, g *Group, base string) error {
	if !g.MembersPending {
		b, err := e.marshal(g)
		if err != nil {
			return err
		}
		_, err = bw.Write(b)
		return err
	}
	mr, ok := h.dir.(MemberReader)
	if !ok {
		return fmt.Errorf("group %q: the directory left its members pending but reads none", g.ID)
	}
	c := *g
	c.Members, c.Meta = nil, nil
	b, err := e.marshal(&c)
	if err != nil {
		return err
	}
	bw.Write(b[:len(b)-1])
	first, after := true, ""
	for {
		ms, err := mr.Members(ctx, g.ID, after, MemberPiece)
		if err != nil {
			return fmt.Errorf("read the members of group %q: %w", g.ID, err)
		}
		if len(ms) > 0 {
			after = ms[len(ms)-1].Value
		}
		piece := Group{Members: ms}
		h.finishGroup(&piece, base)
		for _, m := range proj.references("members", piece.Members) {
			if first {
				bw.WriteString(`,"members":[`)
				first = false
			} else {
				bw.WriteByte(',')
			}
			mb, err := e.marshal(&m)
			if err != nil {
				return err
			}
			bw.Write(mb)
		}
		if len(ms) < MemberPiece {
			break
		}
	}
	if !first {
		bw.WriteByte(']')
	}
	if g.Meta != nil {
		mb, err := e.marshal(g.Meta)
		if err != nil {
			return err
		}
		bw.WriteString(`,"meta":`)
		bw.Write(mb)
	}
	return bw.WriteByte('}')
}

// answerOneGroup writes one group with status: whole, as writeJSON does,
// unless its members are pending, when it is streamed like a list.
func (h *Handler) answerOneGroup(w http.ResponseWriter, r *http.Request, status int, proj *projection, g *Group) {
	if !g.MembersPending {
		writeJSON(w, status, g)
		return
	}
	w.Header().Set("Content-Type", scimerr.ContentType)
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := h.encodeGroup(r.Context(), bw, newEncoder(), proj, g, h.base(r)); err != nil {
		h.streamError(r, err)
	}
	bw.WriteByte('\n')
	if err := bw.Flush(); err != nil {
		h.log.Debug("scim answer not delivered", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

// readPendingMembers reads every member of a group whose members the
// Directory left pending into Members. A PATCH applied to the whole
// group (patchWholeGroup) needs them all: it writes the result back, so
// a group read in part would lose the rest.
func (h *Handler) readPendingMembers(ctx context.Context, g *Group) error {
	if !g.MembersPending {
		return nil
	}
	mr, ok := h.dir.(MemberReader)
	if !ok {
		return fmt.Errorf("group %q: the directory left its members pending but reads none", g.ID)
	}
	after := ""
	for {
		ms, err := mr.Members(ctx, g.ID, after, MemberPiece)
		if err != nil {
			return fmt.Errorf("read the members of group %q: %w", g.ID, err)
		}
		g.Members = append(g.Members, ms...)
		if len(ms) < MemberPiece {
			g.MembersPending = false
			return nil
		}
		after = ms[len(ms)-1].Value
	}
}
