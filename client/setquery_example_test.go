package client_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/followgraph/followgraph/client"
)

func ExampleClient_KnownFollowers() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	// kf-me follows kf-ann and kf-bo, who follow kf-star; kf-cy follows
	// kf-star too, but kf-me does not follow kf-cy.
	c.Follow(ctx, "kf-me", []string{"kf-ann", "kf-bo"}, client.Sync())
	for _, f := range []string{"kf-ann", "kf-bo", "kf-cy"} {
		c.Follow(ctx, f, []string{"kf-star"}, client.Sync())
	}
	// Page through the set, one member a page: newest follower of
	// kf-star first; each page's Total counts the whole set.
	var known []string
	cursor := ""
	for {
		page, err := c.KnownFollowers(ctx, "kf-me", "kf-star", client.Limit(1), client.Cursor(cursor))
		if err != nil {
			panic(err)
		}
		fmt.Println("page of", len(page.Items), "of", page.Total)
		for _, it := range page.Items {
			known = append(known, it.UserID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	slices.Sort(known)
	fmt.Println(known)
	// Output:
	// page of 1 of 2
	// page of 1 of 2
	// [kf-ann kf-bo]
}

func ExampleClient_CommonFollowing() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	c.Follow(ctx, "cf-a", []string{"cf-x", "cf-y"}, client.Sync())
	c.Follow(ctx, "cf-b", []string{"cf-y", "cf-z"}, client.Sync())
	page, _ := c.CommonFollowing(ctx, "cf-a", "cf-b")
	fmt.Println(page.Total, page.Items[0].UserID)
	// Output: 1 cf-y
}

func ExampleClient_Relationships() {
	ctx := context.Background()
	c, _ := client.New(ctx, client.Config{Addrs: []string{exampleAddr}})
	defer c.Close()
	c.Follow(ctx, "rel-a", []string{"rel-b"}, client.Sync())
	rs, _ := c.Relationships(ctx, client.Pair{From: "rel-a", To: "rel-b"}, client.Pair{From: "rel-b", To: "rel-a"}, client.Pair{From: "rel-a", To: ""})
	for _, r := range rs {
		fmt.Println(r.From, r.To, int(r.Code), r.Follows(), r.FollowedBy())
	}
	// Output:
	// rel-a rel-b 0 true false
	// rel-b rel-a 0 false true
	// rel-a  30001 false false
}
