// Package testport hands out loopback addresses for test servers that
// must know their port before they listen (raft, gossip and client
// addresses that other nodes are configured with).
//
// Listening on port 0 and closing the socket is not enough: the kernel
// gives the same ephemeral range to outgoing connections and to other
// port-0 listeners, so the port can be taken before the server binds it
// ("address already in use", seen in CI). Ports here come from below the
// ephemeral range (Linux: 32768-60999), which the kernel never hands out
// by itself, are checked free for TCP and UDP (gossip uses both), and are
// never handed out twice by one process. Test processes running at the
// same time start at different random points of the range.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

const (
	lo = 20000
	hi = 32000 // below the ephemeral range
)

var (
	mu   sync.Mutex
	next = lo + rand.IntN(hi-lo)
)

// Addr returns "127.0.0.1:PORT" for a port that is free for TCP and UDP
// now and not handed out before by this process.
func Addr(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range hi - lo {
		port := next
		next++
		if next == hi {
			next = lo
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if free(addr) {
			return addr
		}
	}
	t.Fatal("testport: no free port")
	return ""
}

func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}
