// Package memlimit gives the Go runtime a soft memory limit below the hard
// limit of the cgroup roster runs in (Kubernetes resources.limits.memory,
// systemd MemoryMax=, docker --memory). Near that limit the garbage
// collector then works harder instead of letting the kernel kill roster in
// the middle of a large sync. GOMEMLIMIT, when set, wins.
package memlimit

import (
	"bufio"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Share is the part of the cgroup's limit given to the Go heap; the rest
// covers what the runtime does not count (stacks in use, SQLite's page
// cache outside the heap is counted, binary, kernel buffers).
const Share = 0.9

// Set applies Share of the cgroup limit as the runtime's soft memory limit
// and returns it, or 0 when GOMEMLIMIT is set or no limit is found.
func Set() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := CgroupLimit(os.DirFS("/"))
	if !ok {
		return 0
	}
	soft := int64(float64(limit) * Share)
	debug.SetMemoryLimit(soft)
	return soft
}

// CgroupLimit reads the memory limit of the process's cgroup from fsys (the
// root file system): cgroup v2 first (memory.max of the process's group,
// then of the namespace root, which is what a container sees), then v1
// (memory.limit_in_bytes). Unlimited is reported as no limit.
func CgroupLimit(fsys fs.FS) (int64, bool) {
	groups := selfCgroups(fsys)
	var candidates []string
	if p, ok := groups[""]; ok {
		candidates = append(candidates, path.Join("sys/fs/cgroup", p, "memory.max"), "sys/fs/cgroup/memory.max")
	}
	if p, ok := groups["memory"]; ok {
		candidates = append(candidates, path.Join("sys/fs/cgroup/memory", p, "memory.limit_in_bytes"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes")
	}
	for _, c := range candidates {
		b, err := fs.ReadFile(fsys, c)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 says "unlimited" with a number near the largest int64.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// selfCgroups reads /proc/self/cgroup: hierarchy controllers → path, with
// "" for the v2 unified hierarchy.
func selfCgroups(fsys fs.FS) map[string]string {
	f, err := fsys.Open("proc/self/cgroup")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}
