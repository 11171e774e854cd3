package wire

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
)

// tokenObserver records the server's token reports.
type tokenObserver struct {
	nopObserver
	mu    sync.Mutex
	codes map[string][]codes.Code
}

func (o *tokenObserver) TokenRequest(token string, _ Op, c codes.Code) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.codes[token] = append(o.codes[token], c)
}

func (o *tokenObserver) of(token string) []codes.Code {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]codes.Code(nil), o.codes[token]...)
}

func testStore(t *testing.T) *tokens.Store {
	t.Helper()
	lim := tokens.New("lim", tokens.RoleWrite, "l")
	lim.Rate, lim.Burst = 5, 5
	st, err := tokens.NewStore([]tokens.Token{
		tokens.New("adm", tokens.RoleAdmin, "a"),
		tokens.New("wr", tokens.RoleWrite, "w"),
		tokens.New("rd", tokens.RoleRead, "r"),
		lim,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func startTokenServer(t *testing.T) (*Server, *tokens.Store, *tokenObserver) {
	st := testStore(t)
	obs := &tokenObserver{codes: map[string][]codes.Code{}}
	s := startServer(t, func(c *ServerConfig) { c.Tokens, c.Observer = st, obs }, &fakeBackend{})
	return s, st, obs
}

// helloAs opens a connection that presents the named token.
func helloAs(t *testing.T, s *Server, name, secret, client string) (*rawConn, error) {
	t.Helper()
	rc := dialRaw(t, s)
	rc.send(0, OpHello, AppendHello(nil, Hello{Version: 1, Token: secret, Name: name, Client: client}))
	_, body, err := rc.recv()
	if err == nil {
		_, err = ParseWelcome(body)
	}
	return rc, err
}

func mustHello(t *testing.T, s *Server, name, secret string) *rawConn {
	t.Helper()
	rc, err := helloAs(t, s, name, secret, "test")
	if err != nil {
		t.Fatalf("hello as %s: %v", name, err)
	}
	return rc
}

// call sends one request and returns its error.
func (r *rawConn) call(id uint32, op Op, body []byte) error {
	r.send(id, op, body)
	got, _, err := r.recv()
	if err == nil && got != id {
		r.t.Fatalf("response to %d, want %d", got, id)
	}
	return err
}

var (
	followBody = AppendWriteRequest(nil, WriteRequest{Actor: "a", Targets: []string{"b"}})
	listBody   = AppendListRequest(nil, ListRequest{User: "a", Limit: 2})
	drainBody  = AppendDrainRequest(nil, DrainRequest{Node: "n", On: true})
	scanBody   = AppendScanRequest(nil, ScanRequest{Shard: 0, Limit: 2})

	gossipListBody = AppendGossipKeysRequest(nil, GossipKeysRequest{Action: GossipKeysList})
)

// TestEveryOpHasARole: an operation in the table without a role would be
// refused to every token; this catches one added without thought.
func TestEveryOpHasARole(t *testing.T) {
	for op, spec := range ops {
		if spec != nil && (spec.role < tokens.RoleRead || spec.role > tokens.RoleAdmin) {
			t.Errorf("op %s has no role", Op(op))
		}
	}
	for _, op := range []Op{OpDrain, OpScanUsers, OpRecover, OpWatch, OpImport, OpRemoveUser, OpExport, OpGossipKeys, OpDeliver, OpProbe} {
		if ops[op].role != tokens.RoleAdmin {
			t.Errorf("op %s is not admin-only", op)
		}
	}
}

func TestRoles(t *testing.T) {
	s, _, obs := startTokenServer(t)
	cases := []struct {
		token, secret string
		op            Op
		body          []byte
		want          codes.Code
	}{
		{"rd", "r", OpFollowers, listBody, codes.OK},
		{"rd", "r", OpPing, AppendEmpty(nil), codes.OK},
		{"rd", "r", OpStatus, AppendEmpty(nil), codes.OK},
		{"rd", "r", OpFollow, followBody, codes.NotAllowed},
		{"rd", "r", OpUnfollow, followBody, codes.NotAllowed},
		{"rd", "r", OpKnownFollowers, AppendKnownFollowersRequest(nil, KnownFollowersRequest{Viewer: "v", User: "u"}), codes.OK},
		{"rd", "r", OpRelationships, AppendRelationshipsRequest(nil, RelationshipsRequest{Pairs: []Pair{{"a", "b"}}}), codes.OK},
		{"wr", "w", OpFollow, followBody, codes.OK},
		{"wr", "w", OpFollowing, listBody, codes.OK},
		{"wr", "w", OpDrain, drainBody, codes.NotAllowed},
		{"wr", "w", OpScanUsers, scanBody, codes.NotAllowed},
		{"adm", "a", OpDrain, drainBody, codes.OK},
		{"adm", "a", OpScanUsers, scanBody, codes.OK},
		{"adm", "a", OpFollow, followBody, codes.OK},
		{"rd", "r", OpGossipKeys, gossipListBody, codes.NotAllowed},
		{"wr", "w", OpGossipKeys, gossipListBody, codes.NotAllowed},
		{"adm", "a", OpGossipKeys, gossipListBody, codes.OK},
	}
	for i, tc := range cases {
		rc := mustHello(t, s, tc.token, tc.secret)
		err := rc.call(uint32(i+1), tc.op, tc.body)
		if got := codes.Of(err); got != tc.want {
			t.Errorf("%s %s: code %d (%v), want %d", tc.token, tc.op, got, err, tc.want)
		}
		if tc.want == codes.NotAllowed {
			// The refusal names the operation and the role, and the
			// connection stays usable.
			var ce *codes.Error
			if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tc.op.String()) || !strings.Contains(ce.Msg, tc.token) {
				t.Errorf("refusal %q does not name the op and token", err)
			}
			if err := rc.call(99, OpPing, AppendEmpty(nil)); err != nil {
				t.Errorf("ping after a refusal: %v", err)
			}
		}
	}
	if got := obs.of("rd"); len(got) < 4 || got[3] != codes.NotAllowed {
		t.Errorf("observer saw %v for rd", got)
	}
}

func TestNoTokensAllowsEverything(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	rc, err := helloAs(t, s, "anyone", "anything", "test")
	if err != nil {
		t.Fatal(err)
	}
	for i, op := range []Op{OpFollow, OpDrain, OpScanUsers} {
		body := map[Op][]byte{OpFollow: followBody, OpDrain: drainBody, OpScanUsers: scanBody}[op]
		if err := rc.call(uint32(i+1), op, body); err != nil {
			t.Errorf("%s without tokens: %v", op, err)
		}
	}
}

// TestBadCredentials: an unknown name and a wrong secret are refused with
// the same code and message, so the answer does not tell names apart.
func TestBadCredentials(t *testing.T) {
	s, _, _ := startTokenServer(t)
	var msgs []string
	for _, c := range [][2]string{{"nobody", "a"}, {"adm", "wrong"}, {"", "a"}, {"adm", ""}} {
		rc, err := helloAs(t, s, c[0], c[1], "test")
		var ce *codes.Error
		if !errors.As(err, &ce) || ce.Code != codes.AuthFailed {
			t.Fatalf("name %q secret %q: %v, want 40004", c[0], c[1], err)
		}
		if !rc.closed() {
			t.Fatalf("name %q: connection open after a failed handshake", c[0])
		}
		msgs = append(msgs, ce.Msg)
	}
	for _, m := range msgs[1:] {
		if m != msgs[0] {
			t.Fatalf("messages differ: %q", msgs)
		}
	}
}

// TestTokenShorthand: ServerConfig.Token is the admin token "default",
// which a hello without a name presents.
func TestTokenShorthand(t *testing.T) {
	s := startServer(t, func(c *ServerConfig) { c.Token = "s3cret" }, &fakeBackend{})
	rc := dialRaw(t, s)
	if err := rc.hello("s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := rc.call(1, OpDrain, drainBody); err != nil {
		t.Fatalf("drain with the default token: %v", err)
	}
	if _, err := helloAs(t, s, tokens.DefaultName, "s3cret", "test"); err != nil {
		t.Fatalf("hello naming default: %v", err)
	}
	cfg := DefaultServerConfig()
	cfg.Token, cfg.Tokens = "x", testStore(t)
	if err := cfg.Validate(); err == nil {
		t.Fatal("Token and Tokens together validated")
	}
}

func TestRateLimit(t *testing.T) {
	s, _, obs := startTokenServer(t)
	rc := mustHello(t, s, "lim", "l")
	// Pipeline 20 pings: the burst of 5 passes (and perhaps one more
	// that the rate refilled), the rest are refused at once.
	for i := range 20 {
		rc.send(uint32(i+1), OpPing, AppendEmpty(nil))
	}
	ok, limited := 0, 0
	for range 20 {
		_, _, err := rc.recv()
		switch codes.Of(err) {
		case codes.OK:
			ok++
		case codes.RateLimited:
			limited++
		default:
			t.Fatalf("ping: %v", err)
		}
	}
	if ok < 5 || ok > 7 || ok+limited != 20 {
		t.Fatalf("%d allowed, %d limited; want the burst of 5 allowed", ok, limited)
	}
	if !codes.RateLimited.Retryable() || codes.NotAllowed.Retryable() {
		t.Fatal("RateLimited must be retryable and NotAllowed not")
	}
	// A second connection of the same token shares the budget.
	rc2 := mustHello(t, s, "lim", "l")
	if err := rc2.call(1, OpPing, AppendEmpty(nil)); codes.Of(err) != codes.RateLimited {
		t.Fatalf("second connection: %v, want 40011 (shared budget)", err)
	}
	// Other tokens are not limited by it.
	if err := mustHello(t, s, "wr", "w").call(1, OpPing, AppendEmpty(nil)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range obs.of("lim") {
		if c == codes.RateLimited {
			n++
		}
	}
	if n != limited+1 {
		t.Fatalf("observer counted %d limited, want %d", n, limited+1)
	}
	// The budget refills at 5 per second.
	deadline := time.Now().Add(5 * time.Second)
	for rc.call(100, OpPing, AppendEmpty(nil)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the budget never refilled")
		}
		time.Sleep(50 * time.Millisecond) // the refill is timed, not an event
	}
}

// TestReloadRevokes: after a reload, connections of a removed or changed
// token are refused (40004) and closed; unchanged tokens carry on.
func TestReloadRevokes(t *testing.T) {
	s, st, _ := startTokenServer(t)
	rd := mustHello(t, s, "rd", "r")
	wr := mustHello(t, s, "wr", "w")
	adm := mustHello(t, s, "adm", "a")
	if err := st.Replace([]tokens.Token{tokens.New("adm", tokens.RoleAdmin, "a"), tokens.New("wr", tokens.RoleWrite, "w2")}); err != nil {
		t.Fatal(err)
	}
	for name, rc := range map[string]*rawConn{"rd (removed)": rd, "wr (new secret)": wr} {
		if err := rc.call(1, OpPing, AppendEmpty(nil)); codes.Of(err) != codes.AuthFailed {
			t.Fatalf("%s: %v, want 40004", name, err)
		}
		if !rc.closed() {
			t.Fatalf("%s: connection still open", name)
		}
	}
	if err := adm.call(1, OpDrain, drainBody); err != nil {
		t.Fatalf("unchanged admin token: %v", err)
	}
	if _, err := helloAs(t, s, "rd", "r", "test"); !errors.Is(err, codes.ErrAuthFailed) {
		t.Fatalf("removed token: %v", err)
	}
	mustHello(t, s, "wr", "w2")
}

// TestPeerNameGrantsNothing: on the client port a hello naming PeerName
// is an ordinary client, admin token or not: roles apply and deliveries
// are refused. A connection from ServePeers needs no token, skips the
// roles and may deliver.
func TestPeerNameGrantsNothing(t *testing.T) {
	s, _, _ := startTokenServer(t)
	deliver := AppendDeliverRequest(nil, DeliverRequest{Dst: 0, Src: 1, Records: []Record{{Seq: 1, Kind: 1, Followee: "a", Follower: "b"}}})
	rc, err := helloAs(t, s, "rd", "r", PeerName)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.call(1, OpFollow, followBody); codes.Of(err) != codes.NotAllowed {
		t.Fatalf("follow as read 'peer': %v", err)
	}
	if err := rc.call(2, OpDeliver, deliver); codes.Of(err) != codes.NotAllowed {
		t.Fatalf("deliver as read 'peer': %v", err)
	}
	adm, err := helloAs(t, s, "adm", "a", PeerName)
	if err != nil {
		t.Fatal(err)
	}
	if err := adm.call(1, OpDeliver, deliver); codes.Of(err) != codes.NotAllowed {
		t.Fatalf("deliver as admin 'peer' on the client port: %v", err)
	}
	peer := dialPeer(t, s)
	if err := peer.call(0, OpHello, AppendHello(nil, Hello{Version: 1, Client: PeerName})); err != nil {
		t.Fatalf("peer hello without a token: %v", err)
	}
	if err := peer.call(1, OpDeliver, deliver); err != nil {
		t.Fatalf("deliver from a peer: %v", err)
	}
	if err := peer.call(2, OpFollow, followBody); err != nil {
		t.Fatalf("follow from a peer (no role check): %v", err)
	}
}

// FuzzHello: the hello decoder never panics, keeps its limits, and what
// it decodes re-encodes to the same hello.
func FuzzHello(f *testing.F) {
	f.Add(AppendHello(nil, Hello{Version: 1, Token: "t"}))
	f.Add(AppendHello(nil, Hello{Version: 1, Token: "t", Client: "c", Name: "n"}))
	f.Add(AppendHello(nil, Hello{Version: 1, Client: PeerName, Name: "default"}))
	f.Add([]byte{0x94, 0x01, 0xa1, 't', 0xa0, 0xc0})
	f.Add([]byte{0x95, 0x01, 0xa0, 0xa0, 0xa0, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			return
		}
		if len(h.Token) > maxTokenLen || len(h.Name) > maxTokenNameLen || h.Version > 1<<16 {
			t.Fatalf("limits not kept: %+v", h)
		}
		if h2, err := ParseHello(AppendHello(nil, h)); err != nil || h2 != h {
			t.Fatalf("hello does not round-trip: %+v -> %+v, %v", h, h2, err)
		}
	})
}
