package scim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/scim/scimerr"
)

// Principal is who a bearer token speaks for.
type Principal struct {
	Name   string
	Scopes []string
}

// Authenticator looks up a bearer token and reports whether it is known.
// The Handler calls it on every request, so one that reads the current
// configuration takes a reloaded token list into account at once.
type Authenticator func(token string) (Principal, bool)

// Tokens authenticates against the configured tokens, which are known
// only by their SHA-256 (SPEC §8): the presented token's hash is compared
// with every configured hash in constant time, so neither a match nor
// its position in the list shows in the timing. current is called on
// every request; pass a function that returns the live configuration's
// tokens.
func Tokens(current func() []config.Token) Authenticator {
	return func(token string) (Principal, bool) {
		sum := sha256.Sum256([]byte(token))
		var found Principal
		ok := 0
		for _, t := range current() {
			want, valid := tokenHash(t.Hash)
			if !valid {
				continue
			}
			if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && ok == 0 {
				found, ok = Principal{Name: t.Name, Scopes: t.Scopes}, 1
			}
		}
		return found, ok == 1
	}
}

// tokenHash decodes "sha256:<64 hex digits>"; the config loader has
// already validated the form, so a bad one simply matches nothing.
func tokenHash(h string) ([sha256.Size]byte, bool) {
	var out [sha256.Size]byte
	hexDigits, ok := strings.CutPrefix(h, "sha256:")
	if !ok || hex.DecodedLen(len(hexDigits)) != sha256.Size {
		return out, false
	}
	if _, err := hex.Decode(out[:], []byte(strings.ToLower(hexDigits))); err != nil {
		return out, false
	}
	return out, true
}

// readScopes grant the read endpoints: a token that may write may read,
// and so may an administrator.
var readScopes = []string{config.ScopeSCIMRead, config.ScopeSCIMWrite, config.ScopeAdmin}

// authenticate checks the request's bearer token (RFC 6750 §2.1) and its
// scopes.
func (h *Handler) authenticate(r *http.Request) (Principal, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, scimerr.Unauthorized("this endpoint needs a bearer token in the Authorization header")
	}
	p, ok := h.auth(token)
	if !ok {
		e := scimerr.Unauthorized("the bearer token is not valid")
		e.Header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="invalid_token"`}}
		return Principal{}, e
	}
	for _, s := range p.Scopes {
		if slices.Contains(readScopes, s) {
			return p, nil
		}
	}
	e := scimerr.Forbidden("the token lacks the scope scim:read")
	e.Header = http.Header{"Www-Authenticate": {`Bearer realm="roster", error="insufficient_scope", scope="scim:read"`}}
	return Principal{}, e
}
