package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
)

// A conn is one client connection: a reader goroutine (readLoop), which
// serves quick requests itself and starts a goroutine for each request
// that may wait, and a writer goroutine, which sends the responses.

type conn struct {
	s    *Server
	c    net.Conn
	peer bool // the client is another node
	// tok is the token the client authenticated with (nil: the server
	// has no tokens, and the client may do everything).
	tok *tokens.Entry
	out chan []byte
	sem chan struct{}
	wg  sync.WaitGroup // handlers in flight

	stopped  atomic.Bool // the server is stopping: go away
	wentAway bool        // the read loop sent the go-away notice (read loop only)
	helloBy  time.Time   // the end of the handshake's budget (TLS and hello)
	between  bool        // the last failed read ended between frames (read loop only)
}

// stopReading wakes the read loop, which tells the client that the server
// is going away (see goAway).
func (c *conn) stopReading() {
	c.stopped.Store(true)
	c.c.SetReadDeadline(time.Now())
}

// GoAwayMessage starts the message of the go-away notice: a connection-
// level 40008 (request ID 0) that a stopping server sends on each
// connection. Requests it has read before the notice are answered; those
// it reads after it are refused with 40008 and not applied. A client that
// understands it sends nothing more on the connection and half-closes it
// (shutdown of its write side); the server closes once it has answered
// everything, or goAwayGrace after the notice.
const GoAwayMessage = "going away"

// goAwayGrace bounds how long a stopping server keeps reading a
// connection after its go-away notice, for the requests already sent.
const goAwayGrace = 2 * time.Second

// goAway sends the go-away notice from the read loop and keeps the loop
// reading, for at most goAwayGrace, to refuse what the client sent before
// it heard.
func (c *conn) goAway() {
	c.wentAway = true
	c.queueError(0, codes.New(codes.ShuttingDown, "%s: requests after this one are refused and not applied; send nothing more here", GoAwayMessage))
	c.c.SetReadDeadline(time.Now().Add(goAwayGrace))
}

func (c *conn) serve() {
	s := c.s
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.nconns.Add(-1)
		s.obs.ConnClosed()
		s.wg.Done()
	}()
	// The TLS handshake and the hello share one budget.
	c.helloBy = time.Now().Add(s.cfg.HandshakeTimeout)
	if tc, ok := c.c.(*tls.Conn); ok && !c.tlsHandshake(tc) {
		return
	}
	br := bufio.NewReaderSize(c.c, 32<<10)
	if !c.handshake(br) {
		return
	}
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writer() }()
	c.readLoop(br)
	c.wg.Wait()
	close(c.out)
	<-writerDone
}

// Lingering close: bounds on reading what the client still sends after a
// graceful stop.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// close closes the connection. After a graceful stop it first sends FIN
// and reads (discarding) what the client still sends, until it closes
// too: closing a socket with unread requests in it sends a reset, and a
// reset makes the client's kernel drop the responses it has not read yet
// - answered writes would look lost (found by the graceful-shutdown test
// once lost connections stopped counting as refusals). Requests the
// server never read get no answer and were not applied.
func (c *conn) close() {
	if tc, ok := c.c.(interface{ CloseWrite() error }); ok && c.stopped.Load() && tc.CloseWrite() == nil {
		c.c.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, io.LimitReader(c.c, lingerBytes))
	}
	c.c.Close()
}

// sendNow writes one frame synchronously (handshake and fatal errors).
func (c *conn) sendNow(frame []byte) {
	c.c.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	c.c.Write(frame)
}

func (c *conn) handshake(br *bufio.Reader) bool {
	cfg := &c.s.cfg
	c.c.SetReadDeadline(c.helloBy)
	payload, err := ReadFrame(br, nil, min(cfg.MaxFrame, 64<<10))
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		c.sendNow(AppendError(nil, 0, codes.New(codes.FrameTooLarge, "expected a hello frame: %v", err)))
		return false
	case err != nil:
		if errors.Is(err, ErrFrameEmpty) {
			c.sendNow(AppendError(nil, 0, codes.New(codes.InvalidParam, "expected a hello frame: %v", err)))
		}
		return false
	}
	id, op, body, err := ParseRequestHeader(payload)
	if err != nil || op != OpHello {
		c.sendNow(AppendError(nil, id, codes.New(codes.InvalidParam, "the first frame must be a hello (op 0)")))
		return false
	}
	h, err := ParseHello(body)
	if err != nil {
		c.sendNow(AppendError(nil, id, err))
		return false
	}
	if h.Version != ProtocolVersion {
		c.sendNow(AppendError(nil, id, codes.New(codes.UnsupportedVersion, "protocol version %d is not supported; this server speaks %d", h.Version, ProtocolVersion)))
		return false
	}
	if !c.authenticate(h) {
		c.sendNow(AppendError(nil, id, codes.New(codes.AuthFailed, "bad or missing token")))
		return false
	}
	b, start := AppendResponseHeader(nil, id, codes.OK)
	w := cfg.Welcome
	if cfg.WelcomeFunc != nil {
		w = cfg.WelcomeFunc()
		w.Version, w.MaxFrame = ProtocolVersion, cfg.MaxFrame
	}
	c.sendNow(EndFrame(AppendWelcome(b, w), start))
	return true
}

// authenticate checks the hello's token against the server's tokens and
// keeps the one it matched. A bad name and a bad secret are refused alike
// (and logged alike), so that a client cannot learn which names exist.
// A peer's connection came through the raft port's authentication and
// needs no token.
func (c *conn) authenticate(h Hello) bool {
	st := c.s.cfg.Tokens
	if st == nil || c.peer {
		return true
	}
	e, ok := st.Authenticate(h.Name, h.Token)
	if !ok {
		c.s.log.Warn("handshake: bad token", "remote", c.c.RemoteAddr())
		return false
	}
	c.tok = e
	return true
}

// writer sends queued responses, flushing only when the queue is empty, so
// that many responses share one write under load.
func (c *conn) writer() {
	s := c.s
	bw := bufio.NewWriterSize(c.c, 32<<10)
	broken := false
	for frame := range c.out {
		if !broken {
			if bw.Buffered() == 0 {
				c.c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			}
			if _, err := bw.Write(frame); err != nil {
				broken = true
			} else if len(c.out) == 0 {
				// Let handlers about to respond queue first, so that
				// responses share a write under load.
				runtime.Gosched()
			}
			if !broken && len(c.out) == 0 {
				if err := bw.Flush(); err != nil {
					broken = true
				}
			}
			if broken {
				// The client is gone or too slow: stop reading too. The
				// loop keeps draining so handlers never block.
				c.c.Close()
			}
		}
		s.putBuf(frame)
	}
}

// readLoop reads requests until the connection ends or the server stops
// reading, and dispatches each.
func (c *conn) readLoop(br *bufio.Reader) {
	var buf []byte
	for {
		payload, ok := c.readRequest(br, buf)
		if !ok && c.stopped.Load() && !c.wentAway && c.between {
			c.goAway()
			continue
		}
		if !ok {
			return
		}
		buf = payload[:cap(payload)]
		id, op, body, err := ParseRequestHeader(payload)
		if err != nil {
			// The frame was read whole, so the connection stays usable.
			c.queueError(0, codes.New(codes.InvalidParam, "malformed request header"))
			continue
		}
		if c.wentAway {
			c.queueError(id, codes.New(codes.ShuttingDown, "server is shutting down; the request was not applied"))
			continue
		}
		if c.tok != nil && c.tok.Revoked() {
			// The token file was reloaded without this token (or with
			// it changed): refuse, and end the connection so that the
			// client authenticates again.
			c.queueError(id, codes.New(codes.AuthFailed, "token %q was revoked; reconnect with a valid token", c.tok.Name))
			return
		}
		// Back-pressure: wait for a slot before taking more requests.
		select {
		case c.sem <- struct{}{}:
		case <-c.s.stopping:
			c.queueError(id, codes.New(codes.ShuttingDown, "server is shutting down; the request was not applied"))
			if !c.wentAway {
				c.goAway()
			}
			continue
		}
		c.wg.Add(1)
		c.dispatch(id, op, body)
		if len(buf) > 1<<20 && cap(buf) > 4*len(payload) {
			buf = nil // do not keep a huge buffer for small frames
		}
	}
}

// readRequest reads one request frame into buf (reused if large enough).
// It returns false when the connection must stop reading: closed, idle,
// stopped, or framing lost (an oversized frame, whose body is not read,
// gets an error frame first).
func (c *conn) readRequest(br *bufio.Reader, buf []byte) ([]byte, bool) {
	cfg := &c.s.cfg
	// Deadlines are armed only when a read may block: pipelined requests
	// already buffered are parsed without touching timers. Requests finish
	// within RequestTimeout, far below IdleTimeout, so the idle deadline
	// can stay armed while some are in flight.
	if br.Buffered() < 4 && !c.wentAway {
		c.c.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
	}
	// stopReading may have set its deadline just before ours.
	if c.stopped.Load() && !c.wentAway {
		c.between = true
		return nil, false
	}
	var hdr [4]byte
	if n, err := io.ReadFull(br, hdr[:]); err != nil {
		// Stopped between frames: the read loop may go on reading.
		c.between = n == 0
		c.readError(err, "")
		return nil, false
	}
	c.between = false
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(cfg.MaxFrame) {
		c.queueError(0, codes.New(codes.FrameTooLarge, "frame of %d bytes; the limit is %d", n, cfg.MaxFrame))
		return nil, false
	}
	if br.Buffered() < int(n) {
		c.c.SetReadDeadline(time.Now().Add(cfg.ReadTimeout))
	}
	payload, err := readPayload(br, buf, int(n))
	if err != nil {
		c.readError(err, "frame body")
		return nil, false
	}
	return payload, true
}

// dispatch runs one request, whose slot is taken, according to its
// operation's entry in the table (see opSpec): refused, in the read loop,
// or beside it. The frame buffer is reused for the next frame, so a
// request served beside the read loop gets a copy of its body.
func (c *conn) dispatch(id uint32, op Op, body []byte) {
	spec, err := c.admit(op)
	switch {
	case err != nil:
		c.finish(id, op, time.Now(), nil, err)
	case spec.waits || spec.slow:
		go c.handle(id, op, spec, append([]byte(nil), body...), true)
	case c.s.cfg.Forwards && !c.peer:
		go c.handle(id, op, spec, append([]byte(nil), body...), true)
	default:
		c.handle(id, op, spec, body, false)
	}
}

func (c *conn) readError(err error, where string) {
	if c.stopped.Load() {
		return
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) && where == "":
		// The client closed the connection.
	case errors.As(err, &ne) && ne.Timeout():
		if where == "" {
			c.s.log.Debug("closing idle connection", "remote", c.c.RemoteAddr())
		} else {
			c.queueError(0, codes.New(codes.Timeout, "%s not received within %s", where, c.s.cfg.ReadTimeout))
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		c.s.log.Debug("connection closed mid-frame", "remote", c.c.RemoteAddr())
	case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	default:
		c.s.log.Debug("read failed", "remote", c.c.RemoteAddr(), "error", err)
	}
}

// queueError sends an error response from the read loop.
func (c *conn) queueError(id uint32, err error) {
	c.wg.Add(1)
	c.sem <- struct{}{}
	c.finish(id, 0xff, time.Time{}, nil, err)
}

// finish queues a response (or an error) and frees the request's slot.
func (c *conn) finish(id uint32, op Op, start time.Time, frame []byte, err error) {
	if err != nil {
		frame = AppendError(c.s.getBuf(), id, err)
	}
	if !start.IsZero() {
		c.s.obs.Request(op, codes.Of(err), time.Since(start))
	}
	c.out <- frame
	<-c.sem
	c.wg.Done()
}

func (c *conn) base() context.Context {
	if c.peer {
		return context.WithValue(context.Background(), peerKey{}, true)
	}
	return context.Background()
}

// safely runs f, one request's work, and turns a panic in it into an
// internal error for that request (logged with its stack): a bug reached
// by one request must not take down the connections and shards of
// everyone else.
func (c *conn) safely(op Op, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("panic while serving a request", "op", op.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = codes.New(codes.Internal, "internal error")
		}
	}()
	return f()
}

// handle serves one request and queues its response. A request that may
// wait (for raft, a quorum or another node) gets a deadline; one served in
// the read loop gets none, as it never blocks.
func (c *conn) handle(id uint32, op Op, spec *opSpec, body []byte, deadline bool) {
	start := time.Now()
	ctx := c.base()
	if deadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.s.cfg.RequestTimeout)
		defer cancel()
	}
	b, st := AppendResponseHeader(c.s.getBuf(), id, codes.OK)
	err := c.safely(op, func() (err error) {
		b, err = spec.serve(c.s, ctx, op, body, b)
		return err
	})
	if err == nil && len(b)-st-4 > c.s.cfg.MaxFrame {
		err = codes.New(codes.FrameTooLarge, "response of %d bytes exceeds the frame limit", len(b)-st-4)
	}
	if err != nil {
		c.s.putBuf(b)
		c.finish(id, op, start, nil, err)
		return
	}
	c.finish(id, op, start, EndFrame(b, st), nil)
}
