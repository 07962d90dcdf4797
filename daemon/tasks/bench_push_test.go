package tasks_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
	"github.com/rosterd/roster/sources/push"
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

// chainPayload is a department payload of n departments, each one's
// parent the one before it.
func chainPayload(n int) string {
	var b strings.Builder
	b.WriteString(`{"dataType":"department","records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uid":"d-%d","title":"Department %d"`, i, i)
		if i > 0 {
			fmt.Fprintf(&b, `,"parentUid":"d-%d"`, i-1)
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return b.String()
}

// pushTimes are the wall time to accept a push (what happens before the
// 202) and to apply it, and the CPU time of this process for both: on a
// machine shared with other work the CPU time is the steadier figure.
type pushTimes struct{ accept, apply, cpu time.Duration }

func (t *pushTimes) add(o pushTimes) {
	t.accept, t.apply, t.cpu = t.accept+o.accept, t.apply+o.apply, t.cpu+o.cpu
}

func (t *pushTimes) report(b *testing.B, per float64, unit string) {
	b.ReportMetric(float64(t.accept.Nanoseconds())/per/1e3, "accept-µs/"+unit)
	b.ReportMetric(float64(t.apply.Nanoseconds())/per/1e3, "apply-µs/"+unit)
	b.ReportMetric(float64(t.cpu.Nanoseconds())/per/1e3, "cpu-µs/"+unit)
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timedPush decodes and accepts body, then applies the source's queue.
func timedPush(b *testing.B, r *tasks.Runner, body string) pushTimes {
	b.Helper()
	cpu := processCPU()
	began := time.Now()
	p, err := push.Decode([]byte(body))
	if err != nil {
		b.Fatal(err)
	}
	task, err := r.AcceptPush(b.Context(), "api", p)
	if err != nil {
		b.Fatal(err)
	}
	accept := time.Since(began)
	began = time.Now()
	if _, err := r.DrainPush(b.Context(), "api"); err != nil {
		b.Fatal(err)
	}
	t := pushTimes{accept: accept, apply: time.Since(began), cpu: processCPU() - cpu}
	done, err := r.Store.GetTask(b.Context(), task.ID)
	if err != nil {
		b.Fatal(err)
	}
	if done.Status != store.StatusSucceeded {
		b.Fatalf("push: %s %s", done.Status, done.Errors)
	}
	return t
}

// BenchmarkPushChain accepts and applies one push of a chain of 1k, 10k
// and 100k departments (each the parent of the next) into an empty source:
// the time per department must stay flat from 1k to 100k.
func BenchmarkPushChain(b *testing.B) {
	for _, driver := range storetest.Drivers {
		for _, n := range []int{1000, 10000, 100000} {
			body := chainPayload(n)
			b.Run(fmt.Sprintf("%s/%d", driver, n), func(b *testing.B) {
				var t pushTimes
				for range b.N {
					b.StopTimer()
					s := storetest.Open(b, driver)
					r := pushRunner(b, s)
					b.StartTimer()
					t.add(timedPush(b, r, body))
				}
				t.report(b, float64(b.N*n), "dept")
			})
		}
	}
}

// BenchmarkPushWide accepts and applies pushes of 1, 10 and 100 users
// with 1,000 departments each (push's most), into 1,000 departments that
// exist: the time per membership must stay flat.
func BenchmarkPushWide(b *testing.B) {
	const depts = 1000
	var d, u strings.Builder
	for i := range depts {
		fmt.Fprintf(&d, `,{"uid":"d-%d","title":"Department %d"}`, i, i)
		fmt.Fprintf(&u, `,"d-%d"`, i)
	}
	deptBody := `{"dataType":"department","records":[` + d.String()[1:] + `]}`
	list := "[" + u.String()[1:] + "]"
	for _, driver := range storetest.Drivers {
		for _, users := range []int{1, 10, 100} {
			var rec []string
			for i := range users {
				rec = append(rec, fmt.Sprintf(`{"uid":"u-%d","username":"user%d","departments":%s}`, i, i, list))
			}
			body := `{"dataType":"user","records":[` + strings.Join(rec, ",") + `]}`
			b.Run(fmt.Sprintf("%s/%d", driver, users), func(b *testing.B) {
				var t pushTimes
				for range b.N {
					b.StopTimer()
					s := storetest.Open(b, driver)
					r := pushRunner(b, s)
					pushNow(b, r, deptBody)
					b.StartTimer()
					t.add(timedPush(b, r, body))
				}
				t.report(b, float64(b.N*users*depts), "membership")
			})
		}
	}
}
