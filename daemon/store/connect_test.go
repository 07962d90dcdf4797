package store_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rosterd/roster/daemon/store"
)

// closedPort is a TCP address on loopback that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Connect makes no round trip, so it succeeds with a PostgreSQL that does
// not answer; Ping and Open then fail with an error marked unavailable.
// A DSN that cannot be parsed fails at once.
func TestConnectDoesNotNeedTheDatabase(t *testing.T) {
	dsn := "postgres://roster@" + closedPort(t) + "/roster?sslmode=disable&connect_timeout=2"
	s, err := store.Connect(store.Postgres, dsn)
	if err != nil {
		t.Fatalf("Connect to a closed port: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); !store.IsUnavailable(err) {
		t.Fatalf("Ping of a closed port = %v; want an error marked unavailable", err)
	}
	if _, err := store.Open(ctx, store.Postgres, dsn); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a closed port = %v; want ErrUnavailable", err)
	}
	if _, err := store.Connect(store.Postgres, "postgres://%zz"); err == nil || store.IsUnavailable(err) {
		t.Fatalf("Connect with a malformed DSN = %v; want a plain error", err)
	}
}
