package tasks_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
	"github.com/rosterd/roster/daemon/tasks"
)

// readRaw reads a task's raw record.
func readRawRecord(t *testing.T, r *tasks.Runner, task *store.Task) string {
	t.Helper()
	if task.RawRecord == "" {
		t.Fatalf("task %d (%s) has no raw record", task.ID, task.Status)
	}
	b, err := os.ReadFile(filepath.Join(r.Config.Dir, task.RawRecord))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hashCell finds a password hash in a raw record.
var hashCell = regexp.MustCompile(`"\$argon2id\$[^"]*"|\$2[aby]\$[^,\r\n]*`)

// TestRawRecordCSV: a csv source's raw record is its file byte for byte
// (byte order mark, CRLF, quoting, padding, blank lines) with only the
// initial passwords replaced by their hashes; an invalid file keeps its
// raw record, without a password in clear, and its task points to it.
// ROSTER_TEST_STREAM=1 runs it through the streamed sync.
func TestRawRecordCSV(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		dir := t.TempDir()
		file := filepath.Join(dir, "staff.csv")
		in := "\uFEFF1, Jane ,Doe,jdoe,jane@example.com,A|B,  Secret-One  \r\n" +
			"\r\n" +
			"2,\"Müller, Jr.\",Hans,hm,,, \"Se,cr\"\"et2\" \r\n" +
			"3,Zoë,Weiß,zw,,,\r\n"
		writeFile(t, file, in)
		r := runner(t, s, dir, "staff.csv")
		res, err := r.Sync(t.Context(), "staff", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusSucceeded {
			t.Fatalf("sync: %+v %v", res, err)
		}
		raw := readRawRecord(t, r, res.Task)
		hashes := hashCell.FindAllString(raw, -1)
		if len(hashes) != 2 {
			t.Fatalf("raw record holds %d hashes, want 2:\n%q", len(hashes), raw)
		}
		for i, pw := range []string{"Secret-One", `Se,cr"et2`} {
			h := strings.ReplaceAll(strings.Trim(hashes[i], `"`), `""`, `"`)
			if ok, err := password.Verify(h, pw); err != nil || !ok {
				t.Errorf("hash %d does not verify %q: %v", i, pw, err)
			}
		}
		want := "\uFEFF1, Jane ,Doe,jdoe,jane@example.com,A|B,  " + hashes[0] + "  \r\n" +
			"\r\n" +
			"2,\"Müller, Jr.\",Hans,hm,,, " + hashes[1] + " \r\n" +
			"3,Zoë,Weiß,zw,,,\r\n"
		if raw != want {
			t.Errorf("raw record\n got %q\nwant %q", raw, want)
		}

		// An invalid file: its raw record is kept, the failed task links
		// it, and no password stands in it in clear.
		bad := "1,Jane,Doe,jdoe,jane@,,Secret-One\r\n" +
			"2,Max \"M\",Bauer,mb,,,Secret-Two\r\n" +
			"4,Kim,Lee,klee,,,Secret-Four\r\n"
		writeFile(t, file, bad)
		res, err = r.Sync(t.Context(), "staff", tasks.Options{})
		if err != nil || res.Task.Status != store.StatusFailed {
			t.Fatalf("sync of an invalid file: %+v %v", res, err)
		}
		raw = readRawRecord(t, r, res.Task)
		if strings.Contains(raw, "Secret-") {
			t.Errorf("the raw record of an invalid file holds a password in clear:\n%q", raw)
		}
		// The whole file as it came, the password cells left empty.
		if want := "1,Jane,Doe,jdoe,jane@,,\r\n2,Max \"M\",Bauer,mb,,,\r\n4,Kim,Lee,klee,,,\r\n"; raw != want {
			t.Errorf("raw record of an invalid file\n got %q\nwant %q", raw, want)
		}
		if v := tasks.ViewOf(res.Task, nil); v.RawRecord == nil || *v.RawRecord != res.Task.RawRecord {
			t.Errorf("the failed task's raw_record: %v", v.RawRecord)
		}
		// An error after valid rows with passwords: streamed a record at a
		// time, their chunks were written before the error was read, and
		// still no password is hashed or kept.
		restore := tasks.SetStreamChunk(1)
		writeFile(t, file, "5,Ann,Able,ann,,,Secret-Five\r\n6,Ben,Baker,ben,,, Secret-Six\r\n7,Cy,Cole,cy,cy@,,Secret-Seven\r\n")
		res, err = r.Sync(t.Context(), "staff", tasks.Options{})
		restore()
		if err != nil || res.Task.Status != store.StatusFailed {
			t.Fatalf("sync of a file invalid after valid rows: %+v %v", res, err)
		}
		if raw, want := readRawRecord(t, r, res.Task), "5,Ann,Able,ann,,,\r\n6,Ben,Baker,ben,,, \r\n7,Cy,Cole,cy,cy@,,\r\n"; raw != want {
			t.Errorf("raw record of a file invalid after valid rows\n got %q\nwant %q", raw, want)
		}
		// Fixed, a retry reads the file again, not the invalid raw record.
		writeFile(t, file, in)
		retry, err := r.Retry(t.Context(), res.Task.ID, "")
		if err != nil || retry.Task.Status != store.StatusSucceeded {
			t.Fatalf("retry after the fix: %+v %v", retry, err)
		}
	})
}

// TestRawRecordPush: a push's raw record is its body byte for byte, with
// its white space, key order, custom fields and NocoBase's sourceName.
func TestRawRecordPush(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := pushRunner(t, s)
		body := "{\"sourceName\": \"api\",\n \"dataType\" : \"user\", \"records\":[\r\n" +
			"\t{\"uid\": 1001, \"username\":\"jdoe\", \"jobTitle\": \"Engineer\", \"extra\": {\"a\": [1, 2.50]}, \"email\": \"j\\u00f6e@example.com\"}]}\n"
		task := pushNow(t, r, body)
		if task.Status != store.StatusSucceeded {
			t.Fatalf("push: %s %s", task.Status, task.Errors)
		}
		if raw := readRawRecord(t, r, task); raw != body {
			t.Errorf("raw record\n got %q\nwant %q", raw, body)
		}
	})
}
