package tasks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// BenchmarkPushApply accepts and applies pushes of 1,000 new users each,
// in departments that exist, into a directory that grows with every push:
// the cost of one push must follow the payload, not the directory.
func BenchmarkPushApply(b *testing.B) {
	for _, driver := range storetest.Drivers {
		b.Run(driver, func(b *testing.B) {
			s := storetest.Open(b, driver)
			r := pushRunner(b, s)
			pushNow(b, r, `{"dataType":"department","records":[{"uid":"d-0","title":"Zero"},{"uid":"d-1","title":"One"}]}`)
			b.ResetTimer()
			for n := range b.N {
				var rec []string
				for i := range 1000 {
					rec = append(rec, fmt.Sprintf(`{"uid":"%d-%d","username":"u%d-%d","nickname":"P %d","email":"u%d-%d@example.com","departments":["d-%d"]}`,
						n, i, n, i, i, n, i, i%2))
				}
				task := pushNow(b, r, `{"dataType":"user","records":[`+strings.Join(rec, ",")+`]}`)
				if task.Status != store.StatusSucceeded {
					b.Fatalf("push %d: %s %s", n, task.Status, task.Errors)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
