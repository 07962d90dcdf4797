package config

import (
	"strings"
	"testing"
)

func TestSetListen(t *testing.T) {
	for _, c := range []struct {
		name, file, addr, want string // want: "" or part of the error
	}{
		{"replaces", "listen: 127.0.0.1:8080\n", "127.0.0.1:9000", ""},
		{"any port", "listen: 127.0.0.1:8080\n", "127.0.0.1:0", ""},
		{"not an address", "listen: 127.0.0.1:8080\n", "8080", `--listen: listen: "8080" is not a host:port address`},
		{"bad port", "listen: 127.0.0.1:8080\n", "127.0.0.1:http2", `port "http2" is not a number`},
		{"metrics collide", "listen: 127.0.0.1:8080\nmetrics_listen: 127.0.0.1:9464\n", "127.0.0.1:9464", "metrics_listen: is the same address as listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.file), "roster.yaml")
			if err != nil {
				t.Fatal(err)
			}
			before := cfg.Listen
			err = cfg.SetListen(c.addr, "--listen")
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("SetListen(%q): %v", c.addr, err)
			case c.want == "" && cfg.Listen != c.addr:
				t.Fatalf("listen is %q, want %q", cfg.Listen, c.addr)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("SetListen(%q) = %v, want an error with %q", c.addr, err, c.want)
			case c.want != "" && cfg.Listen != before:
				t.Fatalf("a refused address changed listen to %q", cfg.Listen)
			}
		})
	}
}
