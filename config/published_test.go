package config

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckPublishedTokens(t *testing.T) {
	own := Token{Name: "own", Hash: hashOf("a token nobody printed"), Scopes: []string{ScopeAdmin}}
	demo := Token{Name: "demo", Hash: hashOf(DemoToken), Scopes: []string{ScopeAdmin}}
	bar := Token{Name: "ops", Hash: strings.ToUpper(hashOf("bar")), Scopes: []string{ScopeAdmin}}
	for _, c := range []struct {
		name   string
		listen string
		tokens []Token
		want   []string // substrings of the error, none when empty
	}{
		{"own token anywhere", "0.0.0.0:8080", []Token{own}, nil},
		{"demo token on loopback", "127.0.0.1:8080", []Token{own, demo}, nil},
		{"demo token on localhost", "localhost:8080", []Token{demo}, nil},
		{"demo token on IPv6 loopback", "[::1]:8080", []Token{demo}, nil},
		{"demo token on every interface", ":8080", []Token{own, demo},
			[]string{`tokens[1].hash: token "demo" is the demo token "roster-demo-token"`, "listen is :8080", "roster token --generate"}},
		{"demo token on a LAN address", "10.0.0.5:8080", []Token{demo}, []string{"tokens[0].hash", "loopback"}},
		{"example placeholder even on loopback", "127.0.0.1:8080", []Token{own, bar},
			[]string{`roster.yaml: tokens[1].hash: token "ops" has the hash of "bar"`, "anyone can use"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckPublishedTokens(&Config{Path: "roster.yaml", Listen: c.listen, Tokens: c.tokens})
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, tok := range c.tokens {
				if strings.Contains(strings.ToLower(err.Error()), strings.TrimPrefix(strings.ToLower(tok.Hash), "sha256:")) {
					t.Errorf("error %q repeats a hash", err)
				}
			}
		})
	}
}
