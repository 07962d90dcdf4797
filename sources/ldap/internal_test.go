package ldap

import (
	"net/url"
	"testing"
)

func TestClearTextBind(t *testing.T) {
	cases := []struct {
		url      string
		startTLS bool
		password string
		want     bool
	}{
		{"ldap://dc1.example.com", false, "pw", true},
		{"ldap://10.0.0.5:389", false, "pw", true},
		{"ldap://dc1.example.com", true, "pw", false},
		{"ldaps://dc1.example.com", false, "pw", false},
		{"ldap://dc1.example.com", false, "", false},
		{"ldap://127.0.0.1:3890", false, "pw", false},
		{"ldap://[::1]:3890", false, "pw", false},
		{"ldap://localhost", false, "pw", false},
	}
	for _, c := range cases {
		u, _ := url.Parse(c.url)
		if got := clearTextBind(u, c.startTLS, c.password); got != c.want {
			t.Errorf("clearTextBind(%s, %v, %q) = %v", c.url, c.startTLS, c.password, got)
		}
	}
}
