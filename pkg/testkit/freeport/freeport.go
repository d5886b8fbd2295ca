// Package freeport hands tests loopback addresses to listen on that outgoing connections will not
// take first. An address from listening on port 0 lies in the kernel's ephemeral range, which the
// source ports of every outgoing connection (to Postgres, Redis, another service) also come from:
// between the probe closing it and the service binding it, a connection can take it. Ports below
// that range are handed out only to listeners that ask for them by number.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// Bounds of the ports handed out: below the Linux default ephemeral range (32768–60999) and above
// the well-known and registered ports most daemons use.
const (
	low  = 20000
	high = 32000
)

// Addr returns "127.0.0.1:<port>" for a port that was free a moment ago and is outside the
// ephemeral range. It fails the test when none is found.
func Addr(t testing.TB) string {
	t.Helper()
	addr, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Pick is Addr without a test: it returns an error when no port is found after many tries.
func Pick() (string, error) {
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", low+rand.IntN(high-low))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = l.Close()
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free loopback port in %d–%d", low, high)
}
