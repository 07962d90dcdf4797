package ldap_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/rosterd/roster/sources/ldap"
)

// markServer is a directory whose entries change while a read goes on: it
// answers the root DSE with highestCommittedUSN (Active Directory) or
// currentTime, and a user search with the users whose change marker
// passes the filter's (attr>=value), calling during after the first.
type markServer struct {
	l       net.Listener
	attr    string // uSNChanged or modifyTimestamp
	mu      sync.Mutex
	users   []markUser
	root    map[string][][]byte
	during  func(s *markServer) // holds mu
	filters []string
}

type markUser struct {
	login string
	mark  string
}

func newMarkServer(t *testing.T, attr string, users ...markUser) *markServer {
	s := &markServer{attr: attr, users: users, root: map[string][][]byte{}}
	s.l = fakeLDAP(t, s.search)
	return s
}

var geFilter = regexp.MustCompile(`\((\w+)>=([^)]*)\)`)

func (s *markServer) search(op *ber.Packet, send func(*ber.Packet)) {
	base := op.Children[0].Value.(string)
	filter, _ := goldap.DecompileFilter(op.Children[6])
	s.mu.Lock()
	defer s.mu.Unlock()
	if base == "" {
		send(entry("", s.root))
		return
	}
	s.filters = append(s.filters, filter)
	since := ""
	if m := geFilter.FindStringSubmatch(filter); m != nil {
		since = m[2]
	}
	sent := 0
	for i := range s.users {
		u := s.users[i]
		if since != "" && less(u.mark, since) {
			continue
		}
		guid := make([]byte, 16)
		guid[15] = byte(i + 1)
		send(entry(fmt.Sprintf("cn=%s,dc=example,dc=com", u.login), map[string][][]byte{
			"objectGUID": {guid}, "entryUUID": {[]byte(fmt.Sprintf("00000000-0000-0000-0000-%012d", i+1))},
			"sAMAccountName": {[]byte(u.login)}, "uid": {[]byte(u.login)}, s.attr: {[]byte(u.mark)}}))
		if sent++; sent == 1 && s.during != nil {
			s.during(s)
			s.during = nil
		}
	}
}

// less compares change markers: numbers by value, times as text.
func less(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return x < y
	}
	return a < b
}

func (s *markServer) options(flavor string) ldap.Options {
	return ldap.Options{Source: "dir", URL: "ldap://" + s.l.Addr().String(), BaseDN: "dc=example,dc=com", Flavor: flavor,
		GroupFilter: "-", Timeout: 10 * time.Second}
}

// TestWatermarkBeforeRead: user a is read first; then a changes (USN 1001)
// and b changes (1002), and b is read. The next read must begin at the
// highestCommittedUSN the root DSE gave before the users were searched
// (1000), not at the highest uSNChanged read (1002), which would hide
// a's change until the next full read.
func TestWatermarkBeforeRead(t *testing.T) {
	srv := newMarkServer(t, "uSNChanged", markUser{"a", "900"}, markUser{"b", "950"})
	srv.root["highestCommittedUSN"] = [][]byte{[]byte("1000")}
	srv.during = func(s *markServer) {
		s.users[0].mark, s.users[1].mark = "1001", "1002"
		s.root["highestCommittedUSN"] = [][]byte{[]byte("1002")}
	}
	o := srv.options(ldap.FlavorActiveDirectory)
	full, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	if err != nil || len(full.Records) != 2 {
		t.Fatalf("full read: %v %+v", err, full)
	}
	if full.Watermark != "1000" {
		t.Fatalf("watermark %q, want 1000, the root DSE's highestCommittedUSN before the read", full.Watermark)
	}
	o.Since = full.Watermark
	changed, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	if err != nil || !changed.Partial || len(changed.Records) != 2 || changed.Records[0].UserName != "a" {
		t.Fatalf("the changed-only read missed a's change: %v %+v (filters %q)", err, changed, srv.filters)
	}
	if changed.Watermark != "1002" {
		t.Errorf("watermark of the changed-only read %q, want 1002", changed.Watermark)
	}
}

// TestWatermarkCurrentTime: a server whose root DSE gives currentTime (as
// Active Directory's does) sets the start of the next modifyTimestamp
// read, less ChangeMargin, whatever the clock of this machine says.
func TestWatermarkCurrentTime(t *testing.T) {
	srv := newMarkServer(t, "modifyTimestamp", markUser{"a", "20240101115000Z"}, markUser{"b", "20240101120100Z"})
	srv.root["currentTime"] = [][]byte{[]byte("20240101120000.0Z")}
	res, err := ldap.Fetch(context.Background(), srv.options(ldap.FlavorOpenLDAP), &bytes.Buffer{})
	if err != nil || len(res.Records) != 2 {
		t.Fatalf("read: %v %+v", err, res)
	}
	if res.Watermark != "20240101115500Z" {
		t.Errorf("watermark %q, want 20240101115500Z (currentTime less %s)", res.Watermark, ldap.ChangeMargin)
	}
	// The changed-only read asks for modifyTimestamp from there on.
	o := srv.options(ldap.FlavorOpenLDAP)
	o.Since = res.Watermark
	changed, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	if err != nil || len(changed.Records) != 1 || changed.Records[0].UserName != "b" {
		t.Fatalf("changed-only read: %v %+v (filters %q)", err, changed, srv.filters)
	}
}
