package deploycheck

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rosterd/roster/config"
)

const containerfile = "container/Dockerfile"

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

func parseDockerfile(t *testing.T, data string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{start, strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() != 0 {
		t.Fatalf("%s: the last instruction ends with a continuation", containerfile)
	}
	return out
}

func TestContainerfile(t *testing.T) {
	ins := parseDockerfile(t, string(readFile(t, filepath.Join(deployDir, containerfile))))
	var froms []instruction
	var build *instruction
	stageOfBuild, lastUser := -1, ""
	var entrypoint, expose string
	for i, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in)
			lastUser = ""
		case "RUN":
			if strings.Contains(in.args, "go build") {
				if build != nil {
					t.Fatalf("%s:%d: a second go build line", containerfile, in.line)
				}
				build = &ins[i]
				stageOfBuild = len(froms) - 1
			}
		case "USER":
			lastUser = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "EXPOSE":
			expose = in.args
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%s: %d FROM lines, want a multi-stage build", containerfile, len(froms))
	}
	if build == nil {
		t.Fatalf("%s: no RUN ... go build line", containerfile)
	}
	if stageOfBuild == len(froms)-1 {
		t.Errorf("%s:%d: go build runs in the final stage", containerfile, build.line)
	}
	if !strings.Contains(froms[stageOfBuild].args, "golang:") {
		t.Errorf("%s:%d: the build stage is not a golang image", containerfile, froms[stageOfBuild].line)
	}
	final := froms[len(froms)-1].args
	if !strings.Contains(final, "distroless/static") && !strings.HasPrefix(final, "scratch") {
		t.Errorf("%s: final stage %q is neither distroless static nor scratch", containerfile, final)
	}
	for _, want := range []string{"CGO_ENABLED=0 ", "-trimpath", "./cmd/roster"} {
		if !strings.Contains(build.args, want) {
			t.Errorf("%s:%d: the go build line lacks %q", containerfile, build.line, want)
		}
	}
	// The final stage's user: numeric, not root.
	uid, _, _ := strings.Cut(lastUser, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("%s: the final stage's USER is %q, want a numeric non-root uid", containerfile, lastUser)
	}
	if !strings.Contains(expose, "8080") {
		t.Errorf("%s: EXPOSE %q, want 8080", containerfile, expose)
	}
	if entrypoint != `["/usr/local/bin/roster", "serve", "--config", "/etc/roster/roster.yaml"]` {
		t.Errorf("%s: ENTRYPOINT %s, want roster serve --config /etc/roster/roster.yaml", containerfile, entrypoint)
	}
}

// TestContainerBuildLine runs the go build line of the Dockerfile, as
// written, in the repository root, with its output folder moved to a
// temporary one, and checks that the result is a static binary that
// carries the version it was given.
func TestContainerBuildLine(t *testing.T) {
	sh := need(t, "sh", "a POSIX shell")
	var line string
	for _, in := range parseDockerfile(t, string(readFile(t, filepath.Join(deployDir, containerfile)))) {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			line = in.args
		}
	}
	m := regexp.MustCompile(`-o (/\S+)/roster `).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("%s: the go build line has no -o /DIR/roster: %s", containerfile, line)
	}
	out := t.TempDir()
	line = strings.Replace(line, m[0], "-o "+out+"/roster ", 1)
	cmd := exec.Command(sh, "-c", line)
	cmd.Dir = repoDir
	// go is first on PATH in the golang image; here go test put its own
	// there. CGO_ENABLED must be turned off by the line itself.
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-deploycheck")
	cmd.Env = append(cmd.Env, "CGO_ENABLED=1") // the line must turn cgo off itself
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	bin := filepath.Join(out, "roster")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (PT_INTERP): not for a distroless static image", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
	v := run(t, "", bin, "version")
	if !strings.Contains(v, "v0.0.0-deploycheck") {
		t.Errorf("roster version = %q: -X main.version did not take", v)
	}
}

// TestContainerConfig parses the image's default config (after moving its
// /var/lib/roster to a temporary folder).
func TestContainerConfig(t *testing.T) {
	data := string(readFile(t, filepath.Join(deployDir, "container/roster.yaml")))
	tmp := t.TempDir()
	data = strings.ReplaceAll(data, "/var/lib/roster", tmp)
	cfg, err := config.Parse([]byte(data), filepath.Join(tmp, "roster.yaml"))
	if err != nil {
		t.Fatalf("deploy/container/roster.yaml: %v", err)
	}
	if cfg.Listen != "0.0.0.0:8080" {
		t.Errorf("listen = %s: a container must listen on all interfaces on 8080", cfg.Listen)
	}
	// The image ships no token (the Dockerfile and docs/operations.md say
	// so): whoever runs it mounts a config with their own.
	if len(cfg.Tokens) != 0 || !strings.Contains(data, "NO tokens") {
		t.Errorf("deploy/container/roster.yaml: %d tokens; the image must ship none and say so", len(cfg.Tokens))
	}
}
