package ldap_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosterd/roster/sources"
	"github.com/rosterd/roster/sources/ldap"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openldapOptions(s *ldaptest.Server) ldap.Options {
	return ldap.Options{Source: "corp", URL: s.URL, BindDN: "cn=reader,dc=example,dc=com", BindPassword: "reader-password",
		BaseDN: "dc=example,dc=com", Flavor: ldap.FlavorOpenLDAP, PageSize: 2, Timeout: 10 * time.Second}
}

func byLogin(recs []sources.Record) map[string]sources.Record {
	m := map[string]sources.Record{}
	for _, r := range recs {
		m[r.UserName] = r
	}
	return m
}

func TestFetchOpenLDAP(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.WithLDIF(readFile(t, "testdata/openldap.ldif")))
	var raw bytes.Buffer
	res, err := ldap.Fetch(context.Background(), openldapOptions(s), &raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 3 {
		t.Fatalf("got %d records, want 3: %+v", len(res.Records), res.Records)
	}
	recs := byLogin(res.Records)
	jane, bob, clare := recs["jdoe"], recs["bsmith"], recs["cmueller"]
	if jane.GivenName != "Jane" || jane.FamilyName != "Doe" || jane.Email != "jane.doe@example.com" || jane.Phone != "+49 30 1234" {
		t.Errorf("jdoe mapped as %+v", jane)
	}
	if len(jane.ExternalID) != 36 || jane.ExternalID == bob.ExternalID {
		t.Errorf("externalIds are not entryUUIDs: %q %q", jane.ExternalID, bob.ExternalID)
	}
	if clare.GivenName != "Cläre" || clare.FamilyName != "Müller" {
		t.Errorf("base64 values read as %q %q", clare.GivenName, clare.FamilyName)
	}
	if !slices.Contains(jane.Attributes, sources.Attribute{Path: "title", Value: "Engineer"}) {
		t.Errorf("title not mapped: %+v", jane.Attributes)
	}
	if bob.Manager != jane.ExternalID || clare.Manager != jane.ExternalID || jane.Manager != "" {
		t.Errorf("managers: bob %q clare %q jane %q, want jane's id %q", bob.Manager, clare.Manager, jane.Manager, jane.ExternalID)
	}
	if !slices.Equal(jane.Groups, []string{"engineering"}) || !slices.Equal(clare.Groups, []string{"staff"}) {
		t.Errorf("groups: jane %v clare %v", jane.Groups, clare.Groups)
	}
	if !slices.Equal(res.Nested, []ldap.Nesting{{Child: "engineering", Parent: "staff"}}) {
		t.Errorf("nested: %+v", res.Nested)
	}
	// 1 bind, 2 user pages (3 users at 2 a page), 2 group pages... at most.
	if res.Requests < 3 || res.Entries != 5 {
		t.Errorf("requests %d, entries %d", res.Requests, res.Entries)
	}
	if strings.Contains(raw.String(), "secret") || strings.Contains(strings.ToLower(raw.String()), "userpassword") {
		t.Errorf("the raw record holds a password:\n%s", raw.String())
	}

	// The raw record maps to the same result.
	again, err := ldap.FromLDIF(openldapOptions(s), bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if again.SHA256 != res.SHA256 || len(again.Records) != 3 {
		t.Fatalf("raw record read back differs: %s vs %s", again.SHA256, res.SHA256)
	}
	for i := range res.Records {
		a, b := res.Records[i], again.Records[i]
		if a.ExternalID != b.ExternalID || a.UserName != b.UserName || a.GivenName != b.GivenName || a.Manager != b.Manager ||
			!slices.Equal(a.Groups, b.Groups) || !slices.Equal(a.Attributes, b.Attributes) {
			t.Errorf("record %d read back as %+v, was %+v", i, b, a)
		}
	}
}

func TestFetchErrors(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.WithLDIF(readFile(t, "testdata/openldap.ldif")+`
dn: cn=No Login,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
cn: No Login
sn: Login

dn: uid=JDOE2,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: JDOE
cn: Other Jane
sn: Doe
`))
	ctx := context.Background()
	t.Run("entries", func(t *testing.T) {
		res, err := ldap.Fetch(ctx, openldapOptions(s), &bytes.Buffer{})
		var verr *sources.ValidationError
		if !errors.As(err, &verr) || res == nil {
			t.Fatalf("want a validation error with the result, got %v", err)
		}
		want := []string{
			`ldap source corp: entry "cn=No Login,ou=people,dc=example,dc=com" (userName): the entry has no uid`,
			`ldap source corp: entry "uid=JDOE2,ou=people,dc=example,dc=com" (userName): the login "JDOE" is already the login of entry "uid=jdoe,ou=people,dc=example,dc=com"`,
		}
		for _, w := range want {
			if !slices.ContainsFunc(verr.Errors, func(e sources.FieldError) bool { return strings.HasPrefix(e.Message, w) }) {
				t.Errorf("no error %q in %+v", w, verr.Errors)
			}
		}
	})
	cases := []struct {
		name string
		edit func(o *ldap.Options)
		want string
	}{
		{"bind", func(o *ldap.Options) { o.BindPassword = "wrong" },
			`ldap source corp: ` + s.URL + `: the bind as "cn=reader,dc=example,dc=com" was refused: invalid credentials (check bind_dn and bind_password)`},
		{"base dn", func(o *ldap.Options) { o.BaseDN = "ou=nowhere,dc=example,dc=com" },
			`ldap source corp: base_dn "ou=nowhere,dc=example,dc=com" does not exist on the server`},
		{"unreachable", func(o *ldap.Options) { o.URL = "ldap://127.0.0.1:1"; o.Retries = 1; o.Backoff = time.Millisecond },
			`ldap source corp: ldap://127.0.0.1:1: connect:`},
		{"no downgrade", func(o *ldap.Options) { o.StartTLS = true },
			`ldap source corp: ` + s.URL + `: StartTLS failed, and roster does not fall back to clear text`},
		{"map", func(o *ldap.Options) { o.Map = map[string]string{"email": "userPassword"} },
			`ldap source corp: map email: userPassword holds passwords, which roster never reads`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := openldapOptions(s)
			c.edit(&o)
			res, err := ldap.Fetch(ctx, o, &bytes.Buffer{})
			if err == nil || res != nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got %v (result %v), want %q", err, res != nil, c.want)
			}
			if c.name == "unreachable" && !ldap.IsTransient(err) {
				t.Errorf("an unreachable server is not transient: %v", err)
			}
			if c.name == "bind" && ldap.IsTransient(err) {
				t.Errorf("a refused bind is transient: %v", err)
			}
		})
	}
}

func TestFormatGUID(t *testing.T) {
	// The GUID {6F9619FF-8B86-D011-B42D-00C04FC964FF} as AD stores it.
	g := []byte{0xFF, 0x19, 0x96, 0x6F, 0x86, 0x8B, 0x11, 0xD0, 0xB4, 0x2D, 0x00, 0xC0, 0x4F, 0xC9, 0x64, 0xFF}
	if got := ldap.FormatGUID(g); got != "6f9619ff-8b86-d011-b42d-00c04fc964ff" {
		t.Fatalf("got %s", got)
	}
}

func TestParseRange(t *testing.T) {
	cases := []struct {
		in       string
		base     string
		lo, hi   int
		isRanged bool
	}{
		{"member", "member", 0, 0, false},
		{"member;range=0-1499", "member", 0, 1499, true},
		{"member;range=1500-*", "member", 1500, -1, true},
		{"Member;Range=3-7", "Member", 3, 7, true},
		{"member;range=7-3", "member", 0, 0, false},
		{"member;range=x-*", "member", 0, 0, false},
		{"member;binary", "member", 0, 0, false},
	}
	for _, c := range cases {
		base, lo, hi, ok := ldap.ParseRange(c.in)
		if base != c.base || lo != c.lo || hi != c.hi || ok != c.isRanged {
			t.Errorf("ParseRange(%q) = %q %d %d %v", c.in, base, lo, hi, ok)
		}
	}
}

func TestLDIFRoundTrip(t *testing.T) {
	entries := []ldap.Entry{
		{DN: "uid=a,dc=example,dc=com", Attrs: []ldap.Attr{{Name: "cn", Values: [][]byte{[]byte("plain"), []byte(" leading space")}},
			{Name: "objectGUID", Values: [][]byte{{0, 1, 2, 0xff, '\n'}}},
			{Name: "description", Values: [][]byte{[]byte(strings.Repeat("long value ", 30))}},
			{Name: "userPassword", Values: [][]byte{[]byte("never")}},
			{Name: "unicodePwd", Values: [][]byte{[]byte("\"never-either\"")}},
			{Name: "UnicodePwd;binary", Values: [][]byte{{'"', 0, 'x', 0, '"', 0}}}}},
		{DN: "cn=Grüppe,dc=example,dc=com", Attrs: []ldap.Attr{{Name: "member", Values: [][]byte{[]byte("uid=a,dc=example,dc=com")}}}},
	}
	var buf bytes.Buffer
	w := ldap.NewLDIFWriter(&buf)
	w.Write(ldap.KindUser, &entries[0])
	w.Write(ldap.KindGroup, &entries[1])
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if l := strings.ToLower(buf.String()); strings.Contains(l, "never") || strings.Contains(l, "password") || strings.Contains(l, "unicodepwd") {
		t.Fatalf("a password was written:\n%s", buf.String())
	}
	var got []ldap.Entry
	var kinds []ldap.Kind
	err := ldap.ReadLDIF(&buf, func(k ldap.Kind, e *ldap.Entry) error {
		got, kinds = append(got, *e), append(kinds, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries[0].Attrs = entries[0].Attrs[:3]
	if len(got) != 2 || !slices.Equal(kinds, []ldap.Kind{ldap.KindUser, ldap.KindGroup}) {
		t.Fatalf("got %d entries, kinds %v", len(got), kinds)
	}
	for i := range got {
		if got[i].DN != entries[i].DN || len(got[i].Attrs) != len(entries[i].Attrs) {
			t.Fatalf("entry %d: %+v", i, got[i])
		}
		for j, a := range got[i].Attrs {
			if a.Name != entries[i].Attrs[j].Name || !slices.EqualFunc(a.Values, entries[i].Attrs[j].Values, bytes.Equal) {
				t.Errorf("entry %d attribute %d: %q %q", i, j, a.Name, a.Values)
			}
		}
	}
}

func TestReadLDIFErrors(t *testing.T) {
	cases := map[string]string{
		"version: 1\n\ncn: x\n":                     "ldif line 3: attribute cn before any dn",
		"dn: a=b\ncn:: !!!\n":                       "ldif line 2: the base64 value of cn is not readable",
		" continued\n":                              "ldif line 1: a continuation line follows no line",
		"# roster-search: things\n":                 `ldif line 1: unknown search "things"`,
		"dn: a=b\ndn: c=d\n":                        "ldif line 2: a new dn without a blank line before it",
		"dn: a=b\njpegPhoto:< file:///etc/passwd\n": "ldif line 2: values from URLs are not read",
	}
	for in, want := range cases {
		err := ldap.ReadLDIF(strings.NewReader(in), func(ldap.Kind, *ldap.Entry) error { return nil })
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ReadLDIF(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzReadLDIF(f *testing.F) {
	f.Add([]byte("version: 1\n\n# roster-search: users\n\ndn: uid=a,dc=x\ncn: a\nobjectGUID:: AAEC\n\n# roster-search: groups\n\ndn: cn=g,dc=x\nmember: uid=a,dc=x\n"))
	f.Add([]byte("dn: a=b\ncn: x\n y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var entries []ldap.Entry
		var kinds []ldap.Kind
		if err := ldap.ReadLDIF(bytes.NewReader(data), func(k ldap.Kind, e *ldap.Entry) error {
			entries, kinds = append(entries, *e), append(kinds, k)
			return nil
		}); err != nil {
			return
		}
		// What was read writes and reads back the same.
		var buf bytes.Buffer
		w := ldap.NewLDIFWriter(&buf)
		for i := range entries {
			w.Write(kinds[i], &entries[i])
		}
		w.Flush()
		var again []ldap.Entry
		if err := ldap.ReadLDIF(&buf, func(k ldap.Kind, e *ldap.Entry) error {
			again = append(again, *e)
			return nil
		}); err != nil {
			t.Fatalf("written LDIF does not read: %v\n%s", err, buf.String())
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries became %d", len(entries), len(again))
		}
	})
}

// TestChangedOnlyUSN: Active Directory's changed-only reads, over slapd
// with the AD schema and a root DSE that gives highestCommittedUSN. The
// next read begins at the root DSE's highestCommittedUSN (1500), read
// before the users, not at the highest uSNChanged among them (1000): a
// change made while the read goes on has a higher number than the first
// and would be missed behind the second (TestWatermarkBeforeRead).
func TestChangedOnlyUSN(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.WithRootDSE("highestCommittedUSN: 1500"), ldaptest.WithLDIF(`dn: cn=Old,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUser
cn: Old
sn: Old
objectGUID:: AAAAAAAAAAAAAAAAAAAAAQ==
sAMAccountName: old
uSNChanged: 100

dn: cn=New,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUser
cn: New
sn: New
objectGUID:: AAAAAAAAAAAAAAAAAAAAAg==
sAMAccountName: new
uSNChanged: 1000
`))
	o := openldapOptions(s)
	o.Flavor, o.UserFilter, o.GroupFilter = ldap.FlavorActiveDirectory, "(objectClass=adUser)", "-"
	full, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	if err != nil || len(full.Records) != 2 || full.Partial || full.Watermark != "1500" {
		t.Fatalf("full read: %v %+v", err, full)
	}
	// From uSNChanged 999 on: the entry changed at 1000 only.
	o.Since = "999"
	var raw bytes.Buffer
	changed, err := ldap.Fetch(context.Background(), o, &raw)
	if err != nil || len(changed.Records) != 1 || changed.Records[0].UserName != "new" || !changed.Partial || changed.Watermark != "1500" {
		t.Fatalf("changed-only read: %v %+v", err, changed)
	}
	// A raw record read again is the partial read it was, and moves no
	// watermark.
	again, err := ldap.FromLDIF(o, &raw)
	if err != nil || !again.Partial || again.Watermark != "" || len(again.Records) != 1 {
		t.Fatalf("changed-only raw record read back: %v %+v", err, again)
	}
	// No user changed: the watermark stays, so that the next read is the
	// same and skipped.
	o.Since = "1000"
	if none, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{}); err != nil || len(none.Records) != 0 || none.Watermark != "1000" {
		t.Fatalf("nothing changed since 1000: %v %+v", err, none)
	}
}

// TestChangedOnlyWithoutHighestUSN: a server whose root DSE gives no
// highestCommittedUSN gives no watermark: every read reads all users.
func TestChangedOnlyWithoutHighestUSN(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.WithLDIF(`dn: cn=Old,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUser
cn: Old
sn: Old
objectGUID:: AAAAAAAAAAAAAAAAAAAAAQ==
sAMAccountName: old
uSNChanged: 100
`))
	o := openldapOptions(s)
	o.Flavor, o.UserFilter, o.GroupFilter = ldap.FlavorActiveDirectory, "(objectClass=adUser)", "-"
	full, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	if err != nil || len(full.Records) != 1 || full.Watermark != "" {
		t.Fatalf("full read: %v %+v", err, full)
	}
	if !slices.ContainsFunc(full.Warnings, func(w string) bool { return strings.Contains(w, "no highestCommittedUSN") }) {
		t.Errorf("no warning: %q", full.Warnings)
	}
}

// TestChangedOnlyTimestamp: with modifyTimestamp (slapd, whose root DSE
// has no currentTime) the next read begins ChangeMargin before this one
// started by this machine's clock, not at the latest modifyTimestamp read
// (here one in the future, which would hide every change until then).
func TestChangedOnlyTimestamp(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.WithLDIF(`dn: uid=old,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: old
cn: Old
sn: Old
modifyTimestamp: 20200101000000Z

dn: uid=future,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: future
cn: Future
sn: Future
modifyTimestamp: 20990101000000Z
`))
	o := openldapOptions(s)
	o.GroupFilter = "-"
	before := time.Now().Add(-ldap.ChangeMargin).UTC().Truncate(time.Second)
	full, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	after := time.Now().Add(-ldap.ChangeMargin).UTC()
	if err != nil || len(full.Records) != 2 {
		t.Fatalf("full read: %v %+v", err, full)
	}
	mark, err := time.Parse("20060102150405Z", full.Watermark)
	if err != nil || mark.Before(before) || mark.After(after) {
		t.Fatalf("watermark %q, want the read's start less %s (%s to %s)", full.Watermark, ldap.ChangeMargin, before, after)
	}
	// The next changed-only read reads a change made now.
	s.Apply("dn: uid=old,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: Changed\n")
	o.Since = full.Watermark
	changed, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
	if err != nil || !changed.Partial || byLogin(changed.Records)["old"].FamilyName != "Changed" {
		t.Fatalf("changed-only read: %v %+v", err, changed)
	}
}
