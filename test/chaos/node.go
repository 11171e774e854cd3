package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports every node uses on its own address.
const (
	clientPort = "7700"
	httpPort   = "7780"
	raftPort   = "7701"
	gossipPort = "7702"
)

// Node is one followd process that the harness starts, stops and hurts.
type Node struct {
	Index int
	ID    string // node ID; a node that lost its data comes back under a new one
	Addr  string // client address
	HTTP  string
	dir   string // the node's directory: data/ and followd.log

	h *Harness

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	paused  bool
	starts  int
	logFile *os.File
}

func (n *Node) dataDir() string { return filepath.Join(n.dir, "data") }

// LogPath is the node's log, appended across restarts.
func (n *Node) LogPath() string { return filepath.Join(n.dir, "followd.log") }

// args are followd's flags for this node.
func (n *Node) args() []string {
	h := n.h
	ip := h.net.IP(n.Index)
	var join []string
	for i := range h.cfg.Nodes {
		join = append(join, net.JoinHostPort(h.net.IP(i), gossipPort))
	}
	a := []string{
		"--node-id", n.ID,
		"--data-dir", n.dataDir(),
		"--listen", net.JoinHostPort(ip, clientPort),
		"--http", net.JoinHostPort(ip, httpPort),
		"--raft-addr", net.JoinHostPort(ip, raftPort),
		"--gossip-addr", net.JoinHostPort(ip, gossipPort),
		"--join", strings.Join(join, ","),
		"--shards", fmt.Sprint(h.cfg.Shards),
		"--dead-timeout", h.cfg.DeadTimeout.String(),
		"--log-level", "info",
		"--feed-retention", fmt.Sprint(feedRetention),
		"--webhook-url", h.hook.url, "--webhook-format", "native",
	}
	if n.ID == fmt.Sprintf("n%d", n.Index+1) {
		// Only the original members bootstrap; a replacement joins.
		a = append(a, "--bootstrap-expect", fmt.Sprint(h.cfg.Nodes))
	}
	return a
}

// Start starts the process (it must not be running).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s: already running", n.ID)
	}
	if err := os.MkdirAll(n.dataDir(), 0o755); err != nil {
		return err
	}
	if n.logFile == nil {
		f, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		n.logFile = f
	}
	fmt.Fprintf(n.logFile, "=== chaos: start %d of %s at %s\n", n.starts+1, n.ID, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := n.h.net.Command(n.Index, n.h.cfg.Followd, n.args()...)
	cmd.Stdout, cmd.Stderr = n.logFile, n.logFile
	if n.h.cfg.clockFaults() {
		cmd.Env = append(os.Environ(), "FOLLOWD_TEST_CLOCK_FILE="+n.clockFile())
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.starts++
	n.cmd, n.paused = cmd, false
	exited := make(chan struct{})
	n.exited = exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	return nil
}

// Running reports whether the process runs (paused or not).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Starts is how many times the process was started.
func (n *Node) Starts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.starts
}

// Pid is the process's PID, or 0.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// signal sends sig and, for stopping signals, waits for the exit.
func (n *Node) signal(sig syscall.Signal, wait time.Duration) error {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if paused && sig != syscall.SIGKILL {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(sig)
	var err error
	select {
	case <-exited:
	case <-time.After(wait):
		// A hung stop is a bug: SIGQUIT makes the Go runtime write every
		// goroutine's stack into the node's log before it exits.
		err = fmt.Errorf("%s did not exit within %v of %v (goroutine dump in %s)", n.ID, wait, sig, n.LogPath())
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	}
	n.mu.Lock()
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
	return err
}

// Kill sends SIGKILL and waits for the exit.
func (n *Node) Kill() error { return n.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM (a graceful stop) and waits. followd gives requests
// in flight --shutdown-timeout (10 s) and then stops its shards; 25 s
// without an exit is a hang.
func (n *Node) Stop() error { return n.signal(syscall.SIGTERM, 25*time.Second) }

// Pause freezes the process (SIGSTOP); Resume thaws it.
func (n *Node) Pause() error { return n.stopCont(syscall.SIGSTOP, true) }

// Resume sends SIGCONT.
func (n *Node) Resume() error { return n.stopCont(syscall.SIGCONT, false) }

func (n *Node) stopCont(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s: not running", n.ID)
	}
	n.paused = paused
	return n.cmd.Process.Signal(sig)
}

// Wipe deletes the data directory (the node must be stopped).
func (n *Node) Wipe() error { return os.RemoveAll(n.dataDir()) }

// WaitReady polls /readyz until it answers 200.
func (n *Node) WaitReady(ctx context.Context) error {
	return poll(ctx, 200*time.Millisecond, func() error {
		if !n.Running() {
			return fmt.Errorf("%s is not running", n.ID)
		}
		return httpOK("http://" + n.HTTP + "/readyz")
	})
}

func httpOK(url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// sleep waits for d, unless ctx ends first: then it returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll calls f every interval until it succeeds or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// closeLog closes the log file once the process is gone.
func (n *Node) closeLog() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.logFile != nil {
		n.logFile.Close()
		n.logFile = nil
	}
}
