package ldap_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/rosterd/roster/sources/ldap"
)

// rangeServer answers like Active Directory for a group of n members with
// MaxValRange step: the group's member attribute comes as
// member;range=0-(step-1), the rest on request, the last part ending in *.
// slapd cannot answer so (a range is not an attribute option it knows),
// so this small LDAP server speaks the protocol on 127.0.0.1 instead.
type rangeServer struct {
	l        net.Listener
	n, step  int
	mu       sync.Mutex
	requests []string
}

func newRangeServer(t *testing.T, n, step int) *rangeServer {
	s := &rangeServer{n: n, step: step}
	s.l = fakeLDAP(t, s.search)
	return s
}

// fakeLDAP serves LDAP on 127.0.0.1 until the test ends: every bind
// succeeds, and search answers each search request (op is the
// SearchRequest) by sending entries before fakeLDAP ends it with success.
func fakeLDAP(t *testing.T, search func(op *ber.Packet, send func(entry *ber.Packet))) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	serve := func(c net.Conn) {
		defer c.Close()
		for {
			p, err := ber.ReadPacket(c)
			if err != nil || len(p.Children) < 2 {
				return
			}
			id := p.Children[0].Value.(int64)
			op := p.Children[1]
			switch op.Tag {
			case 0: // bind
				c.Write(message(id, result(1)).Bytes())
			case 2: // unbind
				return
			case 3: // search
				search(op, func(e *ber.Packet) { c.Write(message(id, e).Bytes()) })
				c.Write(message(id, result(5)).Bytes())
			}
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return l
}

func (s *rangeServer) userDN(i int) string {
	return fmt.Sprintf("CN=User %d,OU=Staff,DC=example,DC=com", i)
}

func (s *rangeServer) search(op *ber.Packet, send func(*ber.Packet)) {
	base := op.Children[0].Value.(string)
	var attrs []string
	for _, a := range op.Children[7].Children {
		attrs = append(attrs, a.Value.(string))
	}
	s.mu.Lock()
	s.requests = append(s.requests, strings.Join(attrs, ","))
	s.mu.Unlock()
	for _, e := range s.answer(base, attrs) {
		send(e)
	}
}

// answer gives the entries of one search.
func (s *rangeServer) answer(base string, attrs []string) []*ber.Packet {
	switch {
	case base == "": // the root DSE, empty here
		return nil
	case slices.Contains(attrs, "sAMAccountName"): // the users
		var out []*ber.Packet
		for i := range s.n {
			guid := make([]byte, 16)
			guid[15] = byte(i)
			guid[14] = byte(i >> 8)
			out = append(out, entry(s.userDN(i), map[string][][]byte{
				"objectGUID": {guid}, "sAMAccountName": {[]byte(fmt.Sprintf("user%d", i))}}))
		}
		return out
	case base == "DC=example,DC=com": // the groups
		return []*ber.Packet{entry("CN=Big,DC=example,DC=com", map[string][][]byte{"cn": {[]byte("Big")}, s.part(0)[0]: s.values(0)})}
	default: // a range request on the group
		var lo int
		fmt.Sscanf(attrs[0], "member;range=%d-*", &lo)
		return []*ber.Packet{entry(base, map[string][][]byte{s.part(lo)[0]: s.values(lo)})}
	}
}

// part names the range that starts at lo.
func (s *rangeServer) part(lo int) []string {
	hi := lo + s.step - 1
	if hi >= s.n-1 {
		return []string{fmt.Sprintf("member;range=%d-*", lo)}
	}
	return []string{fmt.Sprintf("member;range=%d-%d", lo, hi)}
}

func (s *rangeServer) values(lo int) [][]byte {
	var out [][]byte
	for i := lo; i < min(lo+s.step, s.n); i++ {
		out = append(out, []byte(s.userDN(i)))
	}
	return out
}

func message(id int64, op *ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	p.AppendChild(op)
	return p
}

func result(tag ber.Tag) *ber.Packet {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	return r
}

func entry(dn string, attrs map[string][][]byte) *ber.Packet {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for name, vals := range attrs {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, ""))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range vals {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v), ""))
		}
		a.AppendChild(set)
		list.AppendChild(a)
	}
	e.AppendChild(list)
	return e
}

func TestRangedMembers(t *testing.T) {
	// 3,200 members at 1,500 a step, as Active Directory sends them.
	srv := newRangeServer(t, 3200, 1500)
	o := ldap.Options{Source: "ad", URL: "ldap://" + srv.l.Addr().String(), BaseDN: "DC=example,DC=com",
		Flavor: ldap.FlavorActiveDirectory, Timeout: 10 * time.Second}
	var raw bytes.Buffer
	res, err := ldap.Fetch(context.Background(), o, &raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 3200 {
		t.Fatalf("%d records", len(res.Records))
	}
	for i, r := range res.Records {
		if !slices.Equal(r.Groups, []string{"Big"}) {
			t.Fatalf("record %d (%s) has groups %v; the ranges were not all read", i, r.UserName, r.Groups)
		}
	}
	want := []string{"member;range=1500-*", "member;range=3000-*"}
	srv.mu.Lock()
	got := srv.requests[3:] // after the root DSE, the users and the groups
	srv.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("range requests %v, want %v", got, want)
	}
	// The raw record holds the group's members under one name, complete.
	if n := strings.Count(raw.String(), "\nmember: "); n != 3200 || strings.Contains(raw.String(), "range=") {
		t.Errorf("the raw record holds %d members", n)
	}
	again, err := ldap.FromLDIF(o, &raw)
	if err != nil || len(again.Records) != 3200 || !slices.Equal(again.Records[3199].Groups, []string{"Big"}) {
		t.Fatalf("raw record read back: %v", err)
	}
}
