package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rosterd/roster/config"
	"github.com/rosterd/roster/daemon/tasks"
)

// fileState is what the watcher compares between two looks at a file.
type fileState struct {
	exists bool
	size   int64
	mtime  int64 // nanoseconds since 1970
	inode  uint64
}

// statFile follows symbolic links, so that a link swapped to a new target
// (as Kubernetes does with mounted ConfigMaps) is a change too.
func statFile(path string) (fileState, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	st := fileState{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.inode = sys.Ino
	}
	return st, nil
}

// watched is one watched source file.
type watched struct {
	path string
	seen fileState
	// changed is when seen last changed; zero when no change waits.
	changed time.Time
	// failing is set while the file cannot be looked at, so that the
	// problem is logged once.
	failing bool
}

// watchSet is the watcher's state: the watched files by source.
type watchSet struct {
	mu    sync.Mutex
	files map[string]*watched
}

// pending reports whether a change waits for its file to settle.
func (ws *watchSet) pending() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.files {
		if !w.changed.IsZero() {
			return true
		}
	}
	return false
}

// watch polls the watched files every PollInterval until ctx ends.
func (d *Daemon) watch(ctx context.Context) {
	tick := time.NewTicker(d.PollInterval)
	defer tick.Stop()
	for {
		d.pollFiles(ctx, d.Config(), time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollFiles brings the set of watched files in line with cfg (a reload
// may have changed it), then looks at each file once.
func (d *Daemon) pollFiles(ctx context.Context, cfg *config.Config, now time.Time) {
	ws := &d.watching
	ws.mu.Lock()
	if ws.files == nil {
		ws.files = map[string]*watched{}
	}
	want := map[string]string{}
	for _, src := range cfg.Sources {
		if queued(&src) && src.Type == config.TypeCSV && src.Watch {
			want[src.Name] = src.Path
		}
	}
	for name := range ws.files {
		if path, ok := want[name]; !ok || path != ws.files[name].path {
			delete(ws.files, name)
		}
	}
	var added []string
	for name, path := range want {
		if ws.files[name] == nil {
			ws.files[name] = &watched{path: path}
			added = append(added, name)
		}
	}
	ws.mu.Unlock()

	for _, name := range added {
		d.startWatching(ctx, name, now)
	}

	ws.mu.Lock()
	defer ws.mu.Unlock()
	for name, w := range ws.files {
		// Triggered under ws.mu, so that a change is never neither
		// pending here nor queued.
		if d.look(name, w, now) {
			if err := d.Trigger(name, tasks.TriggerWatch); err != nil {
				d.log.Warn("file changed but no sync could be started", "source", name, "err", err)
			}
		}
	}
}

// startWatching takes a file's first look. A file changed after the
// source's last successful sync (while roster was not running) counts as
// a change; a source that never synced has its first sync from Run.
func (d *Daemon) startWatching(ctx context.Context, name string, now time.Time) {
	d.watching.mu.Lock()
	w := d.watching.files[name]
	d.watching.mu.Unlock()
	if w == nil {
		return
	}
	st, err := statFile(w.path)
	if err != nil {
		d.log.Warn("cannot watch the source's file", "source", name, "path", w.path, "err", err)
	}
	var newer bool
	if st.exists {
		if state, err := d.store.GetSource(ctx, name); err == nil && state.LastSuccessAt != nil && time.Unix(0, st.mtime).After(*state.LastSuccessAt) {
			newer = true
		}
	}
	d.watching.mu.Lock()
	defer d.watching.mu.Unlock()
	w.seen = st
	if newer {
		d.log.Info("the source's file changed since its last sync", "source", name, "path", w.path)
		w.changed = now
	}
	d.log.Debug("watching the source's file", "source", name, "path", w.path)
}

// look compares the file with what was seen last and reports whether a
// change has settled (stayed unchanged for Debounce) and must be synced.
// ws.mu is held.
func (d *Daemon) look(name string, w *watched, now time.Time) bool {
	st, err := statFile(w.path)
	if err != nil {
		if !w.failing {
			d.log.Warn("cannot look at the source's file", "source", name, "path", w.path, "err", err)
			w.failing = true
		}
		return false
	}
	w.failing = false
	if st != w.seen {
		w.seen, w.changed = st, now
		return false
	}
	if w.changed.IsZero() || now.Sub(w.changed) < d.Debounce {
		return false
	}
	w.changed = time.Time{}
	if !st.exists {
		d.log.Info("the source's file was removed; it will be synced when it is back", "source", name, "path", w.path)
		return false
	}
	d.log.Info("the source's file changed", "source", name, "path", w.path)
	return true
}
