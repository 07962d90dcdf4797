package deploycheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// deployDir is deploy/, repoDir the repository root (the roster module).
var (
	deployDir = mustAbs("..")
	repoDir   = mustAbs("../..")
)

func mustAbs(rel string) string {
	abs, err := filepath.Abs(rel)
	if err != nil {
		panic(err)
	}
	return abs
}

// ci reports whether a missing tool is a failure (CI=true) rather than a skip.
func ci() bool { return os.Getenv("CI") == "true" }

// need returns the path of tool, or skips the test with a loud message
// (fails it under CI=true) when the tool is not installed.
func need(t *testing.T, tool, hint string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not installed (%s): THIS CHECK DID NOT RUN", tool, hint)
	if ci() {
		t.Fatal(msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

// run runs a command and returns its combined output; the test fails when
// it exits non-zero.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

func runErr(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

var (
	buildOnce sync.Once
	rosterBin string
	buildErr  error
	buildDir  string
)

// roster builds ./cmd/roster once per test run, as `make build` does, and
// returns the binary's path.
func roster(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "roster-deploycheck-")
		if buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "roster")
		// go test puts its own go first on PATH.
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/roster")
		cmd.Dir = repoDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/roster: %v\n%s", err, out)
			return
		}
		rosterBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return rosterBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
