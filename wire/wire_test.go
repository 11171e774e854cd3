package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/vmihailenco/msgpack/v5"
)

// Our reader accepts what another msgpack encoder writes, whatever integer
// and string widths it picks.
func TestReaderAcceptsOtherEncoders(t *testing.T) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.EncodeArrayLen(3)
	e.EncodeString("alice")
	e.EncodeArrayLen(2)
	e.EncodeString(strings.Repeat("b", 40)) // str8
	e.EncodeString("c")
	e.EncodeInt64(1) // int64 encoding of a small non-negative value
	w, err := ParseWriteRequest(buf.Bytes())
	if err != nil || w.Actor != "alice" || len(w.Targets) != 2 || w.Targets[0] != strings.Repeat("b", 40) || !w.Sync {
		t.Fatalf("%+v %v", w, err)
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, -1, -32, -33, -129, math.MinInt64} {
		b := appendInt(nil, v)
		r := reader{b: b}
		if got := r.int(); got != v || r.done() != nil {
			t.Errorf("int %d: got %d (%v)", v, got, r.err)
		}
		var ob bytes.Buffer
		msgpack.NewEncoder(&ob).EncodeInt64(v)
		r = reader{b: ob.Bytes()}
		if got := r.int(); got != v || r.done() != nil {
			t.Errorf("int %d from msgpack lib: got %d (%v)", v, got, r.err)
		}
		// And the library reads ours.
		var x int64
		if err := msgpack.Unmarshal(b, &x); err != nil || x != v {
			t.Errorf("library reads our %d as %d (%v)", v, x, err)
		}
	}
	for _, n := range []int{0, 31, 32, 255, 256, 70000} {
		s := strings.Repeat("x", n)
		var out string
		if err := msgpack.Unmarshal(appendStr(nil, s), &out); err != nil || out != s {
			t.Errorf("str of %d: %v", n, err)
		}
		r := reader{b: appendStr(nil, s)}
		if r.str(1<<20) != s || r.done() != nil {
			t.Errorf("str of %d does not read back", n)
		}
	}
}

func TestBodiesRoundTrip(t *testing.T) {
	w := WriteRequest{Actor: "a", Targets: []string{"b", "é", strings.Repeat("z", 64)}, Sync: true}
	if got, err := ParseWriteRequest(AppendWriteRequest(nil, w)); err != nil || !slices.Equal(got.Targets, w.Targets) || got.Actor != w.Actor || !got.Sync {
		t.Fatalf("write request: %+v %v", got, err)
	}
	rs := []Result{{"b", 0, ""}, {"a", codes.InvalidParam, "cannot follow yourself"}}
	if got, err := ParseResults(AppendResults(nil, rs)); err != nil || !slices.Equal(got, rs) {
		t.Fatalf("results: %+v %v", got, err)
	}
	for _, c := range []Consistency{Leader, Linearizable, Any} {
		l := ListRequest{User: "u", Cursor: "abc", Limit: 500, Consistency: c}
		if got, err := ParseListRequest(AppendListRequest(nil, l)); err != nil || got != l {
			t.Fatalf("list request: %+v %v", got, err)
		}
		u := UsersRequest{Users: []string{"a", "b"}, Consistency: c}
		if got, err := ParseUsersRequest(AppendInfoRequest(nil, u)); err != nil || !slices.Equal(got.Users, u.Users) || got.Consistency != c {
			t.Fatalf("info request: %+v %v", got, err)
		}
		ck := CheckRequest{Actor: "a", Targets: []string{"b"}, Consistency: c}
		if got, err := ParseCheckRequest(AppendCheckRequest(nil, ck)); err != nil || got.Actor != "a" || got.Consistency != c {
			t.Fatalf("check request: %+v %v", got, err)
		}
	}
	if _, err := ParseListRequest(append(appendArray(nil, 4), AppendListRequest(nil, ListRequest{User: "u"})[1:]...)); err == nil {
		t.Fatal("a list request with 4 elements but 3 values decoded")
	}
	b := AppendPageStart(nil, 2)
	b = AppendItem(b, []byte("x"), 1_700_000_000_000)
	b = AppendItem(b, []byte("y"), 5)
	b = AppendPageEnd(b, "next")
	if p, err := ParsePage(b); err != nil || len(p.Items) != 2 || p.Items[0] != (Item{"x", 1_700_000_000_000}) || p.NextCursor != "next" {
		t.Fatalf("page: %+v %v", p, err)
	}
	is := []Info{{"a", 0, 1, 2, 3}, {"", codes.InvalidParam, 0, 0, 0}}
	if got, err := ParseInfos(AppendInfos(nil, is)); err != nil || !slices.Equal(got, is) {
		t.Fatalf("infos: %+v %v", got, err)
	}
	cs := []Check{{"a", 0, 3}, {"b", 0, 0}}
	if got, err := ParseChecks(AppendChecks(nil, cs)); err != nil || !slices.Equal(got, cs) {
		t.Fatalf("checks: %+v %v", got, err)
	}
	st := Status{NodeID: "n", Server: "v", ClusterID: "c", UptimeSec: 5, Addr: "x:1", Shards: []ShardStatus{{Shard: 1, Leader: true, LeaderID: "n", Ready: true, AppliedIndex: 9, Users: 3, LagRecords: 2, Halted: "no", Recovered: "unsafe recovery from n"}}}
	st.Shards[0].Voters, st.Shards[0].Nonvoters = []string{"a", "b"}, []string{"c"}
	if got, err := ParseStatus(AppendStatus(nil, st)); err != nil || got.NodeID != "n" || len(got.Shards) != 1 || got.Shards[0].AppliedIndex != 9 || !slices.Equal(got.Shards[0].Voters, []string{"a", "b"}) || !slices.Equal(got.Shards[0].Nonvoters, []string{"c"}) {
		t.Fatalf("status: %+v %v", got, err)
	}
	m := ShardMap{Version: 3, Shards: 2, Leaders: []ShardLeader{{0, "n1", "a:1"}, {1, "", ""}}}
	if got, err := ParseShardMap(AppendShardMap(nil, m)); err != nil || got.Version != 3 || !slices.Equal(got.Leaders, m.Leaders) {
		t.Fatalf("shard map: %+v %v", got, err)
	}
	h := Hello{Version: 1, Token: "t", Client: "c"}
	if got, err := ParseHello(AppendHello(nil, h)); err != nil || got != h {
		t.Fatalf("hello: %+v %v", got, err)
	}
	wl := Welcome{Version: 1, Server: "s", MaxFrame: 1 << 20, NodeID: "n", Shards: 16, ClusterID: "c"}
	if got, err := ParseWelcome(AppendWelcome(nil, wl)); err != nil || got != wl {
		t.Fatalf("welcome: %+v %v", got, err)
	}
}

// Frames split across reads, down to one byte at a time, decode the same.
func TestReadFrameSplit(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 20 {
		b, start := AppendRequestHeader(nil, uint32(i), OpFollow)
		b = EndFrame(AppendWriteRequest(b, WriteRequest{Actor: fmt.Sprintf("a%d", i), Targets: []string{"x"}}), start)
		stream = append(stream, b...)
		want = append(want, b[4:])
	}
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":     iotest.HalfReader(bytes.NewReader(stream)),
	} {
		for i := range want {
			got, err := ReadFrame(r, nil, 1024)
			if err != nil || !bytes.Equal(got, want[i]) {
				t.Fatalf("%s: frame %d: %v", name, i, err)
			}
		}
		if _, err := ReadFrame(r, nil, 1024); err != io.EOF {
			t.Fatalf("%s: after the last frame: %v", name, err)
		}
	}
	// Oversize is refused before reading (or allocating) the body.
	big := binary.BigEndian.AppendUint32(nil, 1<<30)
	if _, err := ReadFrame(bytes.NewReader(big), nil, 1024); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0}), nil, 1024); !errors.Is(err, ErrFrameEmpty) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(stream[:10]), nil, 1024); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
}

// FuzzReadFrame feeds arbitrary streams, split at a fuzzed point, to the
// frame reader and the request header parser.
func FuzzReadFrame(f *testing.F) {
	b, start := AppendRequestHeader(nil, 7, OpCheck)
	f.Add(EndFrame(AppendCheckRequest(b, CheckRequest{Actor: "a", Targets: []string{"b"}}), start), 3)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 1)
	f.Add([]byte{0, 0, 0, 1, 0x92}, 2)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		r := io.MultiReader(bytes.NewReader(data[:split]), iotest.OneByteReader(bytes.NewReader(data[split:])))
		for {
			payload, err := ReadFrame(r, nil, 4096)
			if err != nil {
				return
			}
			if len(payload) == 0 || len(payload) > 4096 {
				t.Fatalf("payload of %d bytes", len(payload))
			}
			ParseRequestHeader(payload)
			ParseResponseHeader(payload)
		}
	})
}

// FuzzBodies runs every body decoder on arbitrary bytes: none may panic,
// and whatever decodes re-encodes to something that decodes the same.
func FuzzBodies(f *testing.F) {
	f.Add(AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"b"}}))
	f.Add(AppendListRequest(nil, ListRequest{User: "u", Cursor: "c", Limit: 3}))
	f.Add(AppendUsersRequest(nil, []string{"a", "b"}))
	f.Add(AppendCheckRequest(nil, CheckRequest{Actor: "a", Targets: []string{"b"}}))
	f.Add(AppendHello(nil, Hello{Version: 1, Token: "t"}))
	f.Add(AppendResults(nil, []Result{{"b", 30001, "x"}}))
	f.Add(AppendStatus(nil, Status{Shards: []ShardStatus{{Shard: 1}}}))
	f.Add(AppendShardMap(nil, ShardMap{Version: 1, Shards: 1, Leaders: []ShardLeader{{0, "n", "a"}}}))
	f.Add(AppendDrainRequest(nil, DrainRequest{Node: "n1", On: true}))
	f.Add(AppendScanRequest(nil, ScanRequest{Shard: 1, From: 2, Limit: 3}))
	f.Add(AppendUserPage(nil, UserPage{Users: []string{"a"}, Next: 9}))
	f.Add(AppendDeliverRequest(nil, DeliverRequest{Dst: 1, Src: 2, Records: []Record{{Seq: 1, Kind: 1}}}))
	f.Add(AppendRecoverRequest(nil, RecoverRequest{Node: "n1", Shard: -1, AcceptDataLoss: true}))
	f.Add(AppendRecovered(nil, []Recovered{{Shard: 3, Index: 9, Term: 2, Lost: []string{"n2"}}}))
	f.Add(AppendWatchRequest(nil, WatchRequest{Shard: 2, From: 1 << 30, Max: 100, Wait: time.Second, Kinds: 6, Users: []string{"a"}}))
	f.Add(AppendWatchPage(nil, WatchPage{Events: []WatchEvent{{Offset: 9, Time: 1, FollowTime: 1, Kind: 1, User: "a", Other: "b"}}, Next: 9, Head: 10}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseWatchRequest(b); err == nil {
			if q2, err := ParseWatchRequest(AppendWatchRequest(nil, q)); err != nil || !reflect.DeepEqual(q2, q) || q.Max < 1 || q.Max > MaxWatchEvents || q.Wait > MaxWatchWait {
				t.Fatalf("watch request does not round-trip or is out of range: %+v", q)
			}
		}
		if p, err := ParseWatchPage(b); err == nil {
			if p2, err := ParseWatchPage(AppendWatchPage(nil, p)); err != nil || !reflect.DeepEqual(p2, p) {
				t.Fatalf("watch page does not round-trip: %+v", p)
			}
		}
		if w, err := ParseWriteRequest(b); err == nil {
			if w2, err := ParseWriteRequest(AppendWriteRequest(nil, w)); err != nil || w2.Actor != w.Actor || !slices.Equal(w2.Targets, w.Targets) || w2.Sync != w.Sync {
				t.Fatalf("write request does not round-trip: %+v", w)
			}
		}
		if l, err := ParseListRequest(b); err == nil {
			if l2, err := ParseListRequest(AppendListRequest(nil, l)); err != nil || l2 != l {
				t.Fatalf("list request does not round-trip: %+v", l)
			}
		}
		ParseUsersRequest(b)
		ParseCheckRequest(b)
		ParseHello(b)
		ParseWelcome(b)
		ParseResults(b)
		ParsePage(b)
		ParseInfos(b)
		ParseChecks(b)
		ParseStatus(b)
		ParseShardMap(b)
		ParseEmpty(b)
		if d, err := ParseDrainRequest(b); err == nil {
			if d2, err := ParseDrainRequest(AppendDrainRequest(nil, d)); err != nil || d2 != d {
				t.Fatalf("drain request does not round-trip: %+v", d)
			}
		}
		if sc, err := ParseScanRequest(b); err == nil {
			if sc2, err := ParseScanRequest(AppendScanRequest(nil, sc)); err != nil || sc2 != sc {
				t.Fatalf("scan request does not round-trip: %+v", sc)
			}
		}
		if d, err := ParseDeliverRequest(b); err == nil && (d.Dst < 0 || d.Src < 0) {
			t.Fatalf("delivery with a negative shard: %+v", d)
		}
		if q, err := ParseRecoverRequest(b); err == nil {
			if q2, err := ParseRecoverRequest(AppendRecoverRequest(nil, q)); err != nil || q2 != q || q.Shard < -1 {
				t.Fatalf("recover request does not round-trip: %+v", q)
			}
		}
		if rs, err := ParseRecovered(b); err == nil {
			if rs2, err := ParseRecovered(AppendRecovered(nil, rs)); err != nil || len(rs2) != len(rs) {
				t.Fatalf("recover response does not round-trip: %+v", rs)
			}
		}
		ParseUserPage(b)
		ParseUint64(b)
		ParseRequestHeader(b)
		ParseResponseHeader(b)
	})
}

// fakeBackend answers from memory; writes to targets named "slow..." take
// 100 ms, so responses come back out of order.
type fakeBackend struct {
	writes  atomic.Int64
	block   chan struct{} // if set, writes wait on it
	entered chan struct{}
}

func (f *fakeBackend) Write(ctx context.Context, op Op, req WriteRequest) ([]Result, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	if strings.HasPrefix(req.Targets[0], "slow") {
		time.Sleep(100 * time.Millisecond)
	}
	if req.Actor == "" {
		return nil, codes.New(codes.InvalidParam, "empty actor")
	}
	f.writes.Add(1)
	out := make([]Result, len(req.Targets))
	for i, t := range req.Targets {
		out[i] = Result{UserID: t}
	}
	return out, nil
}

func (f *fakeBackend) List(ctx context.Context, op Op, req ListRequest, fn func(id []byte, t int64)) (string, error) {
	for i := range req.Limit {
		fn([]byte(fmt.Sprintf("%s-%d", req.User, i)), int64(i))
	}
	return "", nil
}
func (f *fakeBackend) Info(ctx context.Context, req UsersRequest) ([]Info, error) {
	out := make([]Info, len(req.Users))
	for i, u := range req.Users {
		out[i] = Info{UserID: u, Following: uint64(len(u))}
	}
	return out, nil
}
func (f *fakeBackend) Check(ctx context.Context, req CheckRequest) ([]Check, error) {
	return []Check{{UserID: req.Targets[0], FollowType: 2}}, nil
}
func (f *fakeBackend) Status(ctx context.Context) (Status, error) { return Status{NodeID: "n"}, nil }
func (f *fakeBackend) ShardMap(ctx context.Context) (ShardMap, error) {
	return ShardMap{Version: 1, Shards: 1}, nil
}

// Watch waits for its context, however long the request asked to wait:
// the server must end it at shutdown.
func (f *fakeBackend) Watch(ctx context.Context, req WatchRequest) (WatchPage, error) {
	<-ctx.Done()
	return WatchPage{Next: req.From, Head: req.From}, nil
}

// startServer serves be, and its cluster operations if it has them.
func startServer(t *testing.T, mod func(*ServerConfig), be Handler) *Server {
	t.Helper()
	cfg := DefaultServerConfig()
	cfg.Welcome = Welcome{Server: "test", NodeID: "n", Shards: 1, ClusterID: "c"}
	if mod != nil {
		mod(&cfg)
	}
	ch, _ := be.(ClusterHandler)
	s, err := NewServer(cfg, be, ch)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	for s.Addr() == nil {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// rawConn is a test client speaking frames by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *Server) *rawConn {
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// dialPeer connects to s as another node does: through a listener given
// to ServePeers (which the raft port's authentication feeds in a node).
func dialPeer(t *testing.T, s *Server) *rawConn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServePeers(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(id uint32, op Op, body []byte) {
	b, start := AppendRequestHeader(nil, id, op)
	b = EndFrame(append(b, body...), start)
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) recv() (uint32, []byte, error) {
	payload, err := ReadFrame(r.br, nil, 1<<20)
	if err != nil {
		return 0, nil, fmt.Errorf("read: %w", err)
	}
	return ParseResponseHeader(payload)
}

func (r *rawConn) hello(token string) error {
	r.send(0, OpHello, AppendHello(nil, Hello{Version: 1, Token: token}))
	_, body, err := r.recv()
	if err != nil {
		return err
	}
	_, err = ParseWelcome(body)
	return err
}

// closed reports whether the server closes the connection within 2s
// (after any bytes still buffered).
func (r *rawConn) closed() bool {
	r.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, err := r.br.ReadByte(); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

func TestHandshake(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) { c.Token = "s3cret" }, &fakeBackend{})
	// Good token.
	rc := dialRaw(t, s)
	if err := rc.hello("s3cret"); err != nil {
		t.Fatal(err)
	}
	// Wrong token: an error frame, then the connection closes.
	rc = dialRaw(t, s)
	if err := rc.hello("wrong"); !errors.Is(err, codes.ErrAuthFailed) {
		t.Fatalf("wrong token: %v", err)
	}
	if !rc.closed() {
		t.Fatal("connection open after a failed handshake")
	}
	// Another protocol version.
	rc = dialRaw(t, s)
	rc.send(0, OpHello, AppendHello(nil, Hello{Version: 2, Token: "s3cret"}))
	if _, _, err := rc.recv(); !errors.Is(err, codes.ErrUnsupportedVersion) {
		t.Fatalf("version 2: %v", err)
	}
	// A request before the hello.
	rc = dialRaw(t, s)
	rc.send(1, OpPing, AppendEmpty(nil))
	if _, _, err := rc.recv(); !errors.Is(err, codes.ErrInvalidParam) {
		t.Fatalf("ping before hello: %v", err)
	}
	// Garbage: an HTTP request reads as a huge frame length.
	rc = dialRaw(t, s)
	rc.c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, _, err := rc.recv(); err == nil {
		t.Fatal("garbage accepted")
	}
	if !rc.closed() {
		t.Fatal("connection open after garbage")
	}
	// Silence: the handshake times out.
	s2 := startServer(t, func(c *ServerConfig) { c.HandshakeTimeout = 100 * time.Millisecond }, &fakeBackend{})
	rc = dialRaw(t, s2)
	if !rc.closed() {
		t.Fatal("silent connection kept open")
	}
}

func TestPipeliningOutOfOrder(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	rc := dialRaw(t, s)
	if err := rc.hello(""); err != nil {
		t.Fatal(err)
	}
	// A slow write, then fast requests: the fast ones answer first.
	rc.send(1, OpFollow, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"slow"}}))
	rc.send(2, OpFollow, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"fast"}}))
	rc.send(3, OpInfo, AppendUsersRequest(nil, []string{"abc"}))
	rc.send(4, OpPing, AppendEmpty(nil))
	var order []uint32
	for range 4 {
		id, body, err := rc.recv()
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, id)
		if id == 3 {
			is, err := ParseInfos(body)
			if err != nil || is[0].Following != 3 {
				t.Fatalf("info: %+v %v", is, err)
			}
		}
	}
	if order[3] != 1 {
		t.Fatalf("response order %v: the slow write should come last", order)
	}
}

func TestBadRequestsKeepTheConnection(t *testing.T) {
	be := &fakeBackend{}
	s := startServer(t, nil, be)
	rc := dialRaw(t, s)
	rc.hello("")
	cases := []struct {
		op   Op
		body []byte
		code codes.Code
	}{
		{99, AppendEmpty(nil), codes.UnknownOp},
		{OpFollow, []byte{0xc1}, codes.InvalidParam},                             // not msgpack
		{OpFollow, appendStr(nil, "a string"), codes.InvalidParam},               // wrong type
		{OpInfo, AppendUsersRequest(nil, []string{"a"})[:3], codes.InvalidParam}, // truncated body
		{OpHello, AppendHello(nil, Hello{Version: 1}), codes.InvalidParam},       // a second hello
		{OpPing, append(AppendEmpty(nil), 0x01), codes.InvalidParam},             // trailing bytes
	}
	for i, c := range cases {
		rc.send(uint32(10+i), c.op, c.body)
		id, _, err := rc.recv()
		if id != uint32(10+i) || codes.Of(err) != c.code {
			t.Fatalf("case %d: id %d, err %v, want code %d", i, id, err, c.code)
		}
	}
	// A frame whose header is not [id, op]: an error with id 0, and the
	// connection still works.
	b := EndFrame(append([]byte{0, 0, 0, 0}, appendStr(nil, "nonsense")...), 0)
	rc.c.Write(b)
	if id, _, err := rc.recv(); id != 0 || !errors.Is(err, codes.ErrInvalidParam) {
		t.Fatalf("bad header: %d %v", id, err)
	}
	rc.send(50, OpPing, AppendEmpty(nil))
	if id, _, err := rc.recv(); id != 50 || err != nil {
		t.Fatalf("after bad requests: %d %v", id, err)
	}
	// Oversize: an error frame, then the connection closes.
	rc.c.Write(binary.BigEndian.AppendUint32(nil, 2<<20))
	if _, _, err := rc.recv(); !errors.Is(err, codes.ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if !rc.closed() {
		t.Fatal("connection open after an oversize frame")
	}
}

func TestInflightLimitBackPressure(t *testing.T) {
	be := &fakeBackend{block: make(chan struct{}), entered: make(chan struct{}, 100)}
	s := startServer(t, func(c *ServerConfig) { c.MaxInflight = 4 }, be)
	rc := dialRaw(t, s)
	rc.hello("")
	for i := range 10 {
		rc.send(uint32(i+1), OpFollow, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"x"}}))
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(be.entered); n != 4 {
		t.Fatalf("%d writes started with an in-flight limit of 4", n)
	}
	close(be.block)
	for range 10 {
		if _, _, err := rc.recv(); err != nil {
			t.Fatal(err)
		}
	}
	if be.writes.Load() != 10 {
		t.Fatalf("%d writes done", be.writes.Load())
	}
}

func TestConnectionLimit(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) { c.MaxConns = 2 }, &fakeBackend{})
	a, b := dialRaw(t, s), dialRaw(t, s)
	a.hello("")
	b.hello("")
	c := dialRaw(t, s)
	if _, _, err := c.recv(); !errors.Is(err, codes.ErrOverloaded) {
		t.Fatalf("third connection: %v", err)
	}
	// The first two are unaffected.
	a.send(1, OpPing, AppendEmpty(nil))
	if _, _, err := a.recv(); err != nil {
		t.Fatal(err)
	}
}

func TestSlowAndIdleClients(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) {
		c.IdleTimeout = 200 * time.Millisecond
		c.ReadTimeout = 200 * time.Millisecond
	}, &fakeBackend{})
	// Idle: closed after IdleTimeout.
	idle := dialRaw(t, s)
	idle.hello("")
	start := time.Now()
	if !idle.closed() || time.Since(start) > 1500*time.Millisecond {
		t.Fatal("idle connection not closed")
	}
	// Slow: a frame that never completes is cut off with a timeout error.
	slow := dialRaw(t, s)
	slow.hello("")
	slow.c.Write([]byte{0, 0, 0, 100, 0x92})
	if _, _, err := slow.recv(); !errors.Is(err, codes.ErrTimeout) {
		t.Fatalf("slow frame: %v", err)
	}
	// Others are unaffected meanwhile.
	ok := dialRaw(t, s)
	ok.hello("")
	ok.send(1, OpPing, AppendEmpty(nil))
	if _, _, err := ok.recv(); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownFinishesInflight(t *testing.T) {
	be := &fakeBackend{block: make(chan struct{}), entered: make(chan struct{}, 100)}
	s := startServer(t, nil, be)
	rc := dialRaw(t, s)
	rc.hello("")
	for i := range 3 {
		rc.send(uint32(i+1), OpFollow, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"x"}}))
	}
	for range 3 {
		<-be.entered
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("shutdown returned with requests in flight")
	default:
	}
	// First the go-away notice; a request sent after it is refused, not
	// applied.
	id, _, err := rc.recv()
	if id != 0 || codes.Of(err) != codes.ShuttingDown || !strings.Contains(err.Error(), GoAwayMessage) {
		t.Fatalf("first frame after Shutdown: id %d, %v; want the go-away notice", id, err)
	}
	rc.send(9, OpFollow, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"y"}}))
	close(be.block)
	answered := map[uint32]error{}
	for range 4 {
		id, _, err := rc.recv()
		if _, dup := answered[id]; dup || id == 0 {
			t.Fatalf("unexpected frame %d: %v", id, err)
		}
		answered[id] = err
	}
	for id := uint32(1); id <= 3; id++ {
		if err, ok := answered[id]; !ok || err != nil {
			t.Fatalf("in-flight request %d lost in shutdown: %v", id, err)
		}
	}
	if err := answered[9]; codes.Of(err) != codes.ShuttingDown {
		t.Fatalf("request after the go-away: %v, want 40008", err)
	}
	// The client half-closes: the server finishes without waiting out
	// its grace.
	began := time.Now()
	rc.c.(*net.TCPConn).CloseWrite()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > goAwayGrace/2 {
		t.Fatalf("shutdown took %v after the client half-closed", d)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestWatchEndsAtShutdown: a watch waiting for events does not hold up a
// graceful stop; it is answered (empty) at once.
func TestWatchEndsAtShutdown(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	rc := dialRaw(t, s)
	rc.hello("")
	rc.send(1, OpWatch, AppendWatchRequest(nil, WatchRequest{Shard: 0, From: 7, Max: 10, Wait: time.Second}))
	time.Sleep(50 * time.Millisecond)
	began := time.Now()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	for {
		id, body, err := rc.recv()
		if id == 0 {
			continue // the go-away notice
		}
		p, perr := ParseWatchPage(body)
		if id != 1 || err != nil || perr != nil || p.Next != 7 {
			t.Fatalf("watch answer at shutdown: id %d, %v, %v, %+v", id, err, perr, p)
		}
		break
	}
	rc.c.(*net.TCPConn).CloseWrite()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 500*time.Millisecond {
		t.Fatalf("shutdown with a waiting watch took %v", d)
	}
	// A malformed watch request is refused with 30001.
	s2 := startServer(t, nil, &fakeBackend{})
	rc = dialRaw(t, s2)
	rc.hello("")
	rc.send(2, OpWatch, AppendWatchRequest(nil, WatchRequest{Shard: 0, Max: 0}))
	if _, _, err := rc.recv(); !errors.Is(err, codes.ErrInvalidParam) || !strings.Contains(err.Error(), "max events 0") {
		t.Fatalf("watch with max 0: %v", err)
	}
}

func TestManyConcurrentClients(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	var wg sync.WaitGroup
	for c := range 20 {
		wg.Go(func() {
			rc := dialRaw(t, s)
			if err := rc.hello(""); err != nil {
				t.Error(err)
				return
			}
			for i := range 50 {
				rc.send(uint32(i+1), OpFollowers, AppendListRequest(nil, ListRequest{User: fmt.Sprint(c), Limit: 3}))
			}
			for range 50 {
				_, body, err := rc.recv()
				if err != nil {
					t.Error(err)
					return
				}
				if p, err := ParsePage(body); err != nil || len(p.Items) != 3 {
					t.Errorf("page %+v %v", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func (f *fakeBackend) Deliver(ctx context.Context, req DeliverRequest) (uint64, error) {
	return uint64(len(req.Records)), nil
}

func TestDeliverRoundTrip(t *testing.T) {
	d := DeliverRequest{Dst: 3, Src: 1, Records: []Record{{1, 1, "a", "b", 5, 4}, {2, 0, "a", "b", 5, 6}, {3, 2, "a", "b", 5, 6}}}
	got, err := ParseDeliverRequest(AppendDeliverRequest(nil, d))
	if err != nil || got.Dst != 3 || got.Src != 1 || !slices.Equal(got.Records, d.Records) {
		t.Fatalf("%+v %v", got, err)
	}
	if v, err := ParseUint64(AppendUint64(nil, 77)); err != nil || v != 77 {
		t.Fatal(v, err)
	}
}

func (f *fakeBackend) Drain(ctx context.Context, req DrainRequest) error { return nil }
func (f *fakeBackend) Recover(ctx context.Context, req RecoverRequest) ([]Recovered, error) {
	return []Recovered{{Shard: req.Shard}}, nil
}
func (f *fakeBackend) ScanUsers(ctx context.Context, req ScanRequest) (UserPage, error) {
	return UserPage{Users: []string{"x"}}, nil
}

// Integers that become ints or narrower types are range-checked before the
// conversion: a huge value must not wrap around into a small or negative
// one that passes a later "<= limit" check.
func TestOutOfRangeIntegersAreRejected(t *testing.T) {
	huge := uint64(1) << 63
	arr := func(elems ...[]byte) []byte {
		b := appendArray(nil, len(elems))
		for _, e := range elems {
			b = append(b, e...)
		}
		return b
	}
	u := func(v uint64) []byte { return appendUint(nil, v) }
	s := func(v string) []byte { return appendStr(nil, v) }
	cases := map[string]func() error{
		"deliver dst 2^63": func() error {
			_, err := ParseDeliverRequest(arr(u(huge), u(1), appendArray(nil, 0)))
			return err
		},
		"deliver src 2^64-1": func() error {
			_, err := ParseDeliverRequest(arr(u(1), u(^uint64(0)), appendArray(nil, 0)))
			return err
		},
		"consistency 256": func() error {
			_, err := ParseListRequest(arr(s("a"), s(""), u(10), u(256)))
			return err
		},
		"consistency 3": func() error {
			_, err := ParseCheckRequest(arr(s("a"), arr(s("b")), u(3)))
			return err
		},
		"list limit 2^64-1": func() error {
			_, err := ParseListRequest(arr(s("a"), s(""), u(^uint64(0))))
			return err
		},
		"scan from 2^32": func() error {
			_, err := ParseScanRequest(arr(u(0), u(1<<32), u(10)))
			return err
		},
		"scan limit 2^64-1": func() error {
			_, err := ParseScanRequest(arr(u(0), u(0), u(^uint64(0))))
			return err
		},
		"shard map shard 2^63": func() error {
			_, err := ParseShardMap(arr(u(1), u(4), arr(arr(u(huge), s("n"), s("a")))))
			return err
		},
		"check followType 2^32+1": func() error {
			_, err := ParseChecks(arr(arr(s("b"), u(0), u(1<<32+1))))
			return err
		},
	}
	for name, parse := range cases {
		if err := parse(); !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("%s: got %v, want an invalid-parameter error", name, err)
		}
	}
	// The largest valid values still pass.
	if r, err := ParseScanRequest(arr(u(7), u(1<<32-1), u(10000))); err != nil || r.From != 1<<32-1 || r.Limit != 10000 || r.Shard != 7 {
		t.Fatalf("largest scan request: %+v %v", r, err)
	}
	if r, err := ParseListRequest(arr(s("a"), s(""), u(10), u(uint64(Any)))); err != nil || r.Consistency != Any {
		t.Fatalf("consistency any: %+v %v", r, err)
	}
}

// panicBackend panics in every write and info request.
type panicBackend struct{ fakeBackend }

func (p *panicBackend) Write(ctx context.Context, op Op, req WriteRequest) ([]Result, error) {
	panic("backend bug")
}

func (p *panicBackend) Info(ctx context.Context, req UsersRequest) ([]Info, error) {
	panic("backend bug")
}

// A panic while serving one request answers that request with an internal
// error; the connection, and the server, keep working.
func TestPanicInBackendIsContained(t *testing.T) {
	s := startServer(t, nil, &panicBackend{})
	rc := dialRaw(t, s)
	rc.hello("")
	rc.send(1, OpFollow, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"b"}}))
	if id, _, err := rc.recv(); id != 1 || !errors.Is(err, codes.ErrInternal) {
		t.Fatalf("write: id %d err %v", id, err)
	}
	rc.send(2, OpInfo, AppendUsersRequest(nil, []string{"a"}))
	if id, _, err := rc.recv(); id != 2 || !errors.Is(err, codes.ErrInternal) {
		t.Fatalf("info: id %d err %v", id, err)
	}
	rc.send(3, OpPing, AppendEmpty(nil))
	if id, _, err := rc.recv(); id != 3 || err != nil {
		t.Fatalf("ping after panics: id %d err %v", id, err)
	}
}

// Deliveries are refused on the client port, whatever the hello's client
// name, and served to connections from ServePeers.
func TestDeliverOnlyFromPeers(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	body := AppendDeliverRequest(nil, DeliverRequest{Dst: 1, Src: 0, Records: []Record{{1, 1, "a", "b", 5, 4}}})
	for _, name := range []string{"", PeerName} {
		client := dialRaw(t, s)
		client.send(0, OpHello, AppendHello(nil, Hello{Version: 1, Client: name}))
		if _, _, err := client.recv(); err != nil {
			t.Fatal(err)
		}
		client.send(1, OpDeliver, body)
		if id, _, err := client.recv(); id != 1 || !errors.Is(err, codes.ErrNotAllowed) {
			t.Fatalf("deliver from a client named %q: id %d err %v", name, id, err)
		}
	}
	peer := dialPeer(t, s)
	if err := peer.hello(""); err != nil {
		t.Fatal(err)
	}
	peer.send(2, OpDeliver, body)
	_, resp, err := peer.recv()
	if err != nil {
		t.Fatalf("deliver from a peer: %v", err)
	}
	if v, err := ParseUint64(resp); err != nil || v != 1 {
		t.Fatalf("deliver from a peer: %d %v", v, err)
	}
	// A peer's malformed delivery is refused and the connection stays.
	for i, bad := range [][]byte{{0x90}, {0x93, 0x01, 0x00, 0x91, 0xc0}, {0xc1}, AppendDeliverRequest(nil, DeliverRequest{Dst: 1})[:3]} {
		peer.send(uint32(10+i), OpDeliver, bad)
		if id, _, err := peer.recv(); id != uint32(10+i) || !errors.Is(err, codes.ErrInvalidParam) {
			t.Fatalf("malformed delivery %x from a peer: id %d err %v", bad, id, err)
		}
	}
	if err := peer.call(20, OpPing, AppendEmpty(nil)); err != nil {
		t.Fatalf("ping after malformed deliveries: %v", err)
	}
}

// WelcomeFunc is asked at every handshake, so a welcome can change while
// the server runs (a cluster node learns its cluster ID at bootstrap).
func TestWelcomeFuncAtEachHandshake(t *testing.T) {
	var calls atomic.Int64
	s := startServer(t, func(c *ServerConfig) {
		c.WelcomeFunc = func() Welcome {
			n := calls.Add(1)
			return Welcome{Server: "test", NodeID: "n", Shards: 1, ClusterID: fmt.Sprintf("c%d", n)}
		}
	}, &fakeBackend{})
	for want := 1; want <= 2; want++ {
		rc := dialRaw(t, s)
		rc.send(0, OpHello, AppendHello(nil, Hello{Version: 1}))
		_, body, err := rc.recv()
		if err != nil {
			t.Fatal(err)
		}
		w, err := ParseWelcome(body)
		if err != nil || w.ClusterID != fmt.Sprintf("c%d", want) || w.Version != ProtocolVersion || w.MaxFrame != DefaultServerConfig().MaxFrame {
			t.Fatalf("handshake %d: %+v %v", want, w, err)
		}
	}
}

// slowListBackend blocks lists of "slow" until release is closed, as a
// read forwarded to a slow node would.
type slowListBackend struct {
	fakeBackend
	release chan struct{}
}

func (b *slowListBackend) List(ctx context.Context, op Op, req ListRequest, fn func(id []byte, t int64)) (string, error) {
	if req.User == "slow" {
		<-b.release
	}
	return b.fakeBackend.List(ctx, op, req, fn)
}

// In a cluster (Forwards), a read that waits does not hold up the
// requests behind it on the same connection; the waiting read still gets
// its own answer, with the body it was sent.
func TestClusterReadsDoNotBlockTheConnection(t *testing.T) {
	be := &slowListBackend{release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(be.release) }) }
	s := startServer(t, func(c *ServerConfig) { c.Forwards = true }, be)
	t.Cleanup(release) // runs before the server's shutdown, which waits for the read
	rc := dialRaw(t, s)
	rc.hello("")
	rc.send(1, OpFollowers, AppendListRequest(nil, ListRequest{User: "slow", Limit: 2}))
	rc.send(2, OpFollowers, AppendListRequest(nil, ListRequest{User: "fast", Limit: 1}))
	rc.send(3, OpPing, AppendEmpty(nil))
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := map[uint32]bool{}
	for range 2 {
		id, _, err := rc.recv()
		if err != nil || (id != 2 && id != 3) {
			t.Fatalf("got response %d (%v) while the slow read waits; want 2 and 3, in any order", id, err)
		}
		got[id] = true
	}
	if len(got) != 2 {
		t.Fatalf("got responses %v, want 2 and 3", got)
	}
	release()
	id, body, err := rc.recv()
	if err != nil || id != 1 {
		t.Fatalf("slow read: id %d, %v", id, err)
	}
	p, err := ParsePage(body)
	if err != nil || len(p.Items) != 2 || p.Items[0].UserID != "slow-0" {
		t.Fatalf("slow read: %+v %v", p, err)
	}
}

// stingyReader serves a frame header declaring a large body, then a few
// bytes, and records the largest buffer a Read was given.
type stingyReader struct {
	data    []byte
	largest int
}

func (r *stingyReader) Read(p []byte) (int, error) {
	r.largest = max(r.largest, len(p))
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// A declared length is not an allocation: a peer that announces a 64 KiB
// hello (or a MaxFrame body) and sends 10 bytes costs a few KiB, not the
// declared size (found by the abuse tests).
func TestReadFrameDoesNotTrustTheDeclaredLength(t *testing.T) {
	r := &stingyReader{data: append([]byte{0, 1, 0, 0}, make([]byte, 10)...)} // 65,536 declared
	if _, err := ReadFrame(r, nil, 1<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v, want unexpected EOF", err)
	}
	if r.largest > 4<<10 {
		t.Fatalf("read into a %d-byte buffer for a frame that sent 10 bytes", r.largest)
	}
	// A whole large frame still reads correctly.
	body := make([]byte, 300_000)
	for i := range body {
		body[i] = byte(i)
	}
	frame := append([]byte{0, 4, 0x93, 0xe0}, body...)
	got, err := ReadFrame(bytes.NewReader(frame), nil, 1<<20)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("300,000-byte frame: %v, equal %v", err, bytes.Equal(got, body))
	}
}

// graphOnly serves the client operations and none of the cluster ones.
type graphOnly struct{ fakeBackend }

func (*graphOnly) Deliver() {} // hides fakeBackend's: not a ClusterHandler

// A server without a ClusterHandler answers the cluster operations with
// "unknown operation" and keeps serving the others.
func TestServerWithoutClusterHandler(t *testing.T) {
	s := startServer(t, nil, &graphOnly{})
	peer := dialPeer(t, s)
	if err := peer.hello(""); err != nil {
		t.Fatal(err)
	}
	peer.send(1, OpDeliver, AppendDeliverRequest(nil, DeliverRequest{Dst: 1, Records: []Record{{1, 1, "a", "b", 5, 4}}}))
	peer.send(2, OpDrain, AppendDrainRequest(nil, DrainRequest{Node: "n", On: true}))
	peer.send(3, OpScanUsers, AppendScanRequest(nil, ScanRequest{Shard: 0, Limit: 10}))
	peer.send(5, OpRecover, AppendRecoverRequest(nil, RecoverRequest{Node: "n", Shard: 0, AcceptDataLoss: true}))
	peer.send(4, OpPing, AppendEmpty(nil))
	// Deliveries run beside the read loop: answers may come in any order.
	errs := map[uint32]error{}
	for range 5 {
		id, _, err := peer.recv()
		errs[id] = err
	}
	for _, id := range []uint32{1, 2, 3, 5} {
		if err, ok := errs[id]; !ok || !errors.Is(err, codes.ErrUnknownOp) {
			t.Fatalf("request %d: %v (answered %v), want unknown operation", id, err, ok)
		}
	}
	if err, ok := errs[4]; !ok || err != nil {
		t.Fatalf("ping: %v (answered %v)", err, ok)
	}
}

// A user ID over the decoder's limit fails the request with an error that
// says which ID and how long it is, not "malformed body".
func TestTooLongUserIDSaysWhich(t *testing.T) {
	long := strings.Repeat("x", 1024)
	write := func(b []byte) error { _, err := ParseWriteRequest(b); return err }
	check := func(b []byte) error { _, err := ParseCheckRequest(b); return err }
	info := func(b []byte) error { _, err := ParseUsersRequest(b); return err }
	for _, c := range []struct {
		parse func([]byte) error
		body  []byte
		want  string
	}{
		{write, AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"b", "c", long}}), "user ID of target 3 is 1024 bytes long"},
		{write, AppendWriteRequest(nil, WriteRequest{Actor: long, Targets: []string{"b"}}), "user ID of the actor is 1024 bytes long"},
		{check, AppendCheckRequest(nil, CheckRequest{Actor: "a", Targets: []string{long}}), "user ID of target 1 is 1024 bytes long"},
		{info, AppendUsersRequest(nil, []string{"a", long}), "user ID of user 2 is 1024 bytes long"},
	} {
		if err := c.parse(c.body); codes.Of(err) != codes.InvalidParam || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want InvalidParam saying %q", err, c.want)
		}
	}
}
