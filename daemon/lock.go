package daemon

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/rosterd/roster/daemon/store"
)

// lockDatabase makes sure only one daemon runs on an SQLite file: it holds
// an flock(2) on <database>.daemon.lock until the returned function is
// called (or the process dies). The lock file holds the owner's process
// id, for the message a second daemon prints. PostgreSQL and in-memory
// databases need no such lock.
func lockDatabase(st *store.Store) (func(), error) {
	db := st.Path()
	if st.Driver() != store.SQLite || db == "" {
		return func() {}, nil
	}
	path := db + ".daemon.lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the daemon lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := ""
			if b, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					owner = fmt.Sprintf(", held by process %d", pid)
				}
			}
			return nil, fmt.Errorf("another roster serve is already running on %s (lock %s%s): stop it first; to run several replicas, use PostgreSQL", db, path, owner)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The process id is informational; failing to write it is no reason to stop.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) //nolint:errcheck // see above
	}
	return func() {
		// The file stays: removing it would race with a daemon starting now.
		f.Truncate(0)                               //nolint:errcheck // informational only
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
		f.Close()
	}, nil
}
