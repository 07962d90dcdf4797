package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
)

// DemoToken is the token of deploy/examples/roster.yaml, which the README's
// quick start and `make demo` use. It is public, so it is accepted only by
// a daemon that listens on loopback (see CheckPublishedTokens).
const DemoToken = "roster-demo-token"

// exampleTokens are the tokens whose hashes roster's deployment examples
// (deploy/systemd, deploy/kubernetes) and documentation print as
// placeholders. Anyone can read them, so no daemon accepts them.
var exampleTokens = []string{"foo", "bar", "baz"}

// CheckPublishedTokens refuses a configuration for `roster serve` that
// accepts a token printed in roster's own examples, naming the token entry
// and what to do: the placeholders of the deployment examples always, the
// demo token unless the main listener is on loopback only (so that `make
// demo` works and a demo reachable from the network does not). The hashes
// themselves are not repeated: only the published tokens they stand for.
func CheckPublishedTokens(c *Config) error {
	published := map[string]string{}
	for _, tok := range exampleTokens {
		published[hashOf(tok)] = tok
	}
	loopback := IsLoopback(c.Listen)
	if !loopback {
		published[hashOf(DemoToken)] = DemoToken
	}
	var problems []Problem
	for i, t := range c.Tokens {
		tok, ok := published[strings.ToLower(strings.TrimSpace(t.Hash))]
		if !ok {
			continue
		}
		msg := fmt.Sprintf("token %q has the hash of %q, a token printed in roster's examples that anyone can use; "+
			"make your own with `roster token --generate` and put its hash here", t.Name, tok)
		if tok == DemoToken {
			msg = fmt.Sprintf("token %q is the demo token %q, accepted only while listen is a loopback address (listen is %s); "+
				"make your own with `roster token --generate` and put its hash here", t.Name, tok, c.Listen)
		}
		problems = append(problems, Problem{File: c.Path, Key: fmt.Sprintf("tokens[%d].hash", i), Message: msg})
	}
	if len(problems) > 0 {
		return &Error{Problems: problems}
	}
	return nil
}

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// IsLoopback reports whether a listen address (host:port) can be reached
// from this host only: a loopback IP or "localhost". An empty host listens
// on every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
