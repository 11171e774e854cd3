package raftmux

import (
	"net"
	"sync"
)

// PeerStream is the stream id, in place of a shard id, of the nodes' own
// client-protocol traffic (forwarded requests, relay deliveries, peer
// status). Carrying it on the raft port means it shares the port's peer
// authentication, and a node's client port never has to tell a peer from a
// client. Shard ids are far below it.
const PeerStream uint32 = 0xFFFFFFFE

// Listener returns a net.Listener over the Layer's incoming streams whose
// Close stops accepting but leaves the Layer open, so that streams dialed
// with the Layer keep working while a server over the listener shuts down
// gracefully. The Layer itself closes with the Mux.
func (l *Layer) Listener() net.Listener {
	return &acceptOnly{l: l, done: make(chan struct{})}
}

type acceptOnly struct {
	l    *Layer
	done chan struct{}
	once sync.Once
}

func (a *acceptOnly) Accept() (net.Conn, error) {
	select {
	case <-a.done:
		return nil, a.l.closedErr()
	default:
	}
	select {
	case c := <-a.l.queue:
		select {
		case <-a.l.done:
			_ = c.Close()
			return nil, a.l.closedErr()
		default:
			return c, nil
		}
	case <-a.l.done:
		return nil, a.l.closedErr()
	case <-a.done:
		return nil, a.l.closedErr()
	}
}

func (a *acceptOnly) Close() error {
	a.once.Do(func() { close(a.done) })
	return nil
}

func (a *acceptOnly) Addr() net.Addr { return a.l.addr }
