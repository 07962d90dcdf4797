package ldaptest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Samba is a running Samba Active Directory domain controller.
type Samba struct {
	// URL is ldaps://127.0.0.1:PORT (Samba refuses simple binds without
	// TLS), a proxy to Samba's port 636 in its network namespace.
	URL    string
	BaseDN string // DC=example,DC=test
	// AdminDN and AdminPassword bind as the domain's administrator.
	AdminDN, AdminPassword string
	// CAFile is the CA of the certificate Samba serves, made for the test
	// (for 127.0.0.1).
	CAFile string
	t      testing.TB
}

// StartSamba provisions a domain controller for the realm EXAMPLE.TEST in
// the test's temporary folder and starts it, or skips the test saying why
// it cannot: Samba's AD DC is not installed, or it needs root. Samba's LDAP
// server listens on 389 and 636 and no setting moves it (the ports are
// fixed in its source, ldap_server.c), so it runs in a network namespace of
// its own (unshare --net), where those ports, and Kerberos's and SMB's,
// are free whatever else runs: overlapping tests and a directory server
// on the machine do not meet. The test reaches it through a proxy on a
// free port of 127.0.0.1 (URL). Provisioning takes half a minute or more.
func StartSamba(t testing.TB) *Samba {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		t.Skipf("SKIPPED LOUDLY: Samba's Active Directory domain controller cannot run here: %s; "+
			"the Active Directory behaviour is covered against slapd with an AD schema instead", why)
	}
	samba, err := exec.LookPath("samba")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/samba"); err2 != nil {
			skip("samba is not installed (apt-get install samba samba-ad-dc samba-ad-provision)")
		}
		samba = "/usr/sbin/samba"
	}
	tool, err := exec.LookPath("samba-tool")
	if err != nil {
		skip("samba-tool is not installed")
	}
	if os.Geteuid() != 0 {
		skip("a domain controller must run as root")
	}
	dir := t.TempDir()
	const password = "Roster-Test-Passw0rd!"
	// Samba's own certificate names its host in the subject only, which Go
	// refuses; it serves one signed by a CA made for the test instead.
	ca, caKey := makeCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	cert, key := makeLeaf(t, ca, caKey)
	for name, data := range map[string][]byte{caFile: pemCert(ca), filepath.Join(dir, "server.pem"): cert, filepath.Join(dir, "server.key"): key} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	prov := exec.Command(tool, "domain", "provision", "--targetdir="+filepath.Join(dir, "dc"), "--realm=EXAMPLE.TEST",
		"--domain=EXAMPLE", "--server-role=dc", "--dns-backend=NONE", "--adminpass="+password,
		"--option=interfaces=lo", "--option=bind interfaces only=yes",
		"--option=tls cafile="+caFile, "--option=tls certfile="+filepath.Join(dir, "server.pem"),
		"--option=tls keyfile="+filepath.Join(dir, "server.key"))
	if out, err := prov.CombinedOutput(); err != nil {
		tail := string(out)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		if strings.Contains(tail, "samba-ad-provision") {
			skip("the provisioning files are not installed (apt-get install samba-ad-provision)")
		}
		t.Fatalf("samba-tool domain provision: %v\n%s", err, tail)
	}
	var log bytes.Buffer
	name, args, err := inNetns([]string{samba, "-i", "-s", filepath.Join(dir, "dc", "etc", "smb.conf"), "--debuglevel=1"})
	if err != nil {
		skip("it needs a network namespace of its own, as it listens on the fixed ports 389 and 636, and " + err.Error())
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	// Its own process group: Samba's worker processes end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		pgid := -cmd.Process.Pid
		syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
		}
		syscall.Kill(pgid, syscall.SIGKILL)
		<-exited
	})
	proxy := proxyInto(t, cmd.Process.Pid, "127.0.0.1:636", exited)
	s := &Samba{URL: "ldaps://" + proxy, BaseDN: "DC=example,DC=test", AdminDN: "CN=Administrator,CN=Users,DC=example,DC=test",
		AdminPassword: password, CAFile: caFile, t: t}
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := goldap.DialURL(s.URL, goldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
		if err == nil {
			err = c.Bind(s.AdminDN, s.AdminPassword)
			c.Close()
			if err == nil {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("samba ended at start: %s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("samba did not answer within 90s: %v\n%s", err, log.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	return s
}

// Conn binds as the administrator, for setting up entries.
func (s *Samba) Conn() *goldap.Conn {
	s.t.Helper()
	c, err := goldap.DialURL(s.URL, goldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	if err != nil {
		s.t.Fatal(err)
	}
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		c.Close()
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Add adds an entry; a failure fails the test (it may be called from
// several goroutines: the caller stops when t.Failed()).
func (s *Samba) Add(c *goldap.Conn, dn string, attrs map[string][]string) {
	s.t.Helper()
	req := goldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := c.Add(req); err != nil {
		s.t.Errorf("add %s: %v", dn, err)
	}
}

// UserDN is the DN of a user created by AddUser.
func (s *Samba) UserDN(ou, name string) string {
	return fmt.Sprintf("CN=%s,OU=%s,%s", name, ou, s.BaseDN)
}

// proxyInto listens on a free port of 127.0.0.1 and connects each
// connection to addr in the network namespace of process pid; it returns
// the address it listens on. It stops with the test.
func proxyInto(t testing.TB, pid int, addr string, exited <-chan struct{}) string {
	t.Helper()
	// The namespace exists once unshare has made it and run sh in it;
	// until then /proc/PID/ns/net is the machine's.
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && ns != self {
			break
		}
		select {
		case <-exited:
			t.Fatal("samba ended before its network namespace was made")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has no network namespace of its own after 10s: %v", pid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	dial, stop, err := netnsDialer(pid)
	if err != nil {
		t.Fatalf("enter the network namespace of samba: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		stop()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				up, err := dial(addr)
				if err != nil {
					return // the client sees the connection close, and retries
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn) {
					io.Copy(dst, src)
					// Either side ending ends both.
					dst.Close()
					src.Close()
					done <- struct{}{}
				}
				go pipe(up, c)
				go pipe(c, up)
				<-done
				<-done
			})
		}
	})
	return l.Addr().String()
}

// lookPath finds a command on PATH or in the system folders, which a
// user's PATH may leave out.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed", name)
}
