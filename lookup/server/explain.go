package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/mapdrop/mapdrop/failure"
)

// ExplainPrefix starts the map name of an explain request, a mapdropd
// extension of socketmap: the request "explain:MAP KEY" asks how KEY is
// looked up in MAP instead of its value. Postfix never sends it: a map name
// in a Postfix socketmap table cannot contain ":", and map names served by
// mapdropd never do.
//
// When the Tables implements Explainer, the reply is "OK " followed by its
// explanation text (which may span several lines), or its error as for a
// lookup; otherwise the request is answered PERM. Explain requests are not
// lookups: they do not go through Tables.Lookup.
const ExplainPrefix = "explain:"

// Explainer is implemented by a Tables that can explain its lookups.
type Explainer interface {
	// Explain describes how key is looked up in mapName: every key tried,
	// which one matched and where it comes from. A key that is not found
	// is explained too (nil error); an unknown map is an error.
	Explain(ctx context.Context, mapName, key string) (string, error)
}

// explain answers an explain request, turning a panic into a temporary
// error as lookup does.
func (s *Server) explain(ctx context.Context, c *conn, mapName, key string) (text string, err error) {
	ex, ok := s.Tables.(Explainer)
	if !ok {
		return "", failure.Perm("this server cannot explain lookups")
	}
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("explain panicked", "map", mapName, "panic", fmt.Sprint(p))
			text, err = "", errors.New("internal error")
		}
	}()
	s.logger().Info("explain", "remote", c.remote, "map", mapName, "key", key)
	return ex.Explain(ctx, mapName, key)
}
