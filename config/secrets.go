package config

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Secrets are roster's own secrets (SPEC §8).
type Secrets struct {
	// Key, when set, is a 32-byte key written as 64 hex digits or in
	// base64 (standard or URL alphabet, padded or not), usually read
	// with ${file:...} or ${ENV}. It encrypts the initial passwords kept
	// for the sinks that ask for them (docs/sinks.md).
	Key string `yaml:"key"`
}

// KeyBytes returns the decoded key, nil when none is set or it is not
// valid (Load refuses an invalid key).
func (s Secrets) KeyBytes() []byte {
	k, _ := decodeKey(s.Key)
	return k
}

// keyLen is the length of an AES-256 key.
const keyLen = 32

// decodeKey decodes a key written as hex or base64. ok is false for a key
// of another length or encoding; the reason never quotes the key.
func decodeKey(s string) (key []byte, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	if len(s) == 2*keyLen {
		if b, err := hex.DecodeString(s); err == nil {
			return b, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == keyLen {
			return b, true
		}
	}
	return nil, false
}

// validateSecrets checks secrets.key without ever repeating it.
func (c *collector) validateSecrets(s Secrets) {
	if s.Key == "" {
		return
	}
	if _, ok := decodeKey(s.Key); !ok {
		c.check("secrets.key", "is not a 32-byte key: write 64 hex digits or 32 bytes in base64, such as the output of openssl rand -base64 32 (the value is not repeated here)")
	}
}

// PasswordSinks names the enabled sinks that ask for initial passwords;
// none when secrets.key is not set.
func (c *Config) PasswordSinks() []string {
	var names []string
	if c.Secrets.KeyBytes() == nil {
		return nil
	}
	for _, s := range c.Sinks {
		if s.Enabled && s.Passwords {
			names = append(names, s.Name)
		}
	}
	return names
}
