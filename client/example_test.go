package client_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/followgraph/followgraph/client"
)

func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// Follow: one result per target. Sync waits for the targets' followers
	// lists too, so the read below sees the edge.
	res, _ := c.Follow(ctx, "ex-alice", []string{"ex-bob", "ex-alice"}, client.Sync())
	for _, r := range res {
		fmt.Println(r.UserID, int(r.Code))
	}
	page, _ := c.Followers(ctx, "ex-bob")
	fmt.Println(len(page.Items), page.Items[0].UserID)
	// Output:
	// ex-bob 0
	// ex-alice 30001
	// 1 ex-alice
}

func ExampleClient_Followers() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	for _, fan := range []string{"fan1", "fan2", "fan3"} {
		c.Follow(ctx, fan, []string{"ex-star"}, client.Sync())
	}
	// Page through a list: pass each page's NextCursor to the next call
	// until it is empty.
	cursor, n := "", 0
	for {
		page, err := c.Followers(ctx, "ex-star", client.Limit(2), client.Cursor(cursor))
		if err != nil {
			panic(err)
		}
		n += len(page.Items)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	fmt.Println(n, "followers")
	// Output: 3 followers
}

func ExampleClient_Check() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	c.Follow(ctx, "ex-me", []string{"ex-friend"}, client.Sync())
	c.Follow(ctx, "ex-friend", []string{"ex-me"}, client.Sync())
	checks, _ := c.Check(ctx, "ex-me", "ex-friend", "ex-stranger")
	for _, ch := range checks {
		fmt.Println(ch.UserID, ch.FollowType)
	}
	// Output:
	// ex-friend 3
	// ex-stranger 0
}

func ExampleClient_Follow_errors() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	targets := make([]string, 21) // over the limit of 20
	_, err := c.Follow(ctx, "ex-alice", targets)
	fmt.Println(errors.Is(err, client.ErrInvalidParam))
	// Output: true
}

func ExampleClient_Watch() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	// Watch from now: every change committed after Watch returns arrives.
	// A consumer that keeps w.Positions() can resume from them later
	// (WatchOptions.From) without losing or repeating an event.
	w, err := c.Watch(ctx, client.WatchOptions{Users: []string{"ex-dora"}})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	c.Follow(ctx, "ex-carl", []string{"ex-dora"}, client.Sync())
	c.Follow(ctx, "ex-dora", []string{"ex-carl"}, client.Sync())
	seen := map[string]bool{}
	for len(seen) < 6 {
		e, err := w.Next(ctx)
		if err != nil {
			panic(err)
		}
		seen[fmt.Sprint(e.Kind, " ", e.User, " ", e.Other)] = true
	}
	for _, k := range []string{"following_added ex-carl ex-dora", "follower_added ex-dora ex-carl",
		"following_added ex-dora ex-carl", "mutual_formed ex-dora ex-carl",
		"follower_added ex-carl ex-dora", "mutual_formed ex-carl ex-dora"} {
		fmt.Println(k, seen[k])
	}
	// Output:
	// following_added ex-carl ex-dora true
	// follower_added ex-dora ex-carl true
	// following_added ex-dora ex-carl true
	// mutual_formed ex-dora ex-carl true
	// follower_added ex-carl ex-dora true
	// mutual_formed ex-carl ex-dora true
}
