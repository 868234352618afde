package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/etcdmaps"
)

// defaultEtcdPrefix is the default -etcd-prefix of push and serve.
const defaultEtcdPrefix = "/mapdrop/"

// push implements "mapdropd push": parse every map file as check does,
// then write them into etcd (package etcdmaps). Every error is printed as
// FILE:LINE: REASON on stderr and the push stops with exit 1 before
// anything is written. On success it prints one line per map:
// "NAME revision REV entries N version V", followed by " in-place K" when
// the served version was changed in place (K keys), or " unchanged".
// Exit status: 0 pushed, 1 a file
// has errors, 64 usage, 66 a file of -etcd-cacert, -etcd-cert, -etcd-key
// or -etcd-password-file unreadable, 75 the cluster is unreachable or
// another push of the same map won (nothing switched: push again), 78 etcd
// refused the client (a TLS certificate not trusted either way, a wrong
// password, a role without readwrite on the prefix) or a file of those
// flags does not hold what it should.
func push(args []string) int {
	fs := newFlagSet("push")
	endpoints := fs.String("etcd", "", "comma-separated etcd client `URLS`, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379")
	prefix := fs.String("etcd-prefix", defaultEtcdPrefix, "etcd key `PREFIX` of the maps")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long, `D`")
	full := fs.Bool("full", false, "write a new version even when the changes fit in one transaction")
	inFlight := fs.Int("inflight", 32, "write transactions sent at once, `N`")
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "give up when the cluster does not answer within `D`")
	var sec etcdSecurity
	sec.register(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *endpoints == "" || fs.NArg() == 0 {
		return usageError("mapdropd push -etcd URLS [-etcd-prefix P] [-timeout D] PATH...")
	}
	ccfg, err := sec.config(splitList(*endpoints), func(w string) { fmt.Fprintf(os.Stderr, "mapdropd push: warning: %s\n", w) })
	if err != nil {
		fmt.Fprintf(os.Stderr, "mapdropd push: %v\n", err)
		return failure.ExitCode(err)
	}
	maps, errs, warnings := etcdmaps.Read(fs.Args()...)
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "warning: %v\n", w)
	}
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(os.Stderr, err)
		}
		fmt.Fprintf(os.Stderr, "mapdropd push: %d errors: nothing pushed\n", len(errs))
		return 1
	}
	if len(maps) == 0 {
		fmt.Fprintf(os.Stderr, "mapdropd push: no tables in %s\n", strings.Join(fs.Args(), " "))
		return 1
	}
	// notReached reports a cluster that did not answer: refused (78), or
	// unreachable (75).
	notReached := func(err error) int {
		if rerr := etcdRefusal(ccfg, err); rerr != nil {
			fmt.Fprintf(os.Stderr, "mapdropd push: %v: nothing pushed\n", rerr)
			return failure.ExitCode(rerr)
		}
		fmt.Fprintf(os.Stderr, "mapdropd push: etcd %s unreachable: %v: nothing pushed\n", *endpoints, err)
		return failure.Temporary.ExitCode()
	}
	ccfg.Logger, ccfg.DialTimeout = zap.NewNop(), 5*time.Second
	// With -etcd-user, New logs in: it needs the cluster.
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return notReached(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// The client waits for the cluster as long as the context lets it:
	// find out first, and quickly, whether it answers (a quorum read).
	pctx, pcancel := context.WithTimeout(ctx, min(*connectTimeout, *timeout))
	_, err = cli.Get(pctx, etcdmaps.NewLayout(*prefix).PointerPrefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	pcancel()
	if err != nil {
		return notReached(err)
	}
	res, err := etcdmaps.Push(ctx, cli, etcdmaps.NewLayout(*prefix), maps, etcdmaps.PushOptions{InFlight: *inFlight, Full: *full})
	for _, r := range res {
		suffix := ""
		switch {
		case r.InPlace && r.Changed == 0:
			suffix = " unchanged"
		case r.InPlace:
			suffix = fmt.Sprintf(" in-place %d", r.Changed)
		}
		fmt.Printf("%s revision %d entries %d version %s%s\n", r.Name, r.Revision, r.Entries, r.Version, suffix)
	}
	switch {
	case err != nil && len(res) > 0:
		fmt.Fprintf(os.Stderr, "mapdropd push: warning: the maps above are switched, but deleting their old versions failed: %v\n", err)
	case err != nil:
		if rerr := etcdRefusal(ccfg, err); rerr != nil {
			err = rerr
		}
		fmt.Fprintf(os.Stderr, "mapdropd push: %v\n", err)
		return failure.ExitCode(err)
	}
	return 0
}
