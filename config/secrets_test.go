package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsKey checks the accepted encodings of secrets.key, that a
// sink's passwords need it, and that a bad key is refused without being
// repeated.
func TestSecretsKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xA7}, 32)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const sink = "sinks:\n  - {name: s, url: 'https://h/scim', passwords: true}\n"
	tests := []struct {
		name, key string
		ok        bool
	}{
		{"hex", hex.EncodeToString(raw), true},
		{"base64", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(raw), true},
		{"base64 url", base64.URLEncoding.EncodeToString(raw), true},
		{"file", "${file:" + keyFile + "}", true},
		{"environment", "${ROSTER_TEST_KEY}", true},
		{"short", hex.EncodeToString(raw[:16]), false},
		{"long", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"words", "correct-horse-battery-staple-secret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("ROSTER_TEST_KEY", hex.EncodeToString(raw))
			c, err := Parse([]byte("secrets: {key: '"+tt.key+"'}\n"+sink), filepath.Join(dir, "roster.yaml"))
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), "secrets.key: is not a 32-byte key") {
					t.Fatalf("want a secrets.key problem, got %v", err)
				}
				if strings.Contains(err.Error(), tt.key) {
					t.Errorf("the problem repeats the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !bytes.Equal(c.Secrets.KeyBytes(), raw) {
				t.Errorf("KeyBytes = %x, want %x", c.Secrets.KeyBytes(), raw)
			}
			if !c.Sinks[0].Passwords {
				t.Error("passwords: true was not read")
			}
		})
	}
	_, err := Parse([]byte(sink), filepath.Join(dir, "roster.yaml"))
	if err == nil || !strings.Contains(err.Error(), "sinks[0].passwords: needs secrets.key") {
		t.Errorf("passwords without a key: want a problem, got %v", err)
	}
	c, err := Parse([]byte("sinks:\n  - {name: s, url: 'https://h/scim'}\n"), filepath.Join(dir, "roster.yaml"))
	if err != nil || c.Sinks[0].Passwords || c.Secrets.KeyBytes() != nil {
		t.Errorf("defaults: passwords %v, key %v, err %v", c.Sinks[0].Passwords, c.Secrets.KeyBytes() != nil, err)
	}
}
