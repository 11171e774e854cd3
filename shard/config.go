package shard

import (
	"fmt"
)

// Config holds a Store's limits. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// MaxFollowing is the most users one user may follow (5,000 by
	// default). A follow that would pass it gets code 32100.
	MaxFollowing int
	// MaxFollowers caps a user's followers; 0 means unlimited (the
	// default). A reverse edge that would pass it is refused with 32101.
	MaxFollowers int
	// MaxTargets is the most targets of one Follow or Unfollow (20).
	MaxTargets int
	// MaxCheck is the most targets of one Check (100).
	MaxCheck int
	// MaxInfo is the most users of one Info (100).
	MaxInfo int
	// MaxPage is the largest page a List may ask for (500); DefaultPage is
	// used when it asks for 0 (100).
	MaxPage     int
	DefaultPage int
	// CursorKey authenticates cursors: a cursor is only accepted by a Store
	// with the same key, for the list and user it was made for. Replicas of
	// a shard must share it so that cursors survive a leader change.
	CursorKey []byte
	// Users is the table the Store names users through: the node's one
	// table, shared by all its Stores, so that each user ID is stored once
	// per node. Nil gives the Store a table of its own.
	Users *Users
}

// DefaultConfig returns the product's limits: a user follows at most 5,000
// users and has any number of followers; a write names at most 20 targets,
// a Check at most 100, an Info at most 100 users; a page holds at most 500
// entries, 100 when the request does not say.
func DefaultConfig() Config {
	return Config{
		MaxFollowing: 5000,
		MaxFollowers: 0,
		MaxTargets:   20,
		MaxCheck:     100,
		MaxInfo:      100,
		MaxPage:      500,
		DefaultPage:  100,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxFollowing < 1:
		return fmt.Errorf("shard: MaxFollowing (%d) must be at least 1", c.MaxFollowing)
	case c.MaxFollowers < 0:
		return fmt.Errorf("shard: MaxFollowers (%d) must be 0 (unlimited) or positive", c.MaxFollowers)
	case c.MaxTargets < 1:
		return fmt.Errorf("shard: MaxTargets (%d) must be at least 1", c.MaxTargets)
	case c.MaxCheck < 1:
		return fmt.Errorf("shard: MaxCheck (%d) must be at least 1", c.MaxCheck)
	case c.MaxInfo < 1:
		return fmt.Errorf("shard: MaxInfo (%d) must be at least 1", c.MaxInfo)
	case c.MaxPage < 1:
		return fmt.Errorf("shard: MaxPage (%d) must be at least 1", c.MaxPage)
	case c.DefaultPage < 1 || c.DefaultPage > c.MaxPage:
		return fmt.Errorf("shard: DefaultPage (%d) must be between 1 and MaxPage (%d)", c.DefaultPage, c.MaxPage)
	}
	return nil
}
