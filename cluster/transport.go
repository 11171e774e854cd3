package cluster

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hashicorp/raft"
)

// transport makes the raft transport of shard i's replica: in a cluster,
// over the node's multiplexed raft port; on a single node, in memory (with
// one voter, raft never sends anything).
func (n *Node) transport(i int) (raft.Transport, error) {
	if !n.cfg.clusterMode() {
		_, tr := raft.NewInmemTransport(inmemAddr(n.cfg.NodeID, i))
		return tr, nil
	}
	t := guardedTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.mux.Layer(uint32(i)),
		MaxPool: 2,
		Timeout: raftIOTimeout,
		Logger:  shutdownQuiet{n.log.Named("raft-transport"), n.stop},
	})}
	if n.cfg.Raft.QuietAfter == 0 {
		return t, nil
	}
	return newQuietTransport(t, i, &n.cfg, n.log.Named(fmt.Sprintf("shard-%d", i))), nil
}

// shutdownQuiet demotes the transport's errors about closed connections
// once the node is closing (stop is closed): every stream open at that
// moment ends that way, and a clean shutdown logs no errors.
type shutdownQuiet struct {
	hclog.Logger
	stop <-chan struct{}
}

func (q shutdownQuiet) Error(msg string, args ...any) {
	if q.closedAtShutdown(args) {
		q.Logger.Debug(msg, args...)
		return
	}
	q.Logger.Error(msg, args...)
}

func (q shutdownQuiet) closedAtShutdown(args []any) bool {
	select {
	case <-q.stop:
	default:
		return false
	}
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, net.ErrClosed) {
			return true
		}
	}
	return false
}

func (q shutdownQuiet) Named(name string) hclog.Logger {
	return shutdownQuiet{q.Logger.Named(name), q.stop}
}
func (q shutdownQuiet) ResetNamed(name string) hclog.Logger {
	return shutdownQuiet{q.Logger.ResetNamed(name), q.stop}
}
func (q shutdownQuiet) With(args ...any) hclog.Logger {
	return shutdownQuiet{q.Logger.With(args...), q.stop}
}

// inmemAddr is the in-memory transport address of a single node's shard.
func inmemAddr(node string, shard int) raft.ServerAddress {
	return raft.ServerAddress(fmt.Sprintf("%s/shard-%d", node, shard))
}

// raftIOTimeout bounds each raft RPC's reads and writes.
const raftIOTimeout = 10 * time.Second

// guardedTransport is raft's NetworkTransport (all its methods and
// optional interfaces promoted) with pipelines that cannot block forever.
//
// The chaos suite found a shard whose raft never shut down: after a
// follower stopped answering, raft's pipeline decoder gave up (its
// consumer returns on the first failed response), and then the leader's
// "best effort" final send on stop (replication.go, pipelineReplicate)
// blocked in netPipeline.AppendEntries, whose in-progress queue nobody
// would drain again. The replication goroutine leaked, and
// raft.Shutdown waited for it forever (followd hung on SIGTERM).
type guardedTransport struct{ *raft.NetworkTransport }

func (t guardedTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return &guardedPipeline{AppendPipeline: p, timeout: raftIOTimeout}, nil
}

// guardedPipeline closes its pipeline when one AppendEntries has been
// blocked longer than timeout: the call then fails, and raft falls back
// to plain replication and opens a new pipeline later.
type guardedPipeline struct {
	raft.AppendPipeline
	timeout time.Duration
}

func (p *guardedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	watchdog := time.AfterFunc(p.timeout, func() { p.AppendPipeline.Close() })
	defer watchdog.Stop()
	return p.AppendPipeline.AppendEntries(args, resp)
}
