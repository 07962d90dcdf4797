package csv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// genRow appends row i of the usual shape: leading zeros, a quoted comma, an
// e-mail address and three of 1,000 groups.
func genRow(b *strings.Builder, i int) {
	fmt.Fprintf(b, "%07d,Jürgen,\"Weiß, Jr.\",user%d,user%d@example.com,group%d|group%d|group%d,\n",
		i, i, i, i%1000, (i+7)%1000, (i+14)%1000)
}

func genRows(n int) string {
	var b strings.Builder
	b.Grow(n * 90)
	for i := range n {
		genRow(&b, i)
	}
	return b.String()
}

// rowReader generates n rows as they are read, so that measuring the
// reader's memory does not also measure the input.
type rowReader struct {
	next, n int
	buf     strings.Reader
	bytes   int64
}

func (g *rowReader) Read(p []byte) (int, error) {
	for g.buf.Len() == 0 {
		if g.next >= g.n {
			return 0, io.EOF
		}
		var b strings.Builder
		for end := min(g.next+1000, g.n); g.next < end; g.next++ {
			genRow(&b, g.next)
		}
		g.buf.Reset(b.String())
	}
	n, err := g.buf.Read(p)
	g.bytes += int64(n)
	return n, err
}

func BenchmarkRead100k(b *testing.B) {
	data := []byte(genRows(100_000))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Read(context.Background(), bytes.NewReader(data), Options{})
		if err != nil || len(res.Errors) != 0 || len(res.Records) != 100_000 {
			b.Fatalf("err %v, %d errors, %d records", err, len(res.Errors), len(res.Records))
		}
	}
}

// BenchmarkRead1M reads a million rows and reports the heap the result
// keeps (retained-MB) next to the speed; SPEC §11 wants a whole
// million-user sync under 500 MiB.
func BenchmarkRead1M(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		in := &rowReader{n: n}
		res, err := Read(context.Background(), in, Options{})
		if err != nil || len(res.Errors) != 0 || len(res.Records) != n {
			b.Fatalf("err %v, %d errors, %d records", err, len(res.Errors), len(res.Records))
		}
		b.SetBytes(in.bytes)
		b.StopTimer()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "retained-MB")
		runtime.KeepAlive(res)
		b.StartTimer()
	}
}
