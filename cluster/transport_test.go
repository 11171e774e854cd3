package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// blockedPipeline models raft's netPipeline once its decoder has given
// up: AppendEntries waits for an in-progress slot that never frees, until
// Close.
type blockedPipeline struct{ closed chan struct{} }

func (p *blockedPipeline) AppendEntries(*raft.AppendEntriesRequest, *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	<-p.closed
	return nil, errors.New("pipeline shut down")
}
func (p *blockedPipeline) Consumer() <-chan raft.AppendFuture { return nil }
func (p *blockedPipeline) Close() error {
	select {
	case <-p.closed:
	default:
		close(p.closed)
	}
	return nil
}

// Regression (chaos suite, seed 2): a blocked pipeline send must fail
// after the timeout instead of hanging raft's replication goroutine and,
// with it, raft.Shutdown.
func TestGuardedPipelineUnblocksAStuckSend(t *testing.T) {
	p := &guardedPipeline{AppendPipeline: &blockedPipeline{closed: make(chan struct{})}, timeout: 50 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		_, err := p.AppendEntries(&raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a send on a closed pipeline succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AppendEntries still blocked 5 s after a 50 ms timeout")
	}
}

// The guard must not get in the way of sends that complete.
func TestGuardedPipelinePassesQuickSends(t *testing.T) {
	inner := &blockedPipeline{closed: make(chan struct{})}
	inner.Close() // sends return at once
	p := &guardedPipeline{AppendPipeline: inner, timeout: time.Hour}
	for range 100 {
		p.AppendEntries(&raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{})
	}
	// The transport keeps raft's optional interfaces (pre-vote, close).
	var tr raft.Transport = guardedTransport{}
	if _, ok := tr.(raft.WithPreVote); !ok {
		t.Error("guardedTransport lost WithPreVote")
	}
	if _, ok := tr.(raft.WithClose); !ok {
		t.Error("guardedTransport lost WithClose")
	}
}
