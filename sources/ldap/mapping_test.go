package ldap_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/ldap"
)

func fromLDIF(t *testing.T, flavor, ldif string) (*ldap.Result, []string) {
	t.Helper()
	o := ldap.Options{Source: "ad", URL: "ldap://dc1", BaseDN: "dc=example,dc=com", Flavor: flavor}
	res, err := ldap.FromLDIF(o, strings.NewReader(ldif))
	var verr *sources.ValidationError
	if err != nil && !errors.As(err, &verr) {
		t.Fatal(err)
	}
	var msgs []string
	if verr != nil {
		for _, e := range verr.Errors {
			msgs = append(msgs, e.Message)
		}
	}
	return res, msgs
}

func TestActiveDirectoryMap(t *testing.T) {
	res, errs := fromLDIF(t, ldap.FlavorActiveDirectory, `version: 1

# roster-search: users

dn: CN=Jane Doe,OU=Staff,DC=example,DC=com
objectGUID:: /xmWb4aLEdC0LQDAT8lk/w==
sAMAccountName: jdoe
givenName: Jane
sn: Doe
userAccountControl: 512

dn: CN=Bob Smith,OU=Staff,DC=example,DC=com
objectGUID:: AQIDBAUGBwgJCgsMDQ4PEA==
sAMAccountName: bsmith
userAccountControl: 514
manager: cn=jane doe,ou=staff,dc=example,dc=com
`)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	jane, bob := res.Records[0], res.Records[1]
	if jane.ExternalID != "6f9619ff-8b86-d011-b42d-00c04fc964ff" || jane.UserName != "jdoe" || jane.Active == nil || !*jane.Active {
		t.Errorf("jane: %+v", jane)
	}
	if bob.ExternalID != "04030201-0605-0807-090a-0b0c0d0e0f10" || bob.Active == nil || *bob.Active {
		t.Errorf("bob (userAccountControl 514, ACCOUNTDISABLE): %+v", bob)
	}
	if bob.Manager != jane.ExternalID {
		t.Errorf("a manager DN in another case names jane: %q", bob.Manager)
	}
}

func TestMapErrors(t *testing.T) {
	_, errs := fromLDIF(t, ldap.FlavorActiveDirectory, `version: 1

dn: CN=Short,DC=example,DC=com
objectGUID:: AQID
sAMAccountName: short

dn: CN=NoGUID,DC=example,DC=com
sAMAccountName: noguid

dn: CN=Twin,DC=example,DC=com
objectGUID:: /xmWb4aLEdC0LQDAT8lk/w==
sAMAccountName: twin
userAccountControl: lots

dn: CN=Twin Again,DC=example,DC=com
objectGUID:: /xmWb4aLEdC0LQDAT8lk/w==
sAMAccountName: twin2
mail: not-an-address

# roster-search: groups

dn: CN=A,DC=example,DC=com
cn: A
member: CN=B,DC=example,DC=com

dn: CN=B,DC=example,DC=com
cn: B
member: CN=A,DC=example,DC=com
`)
	want := []string{
		`ldap source ad: entry "CN=Short,DC=example,DC=com" (externalId): the objectGUID is not readable: it holds 3 bytes, not 16`,
		`ldap source ad: entry "CN=NoGUID,DC=example,DC=com" (externalId): the entry has no objectGUID`,
		`ldap source ad: entry "CN=Twin,DC=example,DC=com" (active): userAccountControl "lots" is not a number`,
		`ldap source ad: entry "CN=Twin Again,DC=example,DC=com" (externalId): objectGUID "6f9619ff-8b86-d011-b42d-00c04fc964ff" is already the id of entry "CN=Twin,DC=example,DC=com"`,
		`ldap source ad: entry "CN=Twin Again,DC=example,DC=com" (email): "not-an-address" is not a valid e-mail address`,
		`ldap source ad: group entry "CN=A,DC=example,DC=com" (group): the groups nest in a circle (A is a member of B is a member of A); SCIM groups cannot`,
	}
	for _, w := range want {
		if !slices.Contains(errs, w) {
			t.Errorf("missing error %q", w)
		}
	}
	if len(errs) != len(want) || t.Failed() {
		t.Errorf("got %d errors: %q", len(errs), errs)
	}
}

// FuzzFromLDIF maps arbitrary raw records with both flavors: no panic,
// and every problem names the source and an entry.
func FuzzFromLDIF(f *testing.F) {
	f.Add([]byte("version: 1\n\n# roster-search: users\n\ndn: CN=A,DC=x\nobjectGUID:: /xmWb4aLEdC0LQDAT8lk/w==\nsAMAccountName: a\nuserAccountControl: 514\nmanager: CN=A,DC=x\n\n# roster-search: groups\n\ndn: CN=G,DC=x\ncn: G\nmember: CN=A,DC=x\nmember: CN=G,DC=x\n"))
	f.Add([]byte("version: 1\n# roster-read: changed since 20261202100000Z\n\ndn: uid=a,dc=x\nentryUUID: 1\nuid: a\nmail: a@\nmanager: ,,=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, flavor := range []string{ldap.FlavorOpenLDAP, ldap.FlavorActiveDirectory} {
			o := ldap.Options{Source: "fz", URL: "ldap://dc1", BaseDN: "dc=x", Flavor: flavor}
			res, err := ldap.FromLDIF(o, bytes.NewReader(data))
			var verr *sources.ValidationError
			if errors.As(err, &verr) {
				for _, e := range verr.Errors {
					if !strings.HasPrefix(e.Message, "ldap source fz: ") || !strings.Contains(e.Message, "entry ") {
						t.Fatalf("error without source and entry: %q", e.Message)
					}
				}
			} else if err == nil && res == nil {
				t.Fatal("no result and no error")
			}
		}
	})
}

// TestMultiValuedMap: a path naming all the values of a multi-valued
// attribute gets every value of the LDAP attribute, in order, as
// consecutive attributes of the record; a binary certificate is base64;
// a path that takes one value gets the first, with a warning; an entry
// without the attribute gives no value (unassigned).
func TestMultiValuedMap(t *testing.T) {
	o := ldap.Options{Source: "corp", URL: "ldap://dc1", BaseDN: "dc=example,dc=com", Flavor: ldap.FlavorOpenLDAP,
		Map: map[string]string{"roles": "employeeType", "entitlements.value": "businessCategory",
			"x509Certificates.value": "userCertificate", `addresses[type eq "work"].locality`: "l"}}
	res, err := ldap.FromLDIF(o, strings.NewReader(`version: 1

dn: uid=a,dc=example,dc=com
entryUUID: 1
uid: a
employeeType: lead
employeeType:  staff 
businessCategory: vpn
userCertificate:: MIIBAgMEBQ==
l: Berlin
l: Potsdam

dn: uid=b,dc=example,dc=com
entryUUID: 2
uid: b
`))
	if err != nil {
		t.Fatal(err)
	}
	got := func(r sources.Record) []string {
		var out []string
		for _, a := range r.Attributes {
			if _, mapped := o.Map[a.Path]; mapped { // not the flavor's defaults
				out = append(out, a.Path+"="+a.Value)
			}
		}
		return out
	}
	wantA := []string{`addresses[type eq "work"].locality=Berlin`, "entitlements.value=vpn", "roles=lead", "roles=staff",
		"x509Certificates.value=MIIBAgMEBQ=="}
	if g := got(res.Records[0]); !slices.Equal(g, wantA) {
		t.Errorf("a: %q, want %q", g, wantA)
	}
	if g := got(res.Records[1]); len(g) != 0 {
		t.Errorf("b, who has none of the attributes: %q", g)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "l has 2 values") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// indexLDIF is a raw record whose users name managers before and after
// themselves, one outside the read and themselves, and whose groups list a
// user twice (member and uniqueMember), nest (G2 in G1, G1 read first), and
// name a member outside the read.
const indexLDIF = `version: 1

# roster-search: users

dn: uid=a,ou=people,dc=example,dc=com
entryUUID: id-a
uid: a
givenName: Ann
manager: uid=c,ou=people,dc=example,dc=com

dn: uid=b,ou=people,dc=example,dc=com
entryUUID: id-b
uid: b
mail: b@example.com
manager: UID=A,ou=people,dc=example,dc=com

dn: uid=c,ou=people,dc=example,dc=com
entryUUID: id-c
uid: c
title: Boss
manager: uid=c,ou=people,dc=example,dc=com

dn: uid=d,ou=people,dc=example,dc=com
entryUUID: id-d
uid: d
manager: uid=gone,ou=people,dc=example,dc=com

# roster-search: groups

dn: cn=G1,ou=groups,dc=example,dc=com
cn: G1
member: uid=b,ou=people,dc=example,dc=com
uniqueMember: uid=b,ou=people,dc=example,dc=com
member: cn=G2,ou=groups,dc=example,dc=com
member: uid=nobody,dc=elsewhere

dn: cn=G2,ou=groups,dc=example,dc=com
cn: G2
member: uid=d,ou=people,dc=example,dc=com
member: uid=b,ou=people,dc=example,dc=com

dn: cn=Empty,ou=groups,dc=example,dc=com
cn: Empty
`

// TestIndexEach: a read that keeps an Index, mapped again by Each, gives
// the records, groups, nesting and warnings of a read that keeps the
// records (the streamed sync's two passes against the whole one's one).
func TestIndexEach(t *testing.T) {
	o := ldap.Options{Source: "corp", URL: "ldap://dc1", BaseDN: "dc=example,dc=com"}
	whole, err := ldap.FromLDIF(o, strings.NewReader(indexLDIF))
	if err != nil {
		t.Fatal(err)
	}
	o.Index = true
	idx, err := ldap.FromLDIF(o, strings.NewReader(indexLDIF))
	if err != nil {
		t.Fatal(err)
	}
	if idx.Records != nil || idx.Index == nil || idx.Index.Records != 4 {
		t.Fatalf("an index read keeps no records: %+v", idx)
	}
	if !slices.Equal(idx.Groups, whole.Groups) || !slices.Equal(idx.Nested, whole.Nested) || !slices.Equal(idx.Warnings, whole.Warnings) ||
		idx.SHA256 != whole.SHA256 {
		t.Errorf("index read: groups %v nested %v warnings %q; whole: %v %v %q", idx.Groups, idx.Nested, idx.Warnings, whole.Groups, whole.Nested, whole.Warnings)
	}
	if len(whole.Warnings) != 2 {
		t.Errorf("warnings: %q", whole.Warnings)
	}
	if got := idx.Index.Managers(); !slices.Equal(got, []string{"id-a", "id-c"}) {
		t.Errorf("managers: %v", got)
	}
	var got []sources.Record
	if err := idx.Index.Each(o, strings.NewReader(indexLDIF), func(r sources.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(whole.Records) {
		t.Fatalf("each: %d records, whole %d", len(got), len(whole.Records))
	}
	for i := range got {
		w := whole.Records[i]
		if w.ExternalID != got[i].ExternalID || w.Manager != got[i].Manager || w.Line != got[i].Line || !slices.Equal(w.Groups, got[i].Groups) ||
			w.UserName != got[i].UserName || w.GivenName != got[i].GivenName || !slices.Equal(w.Attributes, got[i].Attributes) {
			t.Errorf("record %d: each %+v, whole %+v", i, got[i], w)
		}
	}
	if b := got[1]; b.Manager != "id-a" || !slices.Equal(b.Groups, []string{"G1", "G2"}) {
		t.Errorf("b: %+v", b)
	}
	if a := got[0]; a.Manager != "id-c" {
		t.Errorf("a's manager comes later: %+v", a)
	}
	if d := got[3]; d.Manager != "" || !slices.Equal(d.Groups, []string{"G2"}) {
		t.Errorf("d: %+v", d)
	}
	// Each refuses a raw record that is not the read's.
	short := indexLDIF[:strings.Index(indexLDIF, "dn: uid=d,")]
	if err := idx.Index.Each(o, strings.NewReader(short), func(sources.Record) error { return nil }); err == nil {
		t.Error("a raw record with fewer users than the read was taken")
	}
}
