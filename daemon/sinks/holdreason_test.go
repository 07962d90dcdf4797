package sinks

import (
	"testing"

	"github.com/rosterd/roster/config"
)

// TestHoldReason: a held sink's reason names the number of removals
// max_removals allows, a share worked out of the service's users.
func TestHoldReason(t *testing.T) {
	for _, tt := range []struct {
		removals config.Removals
		onRemove string
		n, total int
		want     string
	}{
		{config.Removals{Percent: 10, IsPercent: true}, config.OnRemoveDeactivate, 3, 20,
			"the next delivery would deactivate 3 of the 20 users the service holds, more than the 2 that max_removals 10% allows; approve with roster sink wiki --approve"},
		{config.Removals{Percent: 2.5, IsPercent: true}, config.OnRemoveDelete, 30, 1000,
			"the next delivery would delete 30 of the 1000 users the service holds, more than the 25 that max_removals 2.5% allows; approve with roster sink wiki --approve"},
		{config.Removals{Count: 1}, config.OnRemoveDeactivate, 3, 9,
			"the next delivery would deactivate 3 of the 9 users the service holds, more than the 1 that max_removals allows; approve with roster sink wiki --approve"},
	} {
		cfg := &config.Sink{Name: "wiki", MaxRemovals: tt.removals, OnRemove: tt.onRemove}
		if got := holdReason(cfg, tt.n, tt.total); got != tt.want {
			t.Errorf("max_removals %s, %d of %d:\n got %q\nwant %q", tt.removals, tt.n, tt.total, got, tt.want)
		}
	}
}
