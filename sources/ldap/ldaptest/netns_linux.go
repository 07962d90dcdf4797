package ldaptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDialer dials TCP addresses inside the network namespace of process
// pid from a thread of its own that has joined that namespace: a socket
// belongs to the namespace it was made in, whichever thread uses it later.
// stop ends the thread.
func netnsDialer(pid int) (dial func(addr string) (net.Conn, error), stop func(), err error) {
	type reply struct {
		c   net.Conn
		err error
	}
	type request struct {
		addr  string
		reply chan reply
	}
	reqs := make(chan request)
	ready := make(chan error, 1)
	go func() {
		// The thread never returns to the pool: it ends with the goroutine,
		// still locked, so no other goroutine runs in the namespace.
		runtime.LockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			ready <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			ready <- fmt.Errorf("setns: %w", err)
			return
		}
		ready <- nil
		for r := range reqs {
			c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
			r.reply <- reply{c, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, nil, err
	}
	dial = func(addr string) (net.Conn, error) {
		r := request{addr, make(chan reply, 1)}
		reqs <- r
		got := <-r.reply
		return got.c, got.err
	}
	return dial, func() { close(reqs) }, nil
}

// inNetns runs argv in a network namespace of its own whose loopback
// interface is up: what it listens on meets nothing else on the machine.
func inNetns(argv []string) (name string, args []string, err error) {
	unshare, err := lookPath("unshare")
	if err != nil {
		return "", nil, err
	}
	ip, err := lookPath("ip")
	if err != nil {
		return "", nil, err
	}
	// A container without CAP_SYS_ADMIN may not make namespaces: say so
	// before Samba is started, rather than seeing it end.
	if out, err := exec.Command(unshare, "--net", "--", ip, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("unshare --net fails here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	script := `"$0" link set lo up && exec "$@"`
	return unshare, append([]string{"--net", "--", "/bin/sh", "-c", script, ip}, argv...), nil
}
