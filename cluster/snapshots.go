package cluster

import (
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Snapshots by cost. raft snapshots a shard when its log passes
// Raft.SnapshotThreshold entries, whatever an entry holds: under load an
// entry carries hundreds of commands, idle it carries one, so a count
// says little about what a snapshot saves or costs. The snapshotter
// instead compares, for every replica on the node, the bytes of log
// applied since its newest snapshot (what a restart replays and what the
// log keeps on disk) with that snapshot's size (what writing a new one
// costs), and snapshots the replica once the log reaches
// Raft.SnapshotLogRatio times the snapshot, and at least
// Raft.SnapshotMinLogBytes. Writing a snapshot then costs at most
// 1/SnapshotLogRatio bytes per byte of log, however large the shard, and
// the log to replay stays within SnapshotLogRatio of the state. The entry
// threshold stays as raft's backstop.
//
// One snapshot runs at a time on the node, the most overdue first, so
// that snapshots of many shards do not pile onto the cores at once.

// snapshotCheck is how often the snapshotter looks at the replicas, and
// snapshotRetry how long it leaves a replica whose snapshot failed.
const (
	snapshotCheck = time.Second
	snapshotRetry = 30 * time.Second
)

// snapshotter runs until the node closes.
func (n *Node) snapshotter() {
	t := time.NewTicker(snapshotCheck)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		for {
			r := n.snapshotDue()
			if r == nil {
				break
			}
			r.snapshotByCost()
			select {
			case <-n.stop:
				return
			default:
			}
		}
	}
}

// snapshotDue returns the replica most overdue for a snapshot, nil if
// none is.
func (n *Node) snapshotDue() *Replica {
	var due *Replica
	most := 1.0
	for _, r := range n.localReplicas() {
		if r.closing.Load() || r.fsm.Failed() != nil || time.Now().Before(r.snapRetryAt) {
			continue // a halted shard refuses snapshots, to keep its log
		}
		if over := r.snapshotOverdue(); over >= most {
			due, most = r, over
		}
	}
	return due
}

// snapshotOverdue is how far the replica's log since its newest snapshot
// is past the point where a snapshot is due: 1 is due now.
func (r *Replica) snapshotOverdue() float64 {
	c := r.fsm.SnapshotCost()
	limit := max(float64(r.cfg.Raft.SnapshotMinLogBytes), r.cfg.Raft.SnapshotLogRatio*float64(c.SnapshotBytes))
	if limit <= 0 {
		return 0
	}
	return float64(c.LogBytes) / limit
}

// snapshotByCost takes a snapshot of the replica now.
func (r *Replica) snapshotByCost() {
	start := time.Now()
	before := r.fsm.SnapshotCost()
	err := r.raft.Snapshot().Error()
	switch {
	case err == nil:
		after := r.fsm.SnapshotCost()
		r.log.Debug("snapshot by cost", "log_bytes", before.LogBytes, "snapshot_bytes", after.SnapshotBytes, "took", time.Since(start))
	case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
	default:
		// The log keeps every entry meanwhile; retry in a while.
		r.snapRetryAt = time.Now().Add(snapshotRetry)
		r.log.Warn("snapshot failed; retrying later", "error", err, "retry_in", snapshotRetry)
	}
}

// snapshotOnClose snapshots, before the replicas stop, every replica whose
// log since its newest snapshot holds at least Raft.SnapshotOnCloseBytes,
// as many at once as there are cores: writing a snapshot is several times
// faster than replaying the log it replaces, so a graceful restart costs
// a little more at the stop and much less at the start. A crash still
// replays the log, which snapshots by cost keep within
// Raft.SnapshotLogRatio of the state.
func (n *Node) snapshotOnClose() {
	least := n.cfg.Raft.SnapshotOnCloseBytes
	if least <= 0 {
		return
	}
	start := time.Now()
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	count := 0
	for _, r := range n.localReplicas() {
		if r.closing.Load() || r.fsm.Failed() != nil || r.fsm.SnapshotCost().LogBytes < least {
			continue
		}
		count++
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			r.snapshotByCost()
		})
	}
	wg.Wait()
	if count > 0 {
		n.log.Info("snapshotted shards before stopping", "shards", count, "took", time.Since(start))
	}
}
