package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/systemd"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/tables/reload"
)

// tcpTableFDName starts the name (FileDescriptorName= in the .socket unit)
// of a socket passed by systemd that serves one map over tcp_table:
// "tcp_table=virtual_alias". Every other name (systemd's default, the
// socket unit's name) is a socketmap socket. systemd does not allow ":" in
// descriptor names, hence "=".
const tcpTableFDName = "tcp_table="

// servePassed serves the sockets systemd passed (socket activation) and
// returns how many there were.
func servePassed(srv *server.Server, log *slog.Logger) (int, error) {
	socks, err := systemd.Listeners()
	if err != nil {
		return 0, failure.Wrap(failure.Permanent, err, "sockets passed by systemd")
	}
	for i, s := range socks {
		name := fmt.Sprintf("systemd:%d:%s", 3+i, s.Name)
		if m, ok := strings.CutPrefix(s.Name, tcpTableFDName); ok {
			err = srv.ServeTCPTable(s.Listener, m, name)
		} else {
			err = srv.ServeSocketmap(s.Listener, name)
		}
		if err != nil {
			for _, s := range socks[i:] {
				s.Listener.Close()
			}
			return 0, failure.Wrap(failure.Permanent, err, "socket %s passed by systemd", name)
		}
	}
	if len(socks) > 0 {
		log.Info("serving sockets passed by systemd", "count", len(socks))
	}
	return len(socks), nil
}

// statusText is the one-line summary for systemd's STATUS=.
func statusText(rl *reload.Reloader) string {
	if rl == nil {
		return "serving maps from etcd"
	}
	st := rl.Status()
	s := fmt.Sprintf("serving %d maps, %d entries", st.Maps, st.Entries)
	if len(st.Failing) == 0 {
		return s + ", no errors"
	}
	return s + fmt.Sprintf(", %d failing to load: %s", len(st.Failing), strings.Join(st.Failing, " "))
}
