package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

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
// Limits: the design does not enforce followgraph's 5,000-following cap.
// Doing it atomically needs a Lua script (ZCARD, then ZADD only if under the
// cap) instead of a plain MULTI; leaving it out makes this baseline slightly
// cheaper per follow than followgraph, which checks the cap on every follow.
type RedisTarget struct {
	c    *redis.Client
	addr string
	pool int
}

// OpenRedis connects to Redis at addr. o.Conns is the connection pool size
// (at least 64, so that the harness' concurrency never waits for a
// connection).
func OpenRedis(ctx context.Context, addr string, o TargetOptions) (*RedisTarget, error) {
	pool := max(o.Conns, 64)
	c := redis.NewClient(&redis.Options{
		Addr:     addr,
		PoolSize: pool,
		// Run pipelines and transactions on the main pool too, so the pool
		// size is the one connection budget (go-redis otherwise keeps a
		// separate 10-connection pipeline pool).
		PipelinePoolSize: -1,
		// Bound operations by the caller's context only, as the followd
		// client does: no 5-second socket timeout cutting a long bulk load
		// or FLUSHALL short.
		ContextTimeoutEnabled: true,
		ReadTimeout:           -1,
		WriteTimeout:          -1,
		// Nothing to negotiate with a plain Redis server: skip the
		// connect-time CLIENT SETINFO and CLIENT MAINT_NOTIFICATIONS.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, rerr(ctx, "ping "+addr, err)
	}
	return &RedisTarget{c: c, addr: addr, pool: pool}, nil
}

// Client returns the underlying client.
func (r *RedisTarget) Client() *redis.Client { return r.c }

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

func (r *RedisTarget) Info(ctx context.Context) (TargetInfo, error) {
	var info *redis.StringCmd
	cfg := make([]*redis.MapStringStringCmd, 3)
	params := []string{"appendonly", "appendfsync", "save"}
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		info = p.Info(ctx, "server")
		for i, k := range params {
			cfg[i] = p.ConfigGet(ctx, k)
		}
		return nil
	})
	if err := info.Err(); err != nil {
		return TargetInfo{}, rerr(ctx, "info server", err)
	}
	ti := TargetInfo{Kind: "redis", Addr: r.addr, Version: infoField(info.Val(), "redis_version")}
	var notes []string
	if err != nil {
		// CONFIG is often renamed or disabled on managed Redis.
		notes = append(notes, fmt.Sprintf("config unavailable (%v)", err))
	} else {
		for i, k := range params {
			notes = append(notes, k+"="+cfg[i].Val()[k])
		}
	}
	notes = append(notes, fmt.Sprintf("pool=%d", r.pool), "both sides written in one MULTI/EXEC", "no following cap")
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
	members := make([]redis.Z, 0, len(targets))
	for _, t := range targets {
		if t != actor {
			members = append(members, redis.Z{Score: now, Member: t})
		}
	}
	if len(members) == 0 {
		return nil
	}
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddNX(ctx, followingKey(actor), members...)
		for _, m := range members {
			p.ZAddNX(ctx, followersKey(m.Member.(string)), redis.Z{Score: now, Member: actor})
		}
		return nil
	})
	return rerr(ctx, "follow", err)
}

// Unfollow removes both sides of every edge in one MULTI/EXEC round trip.
func (r *RedisTarget) Unfollow(ctx context.Context, actor string, targets []string) error {
	members := make([]any, 0, len(targets))
	for _, t := range targets {
		if t != actor {
			members = append(members, t)
		}
	}
	if len(members) == 0 {
		return nil
	}
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, followingKey(actor), members...)
		for _, t := range members {
			p.ZRem(ctx, followersKey(t.(string)), actor)
		}
		return nil
	})
	return rerr(ctx, "unfollow", err)
}

// Check reads both flags for all targets in one round trip: ZMSCORE
// following:{actor} targets... (flag 2: actor follows target) and ZMSCORE
// followers:{actor} targets... (flag 1: target follows actor). ZMSCORE is
// the batched ZSCORE: two commands whatever the number of targets. go-redis
// reads an absent member's nil score as 0; scores are Unix milliseconds
// written by this type, never 0, so 0 means absent.
func (r *RedisTarget) Check(ctx context.Context, actor string, targets []string) ([]uint8, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	ts := make([]string, len(targets))
	copy(ts, targets)
	var fwd, rev *redis.FloatSliceCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		fwd = p.ZMScore(ctx, followingKey(actor), ts...)
		rev = p.ZMScore(ctx, followersKey(actor), ts...)
		return nil
	})
	if err != nil {
		return nil, rerr(ctx, "check", err)
	}
	f, b := fwd.Val(), rev.Val()
	if len(f) != len(targets) || len(b) != len(targets) {
		return nil, codes.New(codes.Internal, "redis check: %d and %d scores for %d targets", len(f), len(b), len(targets))
	}
	out := make([]uint8, len(targets))
	for i := range targets {
		if f[i] != 0 {
			out[i] |= 2
		}
		if b[i] != 0 {
			out[i] |= 1
		}
	}
	return out, nil
}

// Counts reads ZCARD of both sets and ZINTERCARD of the two (the mutual
// count, computed on each call) for every user in one pipelined round trip.
func (r *RedisTarget) Counts(ctx context.Context, users []string) ([]Counts, error) {
	cmds := make([]*redis.IntCmd, 0, 3*len(users))
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range users {
			fk, rk := followingKey(u), followersKey(u)
			cmds = append(cmds, p.ZCard(ctx, fk), p.ZCard(ctx, rk), p.ZInterCard(ctx, 0, fk, rk))
		}
		return nil
	})
	if err != nil {
		return nil, rerr(ctx, "counts", err)
	}
	out := make([]Counts, len(users))
	for i := range users {
		out[i] = Counts{cmds[3*i].Val(), cmds[3*i+1].Val(), cmds[3*i+2].Val()}
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
// starts at max=score (inclusive) skipping those n, and ties (a bulk load
// gives many edges the same millisecond) are paged without loss or
// duplicates. The extra item tells whether another page exists, so a page
// that ends the list has Next "" (no trailing empty page, as followgraph).
// Redis orders equal scores by member descending.
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
	zs, err := r.c.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{
		Min: "-inf", Max: maxScore, Offset: prevN, Count: int64(limit) + 1,
	}).Result()
	if err != nil {
		return Page{}, rerr(ctx, "list", err)
	}
	more := len(zs) > limit
	if more {
		zs = zs[:limit]
	}
	p := Page{Items: make([]Item, len(zs))}
	for i, z := range zs {
		p.Items[i] = Item{User: member(z.Member), Time: int64(z.Score)}
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
	zs, err := r.c.ZInterWithScores(ctx, &redis.ZStore{
		Keys: []string{followingKey(user), followersKey(user)}, Aggregate: "MAX",
	}).Result()
	if err != nil {
		return Page{}, rerr(ctx, "mutual", err)
	}
	items := make([]Item, len(zs))
	for i, z := range zs {
		items[i] = Item{User: member(z.Member), Time: int64(z.Score)}
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

func member(m any) string {
	if s, ok := m.(string); ok {
		return s
	}
	return fmt.Sprint(m)
}

// Load writes the batch with one plain pipeline (no MULTI: bulk loading
// needs no atomicity), one round trip for the whole batch. Every edge of the
// batch gets the same score, the time of the call.
func (r *RedisTarget) Load(ctx context.Context, batch []FollowBatch) error {
	now := float64(time.Now().UnixMilli())
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range batch {
			members := make([]redis.Z, 0, len(b.Targets))
			for _, t := range b.Targets {
				if t == b.Actor {
					continue
				}
				members = append(members, redis.Z{Score: now, Member: t})
				p.ZAddNX(ctx, followersKey(t), redis.Z{Score: now, Member: b.Actor})
			}
			if len(members) > 0 {
				p.ZAddNX(ctx, followingKey(b.Actor), members...)
			}
		}
		return nil
	})
	return rerr(ctx, "load", err)
}

// Quiesce has nothing to wait for: Redis writes both sides synchronously.
func (r *RedisTarget) Quiesce(ctx context.Context) error { return nil }

// Memory reads used_memory_rss from INFO memory. The edge count is left at
// 0: counting would mean scanning every key, and the harness knows how
// many edges it loaded.
func (r *RedisTarget) Memory(ctx context.Context) (Memory, error) {
	s, err := r.c.Info(ctx, "memory").Result()
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

// Flush removes everything (FLUSHALL, synchronously).
func (r *RedisTarget) Flush(ctx context.Context) error {
	return rerr(ctx, "flushall", r.c.FlushAll(ctx).Err())
}

func (r *RedisTarget) Close() error { return r.c.Close() }

var _ Target = (*RedisTarget)(nil)
