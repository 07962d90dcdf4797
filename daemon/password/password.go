// Package password hashes initial passwords with argon2id so that no clear
// text is ever stored, logged or written to a raw record; bcrypt hashes
// written by other systems are recognised and verified too.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The argon2id parameters are OWASP's recommendation (19 MiB, two passes,
// one lane): strong, yet cheap enough to hash thousands of initial
// passwords in parallel during an import.
const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	saltLen   = 16
	keyLen    = 32
)

var b64 = base64.RawStdEncoding

// slots bounds the hashes computed at once in the whole process: each
// holds 19 MiB, and twenty sources importing at the same time would
// otherwise hold gigabytes. More hashes than cores at once are no faster.
var slots = make(chan struct{}, runtime.GOMAXPROCS(0))

// hashed counts the hashes Hash computed: a sync must hash only the
// passwords it sets, and tests and operators can check that it does.
var hashed atomic.Int64

// Hashes reports how many passwords this process has hashed.
func Hashes() int64 { return hashed.Load() }

// Hash returns the PHC string of an argon2id hash of pw with a fresh salt.
func Hash(pw string) (string, error) {
	hashed.Add(1)
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read random salt: %w", err)
	}
	slots <- struct{}{}
	key := argon2.IDKey([]byte(pw), salt, passes, memoryKiB, lanes, keyLen)
	<-slots
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, memoryKiB, passes, lanes, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// IsHash reports whether s looks like a hash this package can verify.
func IsHash(s string) bool {
	return strings.HasPrefix(s, "$argon2id$") || strings.HasPrefix(s, "$2a$") ||
		strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// Verify reports whether pw matches hash (argon2id or bcrypt).
func Verify(hash, pw string) (bool, error) {
	if !strings.HasPrefix(hash, "$argon2id$") {
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return false, errors.New("malformed argon2id hash")
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2id version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("malformed argon2id parameters: %w", err)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("malformed argon2id salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("malformed argon2id key: %w", err)
	}
	if m > 4*memoryKiB {
		return false, errors.New("argon2id hash asks for more memory than roster allows")
	}
	slots <- struct{}{}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	<-slots
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
