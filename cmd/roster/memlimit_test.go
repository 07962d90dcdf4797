package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeFollowsCgroupMemoryLimit starts `roster serve` in a cgroup of
// its own with a 256 MiB memory limit and expects it to log a soft memory
// limit of 90% of that (230 MiB). It needs a writable cgroup file system
// (root on this machine and in CI) and skips, saying why, without one.
func TestServeFollowsCgroupMemoryLimit(t *testing.T) {
	dir, limitFile, err := childCgroup(fmt.Sprintf("roster-test-%d", os.Getpid()))
	if err != nil {
		t.Skipf("no cgroup of our own can be made here: %v", err)
	}
	defer os.Remove(dir)
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte("268435456"), 0o644); err != nil {
		t.Skipf("the cgroup's memory limit cannot be set: %v", err)
	}
	w := newWorkdir(t, "sqlite")
	w.write(t, "roster.yaml", "listen: 127.0.0.1:0\nlog: {dir: log, format: json}\nstore: {driver: sqlite, dsn: roster.db}\n")
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" serve`, "sh", dir, rosterBin)
	cmd.Dir = w.dir
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait() //nolint:errcheck // killed on purpose
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var log strings.Builder
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), `"soft memory limit"`) {
				found <- sc.Text()
				return
			}
		}
		found <- "no soft memory limit logged:\n" + log.String()
	}()
	select {
	case line := <-found:
		if !strings.Contains(line, `"MiB":230`) {
			t.Fatalf("want a soft limit of 230 MiB under a 256 MiB cgroup, got: %s", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("roster serve logged nothing about its memory limit within 30 s")
	}
}

// childCgroup makes a memory cgroup below the test's own (cgroup v2, then
// v1) and returns it with the name of its limit file.
func childCgroup(name string) (dir, limitFile string, err error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var base string
		switch {
		case parts[1] == "" && fileExists("/sys/fs/cgroup/cgroup.controllers"):
			base, limitFile = filepath.Join("/sys/fs/cgroup", parts[2]), "memory.max"
		case strings.Contains(","+parts[1]+",", ",memory,"):
			base, limitFile = filepath.Join("/sys/fs/cgroup/memory", parts[2]), "memory.limit_in_bytes"
		default:
			continue
		}
		dir = filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", "", err
		}
		return dir, limitFile, nil
	}
	return "", "", fmt.Errorf("no memory controller in /proc/self/cgroup")
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
