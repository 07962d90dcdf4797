// Package ldaptest starts a real OpenLDAP server (Debian's slapd) for
// roster's tests: on 127.0.0.1, on free ports, with a temporary database
// and configuration in the test's temporary folder, stopped when the test
// ends. Without slapd the test skips loudly, or fails when CI=true.
package ldaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Suffix, RootDN and RootPassword of every test server.
const (
	Suffix       = "dc=example,dc=com"
	RootDN       = "cn=admin,dc=example,dc=com"
	RootPassword = "secret-root-password"
)

// ADSchema defines the Active Directory attributes roster reads, so that
// slapd can hold AD-shaped entries: objectGUID (binary), sAMAccountName,
// userPrincipalName, userAccountControl, uSNChanged, highestCommittedUSN (for the root
// DSE, WithRootDSE), and the classes
// adUser (auxiliary, beside inetOrgPerson) and adGroup. OIDs are under
// an example arc.
const ADSchema = `attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'objectGUID'
	EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'userAccountControl'
	EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.5 NAME 'uSNChanged'
	EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.6 NAME 'employeeID'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.7 NAME 'department'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.8 NAME 'highestCommittedUSN'
	EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'adUser' AUXILIARY
	MAY ( objectGUID $ sAMAccountName $ userPrincipalName $ userAccountControl $ uSNChanged $ employeeID $ department ) )
objectclass ( 1.3.6.1.4.1.55555.2.2 NAME 'adGroup' AUXILIARY
	MAY ( objectGUID $ sAMAccountName $ uSNChanged ) )
`

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT; LDAPS is ldaps://127.0.0.1:PORT when
	// the server was started WithTLS.
	URL, LDAPS string
	Dir        string
	// CAFile holds the PEM CA that signed the server's certificate, and
	// CA is the same as a pool (WithTLS only).
	CAFile string
	CA     *x509.CertPool
	conf   string
	cmd    *exec.Cmd
	t      testing.TB
}

// Option changes how a server starts.
type Option func(*settings)

type settings struct {
	tls     bool
	ldif    string
	rootDSE string
}

// WithTLS makes the server speak ldaps:// beside ldap:// (with StartTLS)
// with a certificate for 127.0.0.1 and localhost signed by a CA made for
// the test.
func WithTLS() Option { return func(s *settings) { s.tls = true } }

// WithLDIF loads entries with slapadd before the server starts (fast, for
// large directories). The suffix entry is added first unless the LDIF
// holds it.
func WithLDIF(ldif string) Option { return func(s *settings) { s.ldif = ldif } }

// WithRootDSE adds attributes to the server's root DSE, given as the
// lines of an LDIF entry without its dn ("highestCommittedUSN: 1500", as
// Active Directory's root DSE holds); slapd's rootDSE directive.
func WithRootDSE(attributes string) Option { return func(s *settings) { s.rootDSE = attributes } }

// SlapdPath finds slapd.
func SlapdPath() (string, bool) {
	for _, p := range []string{"/usr/sbin/slapd", "/usr/local/libexec/slapd"} {
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	p, err := exec.LookPath("slapd")
	return p, err == nil
}

// Start starts a server for the test, with the suffix entry and the
// organisational units ou=people and ou=groups, and stops it at the end.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var st settings
	for _, o := range opts {
		o(&st)
	}
	slapd, ok := SlapdPath()
	if !ok {
		if os.Getenv("CI") == "true" {
			t.Fatal("slapd is not installed; under CI=true the ldap tests must run (apt-get install slapd ldap-utils)")
		}
		t.Skip("SKIPPED LOUDLY: slapd is not installed (apt-get install slapd ldap-utils); the ldap tests did not run")
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, t: t}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "db"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "ad.schema"), []byte(ADSchema), 0o600))
	var conf strings.Builder
	for _, sc := range []string{"core", "cosine", "inetorgperson"} {
		fmt.Fprintf(&conf, "include /etc/ldap/schema/%s.schema\n", sc)
	}
	fmt.Fprintf(&conf, "include %s\n", filepath.Join(dir, "ad.schema"))
	fmt.Fprintf(&conf, "modulepath /usr/lib/ldap\nmoduleload back_mdb\n")
	fmt.Fprintf(&conf, "pidfile %s\nargsfile %s\n", filepath.Join(dir, "slapd.pid"), filepath.Join(dir, "slapd.args"))
	if st.rootDSE != "" {
		must(os.WriteFile(filepath.Join(dir, "rootdse.ldif"), []byte("dn:\n"+strings.TrimSpace(st.rootDSE)+"\n"), 0o600))
		fmt.Fprintf(&conf, "rootDSE %s\n", filepath.Join(dir, "rootdse.ldif"))
	}
	if st.tls {
		ca, caKey := makeCA(t)
		s.CAFile = filepath.Join(dir, "ca.pem")
		must(os.WriteFile(s.CAFile, pemCert(ca), 0o600))
		s.CA = x509.NewCertPool()
		s.CA.AddCert(ca)
		cert, key := makeLeaf(t, ca, caKey)
		must(os.WriteFile(filepath.Join(dir, "server.pem"), cert, 0o600))
		must(os.WriteFile(filepath.Join(dir, "server.key"), key, 0o600))
		fmt.Fprintf(&conf, "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n",
			s.CAFile, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	}
	fmt.Fprintf(&conf, "database mdb\nmaxsize 4294967296\nsuffix %q\nrootdn %q\nrootpw %s\ndirectory %s\n",
		Suffix, RootDN, RootPassword, filepath.Join(dir, "db"))
	conf.WriteString("index objectClass eq\nindex entryUUID eq\nlimits dn.exact=\"" + RootDN + "\" size=unlimited time=unlimited\n")
	conf.WriteString("access to * by dn.exact=\"cn=reader,dc=example,dc=com\" read by anonymous auth by * none\n")
	s.conf = filepath.Join(dir, "slapd.conf")
	must(os.WriteFile(s.conf, []byte(conf.String()), 0o600))

	base := Base()
	ldif := st.ldif
	if !strings.Contains(strings.ToLower(ldif), "dn: "+Suffix+"\n") {
		ldif = base + "\n" + ldif
	}
	in := filepath.Join(dir, "load.ldif")
	must(os.WriteFile(in, []byte(ldif), 0o600))
	add := exec.Command(strings.Replace(slapd, "slapd", "slapadd", 1), "-q", "-f", s.conf, "-l", in)
	if _, err := os.Stat(add.Path); err != nil {
		add = exec.Command(slapd, "-T", "add", "-q", "-f", s.conf, "-l", in)
	}
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}

	port := freePort(t)
	urls := fmt.Sprintf("ldap://127.0.0.1:%d/", port)
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	if st.tls {
		p2 := freePort(t)
		urls += fmt.Sprintf(" ldaps://127.0.0.1:%d/", p2)
		s.LDAPS = fmt.Sprintf("ldaps://127.0.0.1:%d", p2)
	}
	var log bytes.Buffer
	s.cmd = exec.Command(slapd, "-d", "0", "-f", s.conf, "-h", urls)
	s.cmd.Stdout, s.cmd.Stderr = &log, &log
	must(s.cmd.Start())
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("slapd ended at start: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen within 20s: %s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Base is the LDIF of the suffix, ou=people, ou=groups, ou=gone (outside
// the base DN tests read, ou=people) and a reader account
// cn=reader,dc=example,dc=com with password "reader-password".
func Base() string {
	return `dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=gone,dc=example,dc=com
objectClass: organizationalUnit
ou: gone

dn: cn=reader,dc=example,dc=com
objectClass: person
cn: reader
sn: reader
userPassword: reader-password
`
}

// Conn binds as the root DN.
func (s *Server) Conn() *goldap.Conn {
	s.t.Helper()
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := c.Bind(RootDN, RootPassword); err != nil {
		c.Close()
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Apply runs LDIF change records (changetype add, modify, delete, moddn)
// with ldapmodify.
func (s *Server) Apply(ldif string) {
	s.t.Helper()
	cmd := exec.Command("ldapmodify", "-x", "-H", s.URL, "-D", RootDN, "-w", RootPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("ldapmodify: %v\n%s\n%s", err, out, ldif)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func makeCA(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "roster test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// NewCA makes another CA, one the server's certificate is not signed by.
func NewCA(t testing.TB) []byte {
	c, _ := makeCA(t)
	return pemCert(c)
}

func makeLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// TLSConfig trusts the server's CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CA, ServerName: "127.0.0.1"}
}
