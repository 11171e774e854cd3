//go:build pins

// This file only pins the core dependencies the brief fixes (memberlist for
// the cluster issue) in go.mod before code imports them; the "pins" build
// tag keeps it out of every build.
package cluster

import (
	_ "github.com/hashicorp/memberlist"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/vmihailenco/msgpack/v5"
)
