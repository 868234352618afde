package server

import (
	"fmt"
	"net"
)

// ServeSocketmap serves socketmap requests on ln, a listener opened
// elsewhere (such as a socket passed by systemd), in the background until
// Shutdown, which closes it. name identifies it in log lines.
func (s *Server) ServeSocketmap(ln net.Listener, name string) error {
	s.init()
	if s.closing() {
		return ErrServerClosed
	}
	return s.serveListener(ln, protoSocketmap, "", name)
}

// ServeTCPTable serves tcp_table requests for mapName on ln, a listener
// opened elsewhere, as ServeSocketmap does.
func (s *Server) ServeTCPTable(ln net.Listener, mapName, name string) error {
	if mapName == "" {
		return fmt.Errorf("tcp_table listener %s: empty map name", name)
	}
	s.init()
	if s.closing() {
		return ErrServerClosed
	}
	return s.serveListener(ln, protoTCPTable, mapName, name)
}
