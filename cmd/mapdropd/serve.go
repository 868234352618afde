package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/internal/getent"
	"github.com/mapdrop/mapdrop/internal/metrics"
	"github.com/mapdrop/mapdrop/internal/systemd"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
	"github.com/mapdrop/mapdrop/tables/etcdsource"
	"github.com/mapdrop/mapdrop/tables/reload"
	"github.com/mapdrop/mapdrop/tables/store"
)

// tableFlags are the flags serve and export share: which files are tables,
// and how they are looked up.
type tableFlags struct {
	dir         string
	maps        multiFlag
	exportMaps  string
	delimiter   string
	addressMaps string
	exactMaps   string
}

func (tf *tableFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.dir, "tables", "", "every regular file in `DIR` is a table, one map per file named after it")
	fs.Var(&tf.maps, "map", "also serve the file PATH as map NAME, given as `NAME=PATH` (repeatable)")
	fs.StringVar(&tf.exportMaps, "export-maps", "mailbox_command", "comma-separated `LIST` of maps written as NAME.cdb to the export directory")
	fs.StringVar(&tf.delimiter, "recipient-delimiter", "+", "`CHARS` that start an address extension, as Postfix's recipient_delimiter (empty: none)")
	fs.StringVar(&tf.addressMaps, "address-maps", "", "comma-separated `LIST` of maps looked up as addresses (user+ext@domain, user@domain, @domain) whatever their name")
	fs.StringVar(&tf.exactMaps, "exact-maps", "", "comma-separated `LIST` of maps looked up by exact key only whatever their name")
}

// config turns the flags into a reload.Config (without logger or hook).
// needFiles makes -tables or -map required (serve without -etcd, export).
func (tf *tableFlags) config(needFiles bool) (reload.Config, error) {
	cfg := reload.Config{Dir: tf.dir, Maps: map[string]string{}, Matches: map[string]store.Match{}}
	if needFiles && tf.dir == "" && len(tf.maps) == 0 {
		return cfg, failure.New(failure.Usage, "-tables DIR (or at least one -map NAME=PATH) is required")
	}
	for _, m := range tf.maps {
		name, path, ok := strings.Cut(m, "=")
		if !ok || name == "" || path == "" {
			return cfg, failure.New(failure.Usage, "-map %q: want NAME=PATH", m)
		}
		cfg.Maps[name] = path
	}
	for _, n := range splitList(tf.addressMaps) {
		cfg.Matches[n] = store.Address
	}
	for _, n := range splitList(tf.exactMaps) {
		if _, dup := cfg.Matches[n]; dup {
			return cfg, failure.New(failure.Usage, "map %s is in both -address-maps and -exact-maps", n)
		}
		cfg.Matches[n] = store.Exact
	}
	return cfg, nil
}

func serve(args []string) int {
	fs := newFlagSet("serve")
	var tf tableFlags
	tf.register(fs)
	var ef etcdFlags
	ef.register(fs)
	var socketmaps, tcps multiFlag
	fs.Var(&socketmaps, "socketmap", "socketmap listener `ADDR`, unix:/path or inet:host:port (repeatable; default "+sockaddr.DefaultServer+" unless systemd passes sockets)")
	fs.Var(&tcps, "tcp", "serve map NAME over tcp_table on HOST:PORT, given as `NAME=HOST:PORT` (repeatable)")
	mode := fs.String("socket-mode", "0660", "file `MODE` of unix sockets")
	group := fs.String("socket-group", "", "`GROUP` (name or gid) of unix sockets, e.g. postfix")
	stateDir := fs.String("state", "", "keep the last good copy of every map in `DIR`, and serve a map from it at startup when its file does not load")
	exportDir := fs.String("export", "", "write cdb snapshots of the -export-maps into `DIR` after every load")
	level := fs.String("log-level", "info", "log `LEVEL`: info or debug (debug logs every query)")
	maxConns := fs.Int("max-conns", 0, "most concurrent connections, `N` (0: the server's default, 1000)")
	idle := fs.Duration("idle-timeout", 0, "close a connection idle this long, `D` (0: the server's default, 60s, longer than Postfix's 10s)")
	reqTimeout := fs.Duration("request-timeout", 0, "deadline `D` for one request once it starts (0: the server's default, 10s)")
	perUID := fs.Int("max-conns-per-uid", 0, "most connections one unprivileged user may hold on unix sockets, `N` (0: max-conns/10)")
	privileged := fs.String("privileged-users", "root,postfix", "comma-separated users (names or uids) never limited per uid on unix sockets: Postfix's mail_owner and the users that run mapdrop, `LIST`")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics on http://`ADDR`/metrics, e.g. 127.0.0.1:9156 (default: off)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "mapdropd serve: unexpected argument %q\n", fs.Arg(0))
		return failure.Usage.ExitCode()
	}
	log := newLogger(*level)
	// With -etcd alone, the match flags still apply (to the etcd maps).
	cfg, err := tf.config(!ef.enabled())
	if err != nil {
		return fail(log, err)
	}
	if err := ef.prepare(log); err != nil {
		return fail(log, err)
	}
	withFiles := tf.dir != "" || len(tf.maps) > 0
	fileMode, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || fileMode > 0o777 {
		return fail(log, failure.New(failure.Usage, "-socket-mode %q: want an octal mode such as 0660", *mode))
	}
	unixOpts := server.UnixOptions{Mode: os.FileMode(fileMode), Group: *group}

	privUIDs, err := privilegedUIDs(*privileged, isFlagSet(fs, "privileged-users"))
	if err != nil {
		return fail(log, err)
	}
	warnUnmapped(privUIDs, log)
	if *perUID < 0 {
		return fail(log, failure.New(failure.Usage, "-max-conns-per-uid %d: want 0 or more", *perUID))
	}

	st, err := store.New(tf.delimiter)
	if err != nil {
		return fail(log, failure.Wrap(failure.Usage, err, "-recipient-delimiter"))
	}
	var met *metrics.Metrics
	if *metricsAddr != "" {
		met = metrics.New()
		cfg.OnResult = met.Loaded
		cfg.OnStale = met.Stale
	}
	cfg.Logger = log
	cfg.OnLoad = tf.exportHook(*exportDir, log)
	cfg.StateDir = *stateDir
	status := statusOnResult(&cfg)
	if *exportDir != "" {
		if fi, err := os.Stat(*exportDir); err != nil || !fi.IsDir() {
			return fail(log, failure.Perm("-export %s: not a directory", *exportDir))
		}
	}
	var rl *reload.Reloader
	if withFiles {
		if rl, err = reload.New(cfg, st); err != nil {
			return fail(log, err)
		}
		if err := rl.LoadAll(); err != nil {
			// Good maps are loaded and served; the broken ones are logged by
			// the reloader and answer "unknown map" until they are fixed.
			log.Error("some tables did not load; serving the rest", "err", err)
		}
	}
	var src *etcdsource.Source
	if ef.enabled() {
		if src, err = ef.startEtcd(st, cfg, rl, met, log); err != nil {
			return fail(log, err)
		}
		defer src.Close()
	}

	srv := &server.Server{
		Tables:         &tables{st: st, rl: rl},
		Logger:         log,
		MaxConns:       *maxConns,
		MaxConnsPerUID: *perUID,
		PrivilegedUIDs: privUIDs,
		IdleTimeout:    *idle,
		RequestTimeout: *reqTimeout,
	}
	var metricsSrv *http.Server
	if met != nil {
		srv.Observer = met
		if metricsSrv, err = serveMetrics(*metricsAddr, met, log); err != nil {
			return fail(log, err)
		}
	}
	passed, err := servePassed(srv, log)
	if err != nil {
		return fail(log, err)
	}
	if len(socketmaps) == 0 && len(tcps) == 0 && passed == 0 {
		socketmaps = multiFlag{sockaddr.DefaultServer}
	}
	for _, s := range socketmaps {
		a, err := sockaddr.Parse(s)
		if err != nil {
			return fail(log, failure.Wrap(failure.Usage, err, "-socketmap"))
		}
		if err := socketDir(a); err != nil {
			return fail(log, err)
		}
		if err := srv.ListenSocketmap(a, unixOpts); err != nil {
			return fail(log, failure.Wrap(failure.Permanent, err, "listen socketmap %s", a))
		}
	}
	for _, t := range tcps {
		name, hp, ok := strings.Cut(t, "=")
		if !ok || name == "" {
			return fail(log, failure.New(failure.Usage, "-tcp %q: want NAME=HOST:PORT", t))
		}
		a, err := sockaddr.Parse(hp)
		if err != nil {
			return fail(log, failure.Wrap(failure.Usage, err, "-tcp"))
		}
		if err := socketDir(a); err != nil {
			return fail(log, err)
		}
		if err := srv.ListenTCPTable(a, name, unixOpts); err != nil {
			return fail(log, failure.Wrap(failure.Permanent, err, "listen tcp_table %s", a))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchDone := make(chan error, 1)
	if rl != nil {
		go func() { watchDone <- rl.Run(ctx) }()
	}
	if src != nil {
		go src.Run(ctx)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	notify := &systemd.Notifier{}
	defer notify.Close()
	notifyErr := func(err error) {
		if err != nil {
			log.Warn("cannot notify systemd", "err", err)
		}
	}
	drain(status.changed)
	statusLine := status.text(rl) + etcdStatus(src)
	notifyErr(notify.Ready(statusLine))
	for {
		select {
		case <-status.changed:
			// A reload by the watcher: say so when the summary changed.
			if s := status.text(rl) + etcdStatus(src); s != statusLine {
				statusLine = s
				notifyErr(notify.Status(statusLine))
			}
		case err := <-watchDone:
			// The watcher only stops on its own when it cannot watch any more;
			// keep serving the tables we have rather than drop every lookup.
			log.Error("file watching stopped; tables reload only on SIGHUP now", "err", err)
			watchDone = nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if rl == nil {
					continue
				}
				log.Info("SIGHUP: reloading all tables")
				notifyErr(notify.Reloading("reloading"))
				if err := rl.LoadAll(); err != nil {
					log.Error("reload: some tables kept their previous version", "err", err)
				}
				drain(status.changed)
				statusLine = status.text(rl) + etcdStatus(src)
				notifyErr(notify.Ready(statusLine))
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			notifyErr(notify.Stopping("stopping"))
			cancel()
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := srv.Shutdown(sctx)
			if metricsSrv != nil {
				metricsSrv.Shutdown(sctx)
			}
			scancel()
			if err != nil {
				return fail(log, failure.Wrap(failure.Temporary, err, "shutdown"))
			}
			return 0
		}
	}
}

// privilegedUIDs resolves -privileged-users: numeric uids, or names
// looked up with getent passwd. A user of the default list that does not
// exist (no postfix user on this machine) is left out; one the admin named
// is an error.
func privilegedUIDs(list string, explicit bool) ([]uint32, error) {
	var uids []uint32
	for _, name := range splitList(list) {
		if n, err := strconv.ParseUint(name, 10, 32); err == nil {
			uids = append(uids, uint32(n))
			continue
		}
		if name == "root" {
			uids = append(uids, 0)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		line, err := getent.Query(ctx, "passwd", name)
		cancel()
		if err != nil && !explicit {
			continue
		}
		if err != nil {
			return nil, failure.Wrap(failure.Usage, err, "-privileged-users: user %s", name)
		}
		fields := strings.Split(strings.TrimSpace(line), ":")
		var n uint64
		if len(fields) > 2 {
			n, err = strconv.ParseUint(fields[2], 10, 32)
		}
		if len(fields) <= 2 || err != nil {
			return nil, failure.New(failure.Usage, "-privileged-users: user %s: unexpected passwd entry %q", name, line)
		}
		uids = append(uids, uint32(n))
	}
	return uids, nil
}

// isFlagSet reports whether the command line set flag name.
func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// serveMetrics serves met on http://addr/metrics in the background. The
// address is bound before it returns, so a bad one fails the start.
func serveMetrics(addr string, met *metrics.Metrics, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, failure.Wrap(failure.Permanent, err, "-metrics")
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", met.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return hs, nil
}

// socketDir creates the directory of a unix socket when it is missing
// (such as /run/mapdrop after a reboot), mode 0755 so that Postfix's
// processes and the delivery agent can reach the socket inside.
func socketDir(a sockaddr.Addr) error {
	if a.Network != "unix" {
		return nil
	}
	dir := filepath.Dir(a.Address)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return failure.Wrap(failure.Permanent, err, "socket directory %s", dir)
	}
	return nil
}

// newLogger returns a text slog logger on stderr at the named level.
func newLogger(level string) *slog.Logger {
	var l slog.Level
	if level == "debug" {
		l = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// fail logs err and returns its exit status.
func fail(log *slog.Logger, err error) int {
	log.Error(err.Error())
	return failure.ExitCode(err)
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
