package push

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processCPU is the user and system time this process has used: on a
// machine shared with other work a steadier figure than the wall clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// chainBody is a department payload of n departments, each one's parent
// the one before it: the deepest tree a payload of n records can hold.
func chainBody(n int) []byte {
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
	return []byte(b.String())
}

// wideBody is a user payload of users users with depts departments each.
func wideBody(users, depts int) []byte {
	var b strings.Builder
	b.WriteString(`{"dataType":"user","records":[`)
	for u := range users {
		if u > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uid":"u-%d","username":"user%d","departments":[`, u, u)
		for d := range depts {
			if d > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"d-` + strconv.Itoa(d) + `"`)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkDecodeChain validates chains of 1k, 10k and 100k departments:
// the time per department must stay flat (validation before the 202 is
// linear in the payload).
func BenchmarkDecodeChain(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		body := chainBody(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*n), "cpu-ns/record")
		})
	}
}

// BenchmarkDecodeWide validates users with as many departments as
// maxDepartments allows, in payloads of 1, 10 and 100 such users.
func BenchmarkDecodeWide(b *testing.B) {
	for _, users := range []int{1, 10, 100} {
		body := wideBody(users, maxDepartments)
		b.Run(strconv.Itoa(users), func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*users*maxDepartments), "ns/department")
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N*users*maxDepartments), "cpu-ns/department")
		})
	}
}
