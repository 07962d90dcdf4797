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

func TestLaterMark(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"1000", "999", true},
		{"999", "1000", false},
		{"0100", "99", true},
		{"20261202100001Z", "20261202100000Z", true},
		{"20261202100000Z", "20261202100000Z", false},
		{"5", "", true},
		{"", "5", false},
	}
	for _, c := range cases {
		if got := laterMark(c.a, c.b); got != c.want {
			t.Errorf("laterMark(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
