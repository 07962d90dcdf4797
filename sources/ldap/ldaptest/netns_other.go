//go:build !linux

package ldaptest

import (
	"errors"
	"net"
)

var errNoNetns = errors.New("network namespaces are Linux only")

func netnsDialer(int) (func(string) (net.Conn, error), func(), error) { return nil, nil, errNoNetns }

func inNetns([]string) (string, []string, error) { return "", nil, errNoNetns }
