package password

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !IsHash(h) || strings.Contains(h, "correct") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := Hash("correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for pw, want := range map[string]bool{"correct horse": true, "Correct horse": false, "": false} {
		if ok, err := Verify(h, pw); ok != want || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	b, _ := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	if ok, err := Verify(string(b), "s3cret-pass"); !ok || err != nil || !IsHash(string(b)) {
		t.Fatalf("bcrypt Verify = %v, %v", ok, err)
	}
	if IsHash("plain text") {
		t.Fatal("IsHash(plain text)")
	}
}

func BenchmarkHash(b *testing.B) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Hash("initial-password"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
