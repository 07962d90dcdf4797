package ldap_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosterd/roster/sources/ldap"
	"github.com/rosterd/roster/sources/ldap/ldaptest"
)

func TestTLS(t *testing.T) {
	s := ldaptest.Start(t, ldaptest.WithTLS(), ldaptest.WithLDIF(readFile(t, "testdata/openldap.ldif")))
	wrongCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(wrongCA, ldaptest.NewCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		url      string
		startTLS bool
		ca       string
		server   string
		want     string // "" succeeds
	}{
		{"ldaps", s.LDAPS, false, s.CAFile, "", ""},
		{"starttls", s.URL, true, s.CAFile, "", ""},
		{"ldaps wrong CA", s.LDAPS, false, wrongCA, "", "TLS: the server's certificate is not signed by a trusted CA (check ca_file)"},
		{"starttls wrong CA", s.URL, true, wrongCA, "", "StartTLS: the server's certificate is not signed by a trusted CA (check ca_file)"},
		{"ldaps system roots", s.LDAPS, false, "", "", "TLS: the server's certificate is not signed by a trusted CA"},
		{"wrong name", s.LDAPS, false, s.CAFile, "dc1.example.com", "TLS: the server's certificate is not valid for this name (check the url's host or server_name)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := openldapOptions(s)
			o.URL, o.StartTLS, o.CAFile, o.ServerName = c.url, c.startTLS, c.ca, c.server
			res, err := ldap.Fetch(context.Background(), o, &bytes.Buffer{})
			if c.want == "" {
				if err != nil || len(res.Records) != 3 {
					t.Fatalf("got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if ldap.IsTransient(err) {
				t.Errorf("a refused certificate is not transient: %v", err)
			}
		})
	}
}
