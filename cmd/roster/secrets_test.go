package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/daemon/password"
	"github.com/rosterd/roster/daemon/store"
	"github.com/rosterd/roster/daemon/store/storetest"
)

// TestSecretsStayHidden runs every command that touches a file with
// initial passwords (check, dry run, a failed sync, task, tasks, sources,
// retry, an upload, invalid files) with debug logs, and then looks for the
// clear passwords everywhere roster writes: stdout, stderr, the log
// folder, the task rows and, on SQLite, the database files. Raw records
// must hold argon2id hashes, with mode 0600 in 0700 folders (SPEC §2, §5,
// §10).
func TestSecretsStayHidden(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			secretsStayHidden(t, newWorkdir(t, driver))
		})
	}
}

func secretsStayHidden(t *testing.T, w *workdir) {
	good := map[string]string{ // externalId → initial password
		"01001": "Sommer2026!xyz",
		"01002": "Winter2027?abc",
		"01003": "Herbst,Geheim\"9", // quoted in the CSV
		"01004": "Fruehling#2028",
	}
	// Passwords of invalid rows: they must not show up in error messages.
	invalid := []string{"kurz7", "Geheim\x01Passwort99", "Pass\xffwort-123"}
	needles := []string{"Sommer2026", "Winter2027", "Herbst,Geheim", "Fruehling#2028", "kurz7", "Passwort99", "wort-123", "Swallowed-Pw-42"}

	w.writeConfig(t, settings{LogLevel: "debug", LogFormat: "json"})
	var outs []result
	run := func(code int, args ...string) result {
		t.Helper()
		r := w.want(t, code, append(args, "-v")...)
		outs = append(outs, r)
		return r
	}
	people := []person{
		{ID: "01001", First: "Jane", Last: "Doe", Login: "jdoe", Email: "jane@example.com", Groups: "Eng", Password: good["01001"]},
		{ID: "01002", First: "Max", Last: "Bauer", Login: "mbauer", Password: good["01002"]},
		{ID: "01003", First: "Holger", Last: "Rose", Login: "HRLOGIN", Password: good["01003"]},
	}
	w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin,,,\n")
	run(0, "sync", "hr")
	w.write(t, "staff.csv", csvOf(people))

	run(0, "check", "--csv", "staff.csv")
	run(1, "sync", "staff", "--dry-run") // the login conflict
	run(1, "sync", "staff", "--dry-run", "--json")
	failed := decodeTask(t, run(1, "sync", "staff", "--json").stdout)
	if failed.Status != "failed" || failed.RawRecord == nil {
		t.Fatalf("conflicting sync: %+v", failed)
	}
	raw := w.read(t, *failed.RawRecord)
	if n := strings.Count(raw, "$argon2id$"); n != 3 {
		t.Errorf("the raw record holds %d argon2id hashes, want 3:\n%s", n, raw)
	}
	run(0, "task", fmt.Sprint(failed.ID), "--json")
	run(0, "task", fmt.Sprint(failed.ID))
	run(0, "tasks", "--json")
	run(0, "tasks")
	run(0, "sources", "--json")

	w.write(t, "hr.csv", "h1,Hans,Hr,hrlogin2,,,\n")
	run(0, "sync", "hr")
	retried := decodeTask(t, run(0, "retry", fmt.Sprint(failed.ID), "--json").stdout)
	if retried.Status != "succeeded" || retried.Counts.Created != 3 {
		t.Fatalf("retry: %+v", retried)
	}
	run(0, "task", fmt.Sprint(retried.ID), "--json")

	people = append(people, person{ID: "01004", First: "Fritz", Last: "Frueh", Login: "ffrueh", Password: good["01004"]})
	w.write(t, "upload.csv", csvOf(people))
	run(0, "sync", "staff", "--file", "upload.csv", "--json")
	run(0, "sync", "staff", "--dry-run", "--json")

	bad := csvOf(people) + csvOf([]person{
		{ID: "01005", First: "Kurt", Last: "Kurz", Login: "kkurz", Password: invalid[0]},
		{ID: "01006", First: "Carl", Last: "Ctl", Login: "cctl", Password: invalid[1]},
		{ID: "01007", First: "Bea", Last: "Bad", Login: "bbad", Password: invalid[2]},
	}) +
		// A stray quote swallows the next row, password and all (issue 16).
		"01008,\"Pw,Leak,pwleak,,,\n01009,Next,Line,nextl,,,Swallowed-Pw-42\"\n" +
		// A password that lost its commas lands in the e-mail column.
		"01010,Lost,Commas,lcommas,Swallowed-Pw-42\n"
	w.write(t, "invalid.csv", bad)
	r := run(1, "check", "--csv", "invalid.csv")
	for _, line := range []string{"line 5, column 7 (password): the password is shorter than 8 characters", "line 6, column 7 (password)", "line 7, column 7 (password)"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("check does not report %q:\n%s", line, r)
		}
	}
	run(1, "sync", "staff", "--file", "invalid.csv", "--json")
	w.write(t, "staff.csv", bad)
	run(1, "sync", "staff", "--dry-run")
	bt := decodeTask(t, run(1, "sync", "staff", "--json").stdout)
	run(0, "task", fmt.Sprint(bt.ID), "--json")

	// Output.
	for _, r := range outs {
		for _, s := range needles {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("the password %q appears in the output of:\n%s", s, r)
			}
		}
	}
	debugLogged := false
	for _, r := range outs {
		debugLogged = debugLogged || strings.Contains(r.stderr, `"level":"INFO"`)
	}
	if !debugLogged {
		t.Errorf("-v with log.level debug logged nothing; the check proves little")
	}

	// Files: everything in the work folder except the CSV files the test
	// wrote, and the SQLite database files.
	inputs := map[string]bool{"staff.csv": true, "upload.csv": true, "invalid.csv": true, "hr.csv": true}
	scan := func(root string) {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if rel, _ := filepath.Rel(w.dir, path); inputs[rel] {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range needles {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("the password %q is written in %s", s, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	scan(w.dir)
	if w.driver == store.SQLite {
		scan(filepath.Dir(w.dsn))
	}

	// Raw records: 0600 files in 0700 folders, hashes instead of passwords.
	sync := filepath.Join(w.dir, "log", "user-data-sync")
	for _, dir := range []string{sync, filepath.Join(sync, "staff"), filepath.Join(sync, "hr")} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("folder %s: %v, mode %v; want 0700", dir, err, fi.Mode().Perm())
		}
	}
	files := append(w.rawFiles(t, "staff"), w.rawFiles(t, "hr")...)
	if len(files) == 0 {
		t.Fatal("no raw records")
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("raw record %s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}

	// The SQLite database holds the admin page's session secret: 0600,
	// whatever the umask the binary ran under.
	if w.driver == store.SQLite {
		if fi, err := os.Stat(w.dsn); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the database %s: %v, mode %v; want 0600", w.dsn, err, fi.Mode().Perm())
		}
	}

	// The directory holds hashes that verify: the retry carried the hashes
	// of the raw record into the directory intact.
	st := w.state(t, "staff")
	for e, pw := range good {
		h := st.Hashes[e]
		if !strings.HasPrefix(h, "$argon2id$") {
			t.Errorf("user %s: password hash %q", e, h)
			continue
		}
		if ok, err := password.Verify(h, pw); !ok || err != nil {
			t.Errorf("user %s: the stored hash does not verify the initial password (%v)", e, err)
		}
	}

	// Task rows and held plans.
	s := w.open(t)
	defer s.Close()
	var texts []string
	if err := s.DB().Raw(`SELECT counts || warnings || errors || raw_record FROM tasks`).Scan(&texts).Error; err != nil {
		t.Fatal(err)
	}
	var plans []string
	if err := s.DB().Raw(`SELECT plan FROM held_plans`).Scan(&plans).Error; err != nil {
		t.Fatal(err)
	}
	for _, text := range append(texts, plans...) {
		for _, n := range needles {
			if strings.Contains(text, n) {
				t.Errorf("the password %q is stored in a task: %s", n, text)
			}
		}
	}
}

// TestConfigSecretsStayHidden checks that errors about the store and the
// config never quote a DSN password or a token hash (SPEC §10).
func TestConfigSecretsStayHidden(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []string{
		"store:\n  driver: postgres\n  dsn: 'postgres://roster:S3cretPW@127.0.0.1:1/db?sslmode=disable'\n",
		"store:\n  driver: postgres\n  dsn: 'host=127.0.0.1 port=1 user=roster password=S3cretPW dbname=db sslmode=disable'\n",
		"store:\n  driver: postgres\n  dsn: 'S3cretPW'\n",
		"tokens:\n  - name: okta\n    hash: sha256:S3cretPW\n    scopes: [scim:read]\n",
		"tokens:\n  - name: okta\n    hash: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\n    scopes: [bogus]\n  - name: okta\n    hash: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\n    scopes: [admin]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, "roster.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runRoster(t, dir, "", nil, "tasks")
		if r.code == 0 {
			t.Errorf("config %q: want an error:\n%s", cfg, r)
		}
		if strings.Contains(r.stdout+r.stderr, "S3cretPW") {
			t.Errorf("a secret of the config shows in:\n%s", r)
		}
		if strings.Contains(r.stdout+r.stderr, "2c26b46b") {
			t.Errorf("a token hash shows in:\n%s", r)
		}
	}
}
