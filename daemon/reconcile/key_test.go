package reconcile_test

import (
	"testing"

	"github.com/rosterd/roster/daemon/reconcile"
)

// TestKeyNormalizes: a login or group name is one key whatever its case
// and whether its accents are composed or not.
func TestKeyNormalizes(t *testing.T) {
	for _, pair := range [][2]string{
		{"jose\u0301", "jos\u00e9"},
		{"JOSE\u0301", "jos\u00e9"},
		{"Abteilung Fu\u0308r", "abteilung f\u00fcr"},
	} {
		if a, b := reconcile.Key(pair[0]), reconcile.Key(pair[1]); a != b {
			t.Errorf("Key(%q) = %q, Key(%q) = %q: want one key", pair[0], a, pair[1], b)
		}
	}
	if reconcile.Key("jose") == reconcile.Key("jos\u00e9") {
		t.Error("an accent is part of the login")
	}
}
