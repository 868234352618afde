package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

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

// statusHook follows the reloader's results for systemd's STATUS=: it
// signals changed after every load attempt (from the watcher, SIGHUP or
// startup), so that serve refreshes STATUS= after reloads systemd did not
// ask for, and remembers which maps have a load held back for the admin's
// confirmation.
type statusHook struct {
	changed chan struct{}
	mu      sync.Mutex
	held    map[string]bool
}

// statusOnResult hooks a statusHook into cfg's OnResult, after what was
// there.
func statusOnResult(cfg *reload.Config) *statusHook {
	h := &statusHook{changed: make(chan struct{}, 1), held: map[string]bool{}}
	next := cfg.OnResult
	cfg.OnResult = func(name string, entries int, err error) {
		if next != nil {
			next(name, entries, err)
		}
		var hb *reload.HeldBack
		h.mu.Lock()
		h.held[name] = errors.As(err, &hb)
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
	return h
}

// text is the one-line summary for STATUS=: maps and entries served, then
// the maps whose newest file is held back (waiting for mapdropd confirm)
// and those whose file failed to load.
func (h *statusHook) text(rl *reload.Reloader) string {
	if rl == nil {
		return "serving maps from etcd"
	}
	st := rl.Status()
	s := fmt.Sprintf("serving %d maps, %d entries", st.Maps, st.Entries)
	var held, failing []string
	h.mu.Lock()
	for _, name := range st.Failing {
		if h.held[name] {
			held = append(held, name)
		} else {
			failing = append(failing, name)
		}
	}
	h.mu.Unlock()
	if len(held) == 0 && len(failing) == 0 {
		return s + ", no errors"
	}
	if len(held) > 0 {
		s += fmt.Sprintf(", %d held back (mapdropd confirm): %s", len(held), strings.Join(held, " "))
	}
	if len(failing) > 0 {
		s += fmt.Sprintf(", %d failing to load: %s", len(failing), strings.Join(failing, " "))
	}
	return s
}

// drain empties a signal channel.
func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}

// unmappedUIDs returns the uids of uids that the user namespace described
// by uidMap (the text of /proc/self/uid_map: lines "INSIDE OUTSIDE COUNT")
// does not map. A peer with such a uid reads as the overflow uid (65534)
// through SO_PEERCRED, so it is limited like every other unmapped user:
// what systemd's PrivateUsers= does to postfix.
func unmappedUIDs(uidMap string, uids []uint32) []uint32 {
	type span struct{ lo, n uint64 }
	var spans []span
	for _, line := range strings.Split(uidMap, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		lo, err1 := strconv.ParseUint(f[0], 10, 64)
		n, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			spans = append(spans, span{lo, n})
		}
	}
	var out []uint32
	for _, u := range uids {
		mapped := false
		for _, s := range spans {
			if uint64(u) >= s.lo && uint64(u)-s.lo < s.n {
				mapped = true
			}
		}
		if !mapped {
			out = append(out, u)
		}
	}
	return out
}

// warnUnmapped logs, at ERROR, every privileged uid that this process's
// user namespace does not map.
func warnUnmapped(uids []uint32, log *slog.Logger) {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return
	}
	for _, u := range unmappedUIDs(string(b), uids) {
		log.Error("-privileged-users: this uid is not mapped in mapdropd's user namespace (systemd PrivateUsers=, a container): its connections read as uid 65534 and share the per-uid limit of every unmapped local user, who could lock it out; run mapdropd without a user namespace of its own",
			"uid", u)
	}
}
