package testport

import (
	"net"
	"strconv"
	"testing"
)

// Addresses are distinct, below the ephemeral range, and bindable for TCP
// and UDP; a port in use is skipped.
func TestAddr(t *testing.T) {
	seen := map[string]bool{}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 50 {
		a := Addr(t)
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		_, p, _ := net.SplitHostPort(a)
		if port, _ := strconv.Atoi(p); port < lo || port >= hi {
			t.Fatalf("%s outside [%d, %d)", a, lo, hi)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		held = append(held, l)
		u, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Fatalf("%s (udp): %v", a, err)
		}
		u.Close()
	}
	// Occupy the next candidate: Addr must skip it.
	mu.Lock()
	busy := net.JoinHostPort("127.0.0.1", strconv.Itoa(next))
	mu.Unlock()
	l, err := net.Listen("tcp", busy)
	if err == nil {
		defer l.Close()
		if a := Addr(t); a == busy {
			t.Fatalf("handed out %s, which is in use", busy)
		}
	}
}
