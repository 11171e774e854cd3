package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/followgraph/followgraph/codes"
)

// RedisTarget is the design a user would write without followgraph: two
// sorted sets per user, following:{u} and followers:{u}, whose members are
// user IDs and whose scores are follow times in Unix milliseconds chosen by
// the client. The {u} hash tag keeps a user's two sets in one cluster slot,
// so the per-user multi-key commands (ZINTER, ZINTERCARD) would also work on
// Redis Cluster.
//
// Both sides of an edge are written in one MULTI/EXEC, synchronously: there
// is nothing to wait for in Quiesce.
//
// The client is rueidis, which auto-pipelines: concurrent calls share a few
// connections and are written and read in batches, as the followgraph client
// does, so the comparison is not between a pipelining client and a
// one-request-per-connection one.
//
// Limits: the design does not enforce followgraph's 5,000-following cap.
// Doing it atomically needs a Lua script (ZCARD, then ZADD only if under the
// cap) instead of a plain MULTI; leaving it out makes this baseline slightly
// cheaper per follow than followgraph, which checks the cap on every follow.
type RedisTarget struct {
	c     rueidis.Client
	addr  string
	conns int
}

// defaultRedisConns is the number of pipelined connections when
// TargetOptions.Conns is not set: the followd client's default, and enough
// for a few hundred concurrent callers (each connection has a ring of
// 2^redisRingScale in-flight commands).
const (
	defaultRedisConns = 4
	redisRingScale    = 10
)

// OpenRedis connects to Redis at addr. o.Conns is the number of pipelined
// connections (default 4); rueidis wants a power of two, so it is rounded
// down to one, between 1 and 256.
func OpenRedis(ctx context.Context, addr string, o TargetOptions) (*RedisTarget, error) {
	conns := o.Conns
	if conns <= 0 {
		conns = defaultRedisConns
	}
	mux := min(bits.Len(uint(conns))-1, rueidis.MaxPipelineMultiplex)
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{addr},
		// A single server, as go-redis' NewClient would assume: no CLUSTER
		// SLOTS probe at connect time.
		ForceSingleClient: true,
		// No client-side caching: every read goes to the server, as the
		// followgraph client's do.
		DisableCache: true,
		// 2^mux connections, each with a ring of 2^10 in-flight commands.
		PipelineMultiplex: mux,
		RingScaleEachConn: redisRingScale,
		// Bound operations by the caller's context only, as the followd
		// client does: no 10-second connection timeout cutting a long bulk
		// load or FLUSHALL short (and no background PINGs).
		ConnWriteTimeout: -1,
		// Nothing to negotiate with a plain Redis server: skip the
		// connect-time CLIENT SETINFO.
		ClientSetInfo: rueidis.DisableClientSetInfo,
	})
	if err != nil {
		return nil, rerr(ctx, "connect "+addr, err)
	}
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		c.Close()
		return nil, rerr(ctx, "ping "+addr, err)
	}
	return &RedisTarget{c: c, addr: addr, conns: 1 << mux}, nil
}

// Client returns the underlying client.
func (r *RedisTarget) Client() rueidis.Client { return r.c }

func followingKey(u string) string { return "following:{" + u + "}" }
func followersKey(u string) string { return "followers:{" + u + "}" }

// rerr gives a Redis error a followgraph code so the harness counts it:
// Timeout when the caller's context ran out or the network timed out (as the
// followd client reports it), Internal otherwise.
func rerr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return codes.New(codes.Timeout, "redis %s: %v", op, err)
	}
	return codes.New(codes.Internal, "redis %s: %v", op, err)
}

// doMulti sends cmds as one pipeline (one write, one round trip) and
// returns the replies, or the first error among them. A caller whose
// context is already done gets its error without anything being sent: the
// write may otherwise still happen, as rueidis only watches the context
// while waiting for a reply.
func (r *RedisTarget) doMulti(ctx context.Context, cmds rueidis.Commands) ([]rueidis.RedisResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := r.c.DoMulti(ctx, cmds...)
	for _, x := range res {
		if err := x.Error(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// tx runs cmds in one MULTI/EXEC, sent as one pipeline: MULTI, the
// commands, EXEC. rueidis writes a DoMulti's commands back to back on one
// connection, so no other caller's command lands inside the transaction.
// It fails if any reply, the queued commands' or EXEC's, is an error.
func (r *RedisTarget) tx(ctx context.Context, cmds rueidis.Commands) error {
	all := make(rueidis.Commands, 0, len(cmds)+2)
	all = append(all, r.c.B().Multi().Build())
	all = append(all, cmds...)
	all = append(all, r.c.B().Exec().Build())
	res, err := r.doMulti(ctx, all)
	if err != nil {
		return err
	}
	replies, err := res[len(res)-1].ToArray()
	if err != nil {
		return err // EXEC aborted
	}
	if len(replies) != len(cmds) {
		return fmt.Errorf("EXEC returned %d replies for %d commands", len(replies), len(cmds))
	}
	for i := range replies {
		if err := replies[i].Error(); err != nil {
			return err
		}
	}
	return nil
}

func (r *RedisTarget) Info(ctx context.Context) (TargetInfo, error) {
	params := []string{"appendonly", "appendfsync", "save"}
	cmds := rueidis.Commands{r.c.B().Info().Section("server").Build()}
	for _, k := range params {
		cmds = append(cmds, r.c.B().ConfigGet().Parameter(k).Build())
	}
	if err := ctx.Err(); err != nil {
		return TargetInfo{}, rerr(ctx, "info server", err)
	}
	res := r.c.DoMulti(ctx, cmds...)
	info, err := res[0].ToString()
	if err != nil {
		return TargetInfo{}, rerr(ctx, "info server", err)
	}
	ti := TargetInfo{Kind: "redis", Addr: r.addr, Version: infoField(info, "redis_version")}
	var notes []string
	cfg := make([]string, len(params))
	for i, k := range params {
		m, e := res[1+i].AsStrMap()
		if e != nil {
			// CONFIG is often renamed or disabled on managed Redis.
			err = e
			break
		}
		cfg[i] = m[k]
	}
	if err != nil {
		notes = append(notes, fmt.Sprintf("config unavailable (%v)", err))
	} else {
		for i, k := range params {
			notes = append(notes, k+"="+cfg[i])
		}
	}
	notes = append(notes, "client=rueidis auto-pipelining", fmt.Sprintf("conns=%d", r.conns),
		"both sides written in one MULTI/EXEC", "no following cap")
	ti.Notes = strings.Join(notes, " ")
	return ti, nil
}

// infoField returns the value of name in an INFO reply.
func infoField(info, name string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && k == name {
			return v
		}
	}
	return ""
}

// Follow writes both sides of every edge in one MULTI/EXEC round trip:
// ZADD NX following:{actor} (all targets in one command), then ZADD NX
// followers:{target} per target. NX keeps the original follow time, so
// following again is a no-op, as in followgraph. A self-follow is skipped
// (followgraph rejects that item).
func (r *RedisTarget) Follow(ctx context.Context, actor string, targets []string) error {
	now := float64(time.Now().UnixMilli())
	cmds := r.appendFollows(nil, actor, targets, now)
	if len(cmds) == 0 {
		return nil
	}
	return rerr(ctx, "follow", r.tx(ctx, cmds))
}

// appendFollows appends to cmds the ZADD NX commands of actor following
// targets at score: the following side first (one command), then one per
// target. Self-follows are left out; nothing is appended if none is left.
func (r *RedisTarget) appendFollows(cmds rueidis.Commands, actor string, targets []string, score float64) rueidis.Commands {
	n := 0
	for _, t := range targets {
		if t != actor {
			n++
		}
	}
	if n == 0 {
		return cmds
	}
	fwd := r.c.B().Zadd().Key(followingKey(actor)).Nx().ScoreMember()
	for _, t := range targets {
		if t != actor {
			fwd = fwd.ScoreMember(score, t)
		}
	}
	cmds = append(cmds, fwd.Build())
	for _, t := range targets {
		if t != actor {
			cmds = append(cmds, r.c.B().Zadd().Key(followersKey(t)).Nx().ScoreMember().ScoreMember(score, actor).Build())
		}
	}
	return cmds
}

// Unfollow removes both sides of every edge in one MULTI/EXEC round trip.
func (r *RedisTarget) Unfollow(ctx context.Context, actor string, targets []string) error {
	members := make([]string, 0, len(targets))
	for _, t := range targets {
		if t != actor {
			members = append(members, t)
		}
	}
	if len(members) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, 1+len(members))
	cmds = append(cmds, r.c.B().Zrem().Key(followingKey(actor)).Member(members...).Build())
	for _, t := range members {
		cmds = append(cmds, r.c.B().Zrem().Key(followersKey(t)).Member(actor).Build())
	}
	return rerr(ctx, "unfollow", r.tx(ctx, cmds))
}

// Check reads both flags for all targets in one round trip: ZMSCORE
// following:{actor} targets... (flag 2: actor follows target) and ZMSCORE
// followers:{actor} targets... (flag 1: target follows actor). ZMSCORE is
// the batched ZSCORE: two commands whatever the number of targets. An
// absent member's score is nil.
func (r *RedisTarget) Check(ctx context.Context, actor string, targets []string) ([]uint8, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	res, err := r.doMulti(ctx, rueidis.Commands{
		r.c.B().Zmscore().Key(followingKey(actor)).Member(targets...).Build(),
		r.c.B().Zmscore().Key(followersKey(actor)).Member(targets...).Build(),
	})
	if err != nil {
		return nil, rerr(ctx, "check", err)
	}
	f, err1 := res[0].ToArray()
	b, err2 := res[1].ToArray()
	if err := errors.Join(err1, err2); err != nil {
		return nil, rerr(ctx, "check", err)
	}
	if len(f) != len(targets) || len(b) != len(targets) {
		return nil, codes.New(codes.Internal, "redis check: %d and %d scores for %d targets", len(f), len(b), len(targets))
	}
	out := make([]uint8, len(targets))
	for i := range targets {
		if !f[i].IsNil() {
			out[i] |= 2
		}
		if !b[i].IsNil() {
			out[i] |= 1
		}
	}
	return out, nil
}

// Counts reads ZCARD of both sets and ZINTERCARD of the two (the mutual
// count, computed on each call) for every user in one pipelined round trip.
func (r *RedisTarget) Counts(ctx context.Context, users []string) ([]Counts, error) {
	out := make([]Counts, len(users))
	if len(users) == 0 {
		return out, nil
	}
	cmds := make(rueidis.Commands, 0, 3*len(users))
	for _, u := range users {
		fk, rk := followingKey(u), followersKey(u)
		cmds = append(cmds,
			r.c.B().Zcard().Key(fk).Build(),
			r.c.B().Zcard().Key(rk).Build(),
			r.c.B().Zintercard().Numkeys(2).Key(fk, rk).Build())
	}
	res, err := r.doMulti(ctx, cmds)
	if err != nil {
		return nil, rerr(ctx, "counts", err)
	}
	for i := range users {
		var errs [3]error
		out[i].Following, errs[0] = res[3*i].AsInt64()
		out[i].Followers, errs[1] = res[3*i+1].AsInt64()
		out[i].Mutual, errs[2] = res[3*i+2].AsInt64()
		if err := errors.Join(errs[:]...); err != nil {
			return nil, rerr(ctx, "counts", err)
		}
	}
	return out, nil
}

// Page size limits, as followgraph's.
const (
	defaultLimit = 100
	maxLimit     = 500
)

// List returns a page newest first.
//
// Following and followers: ZREVRANGEBYSCORE key max -inf WITHSCORES LIMIT
// offset limit+1. The cursor is "score:n": the last score returned and how
// many members with that score have been returned so far, so the next page
// starts at max=score (inclusive) skipping those n, and ties (follows in
// the same millisecond) are paged without loss or duplicates. The extra
// item tells whether another page exists, so a page that ends the list has
// Next "" (no trailing empty page, as followgraph). Redis orders equal
// scores by member descending.
//
// Mutual: Redis keeps no index for it, so every page computes ZINTER
// following:{u} followers:{u} AGGREGATE MAX WITHSCORES (the mutual time is
// the later of the two follows), sorts it client-side (score desc, member
// asc, as followgraph) and slices it at a numeric offset. Each page costs
// O(min(|following|, |followers|) log) on the server and O(M log M) here.
func (r *RedisTarget) List(ctx context.Context, kind ListKind, user, cursor string, limit int) (Page, error) {
	if limit == 0 {
		limit = defaultLimit
	}
	if limit < 0 || limit > maxLimit {
		return Page{}, codes.New(codes.InvalidParam, "limit %d: want 1 to %d", limit, maxLimit)
	}
	switch kind {
	case Following:
		return r.listSet(ctx, followingKey(user), cursor, limit)
	case Followers:
		return r.listSet(ctx, followersKey(user), cursor, limit)
	case Mutual:
		return r.listMutual(ctx, user, cursor, limit)
	}
	return Page{}, codes.New(codes.InvalidParam, "list kind %d", kind)
}

// do sends one command (auto-pipelined with other callers' commands),
// returning a context error first, as doMulti does.
func (r *RedisTarget) do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if err := ctx.Err(); err != nil {
		return rueidis.NewErrorResult(err)
	}
	return r.c.Do(ctx, cmd)
}

func (r *RedisTarget) listSet(ctx context.Context, key, cursor string, limit int) (Page, error) {
	maxScore, prevN := "+inf", int64(0)
	var prev float64
	if cursor != "" {
		s, n, ok := strings.Cut(cursor, ":")
		var err1, err2 error
		if ok {
			prev, err1 = strconv.ParseFloat(s, 64)
			prevN, err2 = strconv.ParseInt(n, 10, 64)
		}
		if !ok || err1 != nil || err2 != nil || prevN < 1 {
			return Page{}, codes.New(codes.InvalidParam, "bad cursor %q", cursor)
		}
		maxScore = s
	}
	zs, err := r.do(ctx, r.c.B().Zrevrangebyscore().Key(key).Max(maxScore).Min("-inf").
		Withscores().Limit(prevN, int64(limit)+1).Build()).AsZScores()
	if err != nil {
		return Page{}, rerr(ctx, "list", err)
	}
	more := len(zs) > limit
	if more {
		zs = zs[:limit]
	}
	p := Page{Items: make([]Item, len(zs))}
	for i, z := range zs {
		p.Items[i] = Item{User: z.Member, Time: int64(z.Score)}
	}
	if more {
		last := zs[len(zs)-1].Score
		n := int64(0)
		for i := len(zs) - 1; i >= 0 && zs[i].Score == last; i-- {
			n++
		}
		if cursor != "" && last == prev {
			// The whole page had the cursor's score: skip those too.
			n += prevN
		}
		p.Next = strconv.FormatFloat(last, 'f', -1, 64) + ":" + strconv.FormatInt(n, 10)
	}
	return p, nil
}

func (r *RedisTarget) listMutual(ctx context.Context, user, cursor string, limit int) (Page, error) {
	off := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 1 {
			return Page{}, codes.New(codes.InvalidParam, "bad cursor %q", cursor)
		}
		off = n
	}
	zs, err := r.do(ctx, r.c.B().Zinter().Numkeys(2).Key(followingKey(user), followersKey(user)).
		AggregateMax().Withscores().Build()).AsZScores()
	if err != nil {
		return Page{}, rerr(ctx, "mutual", err)
	}
	items := make([]Item, len(zs))
	for i, z := range zs {
		items[i] = Item{User: z.Member, Time: int64(z.Score)}
	}
	slices.SortFunc(items, func(a, b Item) int {
		if a.Time != b.Time {
			if a.Time > b.Time {
				return -1
			}
			return 1
		}
		return strings.Compare(a.User, b.User)
	})
	p := Page{}
	if off < len(items) {
		end := min(off+limit, len(items))
		p.Items = items[off:end]
		if end < len(items) {
			p.Next = strconv.Itoa(end)
		}
	}
	return p, nil
}

// Load writes the batch with one plain pipeline (no MULTI: bulk loading
// needs no atomicity), one round trip for the whole batch. FollowBatch i of
// the call gets the score base+i, base being the call's time in Unix
// milliseconds: the edges of one FollowBatch (one actor) share a score,
// but a bulk load does not give thousands of a celebrity's followers one
// score, which would make the offset-based tie paging of List (LIMIT
// offset) quadratic for Redis. The last batches' times may run a few
// milliseconds ahead of the clock (64 with the harness' default batch).
func (r *RedisTarget) Load(ctx context.Context, batch []FollowBatch) error {
	base := time.Now().UnixMilli()
	var cmds rueidis.Commands
	for i, b := range batch {
		cmds = r.appendFollows(cmds, b.Actor, b.Targets, float64(base+int64(i)))
	}
	if len(cmds) == 0 {
		return nil
	}
	_, err := r.doMulti(ctx, cmds)
	return rerr(ctx, "load", err)
}

// Quiesce has nothing to wait for: Redis writes both sides synchronously.
func (r *RedisTarget) Quiesce(ctx context.Context) error { return nil }

// Memory reads used_memory_rss from INFO memory. The edge count is left at
// 0: counting would mean scanning every key, and the harness knows how
// many edges it loaded.
func (r *RedisTarget) Memory(ctx context.Context) (Memory, error) {
	s, err := r.do(ctx, r.c.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		return Memory{}, rerr(ctx, "info memory", err)
	}
	v := infoField(s, "used_memory_rss")
	rss, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return Memory{}, codes.New(codes.Internal, "redis info memory: used_memory_rss %q", v)
	}
	return Memory{RSSBytes: rss, Source: "INFO memory used_memory_rss"}, nil
}

// CPUSeconds reads used_cpu_user and used_cpu_sys from INFO cpu (the
// server process, its forked children excluded).
func (r *RedisTarget) CPUSeconds(ctx context.Context) (float64, string, error) {
	s, err := r.do(ctx, r.c.B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		return 0, "", rerr(ctx, "info cpu", err)
	}
	var total float64
	for _, f := range []string{"used_cpu_user", "used_cpu_sys"} {
		v, err := strconv.ParseFloat(infoField(s, f), 64)
		if err != nil {
			return 0, "", codes.New(codes.Internal, "redis info cpu: %s %q", f, infoField(s, f))
		}
		total += v
	}
	return total, "INFO cpu used_cpu_user + used_cpu_sys", nil
}

// Flush removes everything (FLUSHALL, synchronously).
func (r *RedisTarget) Flush(ctx context.Context) error {
	return rerr(ctx, "flushall", r.do(ctx, r.c.B().Flushall().Build()).Error())
}

func (r *RedisTarget) Close() error {
	r.c.Close()
	return nil
}

var _ Target = (*RedisTarget)(nil)
