package wire

import "github.com/followgraph/followgraph/internal/tokens"

// Role returns the least role a client token needs for op, as the server
// checks it on the client port, so that other front ends (the HTTP APIs)
// grant exactly what the binary port grants. An unknown op needs
// RoleNone, which no token has.
func (o Op) Role() tokens.Role {
	if s := ops[o]; s != nil {
		return s.role
	}
	return tokens.RoleNone
}

// Handler returns the handler the server serves, for front ends that run
// in the same process (the HTTP APIs) and call it directly.
func (s *Server) Handler() Handler { return s.handler }
