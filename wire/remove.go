package wire

import "context"

// RemoveUserRequest is [user, flags]: remove the user's whole graph
// (every edge it follows and every edge that follows it, both sides,
// with the mutual relations), in the background. Asking again while it
// runs is harmless: it reports the progress. With flags bit 0 (Query),
// the request only reports the progress (running false: no removal of
// the user is running) and starts nothing.
type RemoveUserRequest struct {
	User  string
	Query bool
}

// AppendRemoveUserRequest encodes a remove-user request.
func AppendRemoveUserRequest(b []byte, q RemoveUserRequest) []byte {
	b = appendStr(appendArray(b, 2), q.User)
	var flags uint64
	if q.Query {
		flags |= 1
	}
	return appendUint(b, flags)
}

// ParseRemoveUserRequest decodes a remove-user request.
func ParseRemoveUserRequest(body []byte) (RemoveUserRequest, error) {
	r := reader{b: body}
	r.arrayN(2)
	q := RemoveUserRequest{User: r.id("user", 0), Query: r.uint()&1 != 0}
	return q, wrap(r.done(), "remove-user request")
}

// RemovalProgress is the answer to a remove-user request:
//
//	[running, removed, following, followers]
//
// running is false once nothing of the user is left (the user is then a
// fresh one); removed counts the edges removed so far, following and
// followers the entries the user's lists still hold.
type RemovalProgress struct {
	Running              bool
	Removed              uint64
	Following, Followers uint64
}

// AppendRemovalProgress encodes a remove-user response.
func AppendRemovalProgress(b []byte, p RemovalProgress) []byte {
	b = appendArray(b, 4)
	b = appendBool(b, p.Running)
	b = appendUint(b, p.Removed)
	b = appendUint(b, p.Following)
	return appendUint(b, p.Followers)
}

// ParseRemovalProgress decodes a remove-user response.
func ParseRemovalProgress(body []byte) (RemovalProgress, error) {
	r := reader{b: body}
	r.arrayN(4)
	p := RemovalProgress{Running: r.bool(), Removed: r.uint(), Following: r.uint(), Followers: r.uint()}
	return p, wrap(r.done(), "remove-user response")
}

func serveRemoveUser(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	q, err := ParseRemoveUserRequest(body)
	if err != nil {
		return b, err
	}
	p, err := s.handler.RemoveUser(ctx, q)
	if err != nil {
		return b, err
	}
	return AppendRemovalProgress(b, p), nil
}
