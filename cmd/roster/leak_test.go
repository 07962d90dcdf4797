package main

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/store/storetest"
)

// leakPassword is the password of the row a stray quote swallows.
const leakPassword = "NextLinePassw0rdLEAK"

// leakRows is issue 16's file: the quote opened on the first row closes at
// the end of the second, so first_name holds the second row, password and
// all.
const leakRows = "2013,\"Pw,Leak,pwleak,,,\n2014,Next,Line,nextl,,," + leakPassword + "\"\n"

// TestSwallowedPasswordNeverShown uploads issue 16's file through roster
// serve, syncs it in place and pushes a record whose wrongly escaped
// quotes run its e-mail on over a password, and checks that the password
// is in none of the answers, the failed task's errors (admin API) or the
// daemon's log, while the errors still say where the problem is.
func TestSwallowedPasswordNeverShown(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			h := startHostile(t, driver)
			file := hostileStaff() + leakRows
			where := "runs on to line"

			r := h.do(t, "PUT", "/api/v1/sources/staff/file", hTokAdmin, file, nil)
			if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), where) {
				t.Errorf("the upload: %s, want 400 naming the lines", r)
			}

			h.w.write(t, "staff.csv", file)
			r = h.do(t, "POST", "/api/v1/sources/staff/sync", hTokAdmin, nil, nil)
			if r.code != http.StatusAccepted {
				t.Fatalf("POST sync: %s", r)
			}
			id := taskIDOf(t, r)
			if st := h.waitTaskDone(t, id); st != "failed" {
				t.Errorf("the sync of the file is %s, want failed", st)
			}
			r = h.do(t, "GET", fmt.Sprintf("/api/v1/tasks/%d", id), hTokAdmin, nil, nil)
			if r.code != http.StatusOK || !strings.Contains(string(r.body), where) {
				t.Errorf("the task: %s, want its errors naming the lines", r)
			}
			r = h.do(t, "GET", "/api/v1/tasks?source=staff", hTokAdmin, nil, nil)
			if r.code != http.StatusOK {
				t.Errorf("the task list: %s", r)
			}

			push := `{"dataType":"user","records":[{"uid":"p1","username":"pw","email":"pw@example.com\",\"password\":\"` + leakPassword + `"}]}`
			if r := h.do(t, "POST", "/api/v1/sources/api/push", hTokPushAPI, push, nil); r.code != http.StatusBadRequest {
				t.Errorf("the push: %s, want 400", r)
			}

			h.mu.Lock()
			transcript := h.transcript.String()
			h.mu.Unlock()
			if strings.Contains(transcript, leakPassword) {
				t.Errorf("the password appears in an HTTP answer:\n%s", truncate(transcript, 4000))
			}
			if logs := h.p.stderr.String(); strings.Contains(logs, leakPassword) {
				t.Errorf("the password appears in the daemon's log")
			}
			err := filepath.WalkDir(h.w.path("log"), func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				if err == nil && strings.Contains(string(b), leakPassword) {
					t.Errorf("the password appears in %s", path)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
