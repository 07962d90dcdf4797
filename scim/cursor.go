package scim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/scimerr"
)

// Cursors (RFC 9865) are the position of a page's last resource plus a
// fingerprint of the query they belong to, as base64url JSON: opaque to
// clients, made only of the unreserved characters RFC 9865 §2 requires,
// and stateless, so they never expire and any replica can continue a
// walk another began. A cursor reused with another filter or sort order
// is refused with invalidCursor, since RFC 9865 asks clients to repeat
// the query unchanged.

// The scimType keywords of RFC 9865 §2.1.
const (
	typeInvalidCursor = "invalidCursor"
)

type cursorToken struct {
	Key   string `json:"k,omitempty"`
	ID    string `json:"i"`
	Query string `json:"q"`
}

// queryPrint fingerprints what a cursor walk must keep unchanged.
func queryPrint(resource string, f filter.Expr, sortBy string, desc bool) string {
	h := sha256.New()
	h.Write([]byte(resource))
	h.Write([]byte{0})
	if f != nil {
		h.Write([]byte(filter.Format(f)))
	}
	h.Write([]byte{0})
	h.Write([]byte(sortBy))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatBool(desc)))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func encodeCursor(p *Position, print string) string {
	b, _ := json.Marshal(cursorToken{Key: p.Key, ID: p.ID, Query: print}) // strings only: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor; an empty one starts the walk (nil).
func decodeCursor(s, print string) (*Position, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var t cursorToken
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.ID == "" {
		return nil, invalidCursor("the cursor is not one this server issued; start again with an empty cursor")
	}
	if t.Query != print {
		return nil, invalidCursor("the cursor belongs to a query with another filter or sort order; repeat the query unchanged, or start again with an empty cursor")
	}
	return &Position{Key: t.Key, ID: t.ID}, nil
}

func invalidCursor(detail string) *scimerr.Error {
	return &scimerr.Error{Status: 400, ScimType: typeInvalidCursor, Detail: detail}
}
