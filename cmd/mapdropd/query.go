package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/addr"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/tables/export"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/reload"
	"github.com/mapdrop/mapdrop/tables/store"
)

// query implements "mapdropd query": like postmap -q, one key prints its
// value; several keys (or "-", keys from stdin) print "key<TAB>value" for
// each key found. Exit status: 0 all found, 1 any not found, 75 server
// unreachable or TEMP, 78 PERM; the worst wins.
func query(args []string) int {
	fs := flag.NewFlagSet("mapdropd query", flag.ContinueOnError)
	server := fs.String("s", envOr("MAPDROP_SERVER", defaultSocket), "server address, unix:/path or inet:host:port")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the server after this long")
	if err := fs.Parse(args); err != nil {
		return 64
	}
	if fs.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: mapdropd query [-s ADDR] MAP KEY...   (KEY - reads keys from stdin)")
		return 64
	}
	a, err := addr.Parse(*server)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mapdropd query: %v\n", err)
		return 64
	}
	mapName, keys := fs.Arg(0), fs.Args()[1:]
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := client.Dial(ctx, a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mapdropd query: %v\n", err)
		return failure.ExitCode(err)
	}
	defer c.Close()

	fromStdin := len(keys) == 1 && keys[0] == "-"
	status := 0
	for key := range queryKeys(keys) {
		v, err := c.Lookup(ctx, mapName, key)
		switch {
		case err == nil:
			if fromStdin || len(keys) > 1 {
				fmt.Printf("%s\t%s\n", key, v)
			} else {
				fmt.Println(v)
			}
		case failure.KindOf(err) == failure.NotFound:
			status = max(status, 1)
		default:
			fmt.Fprintf(os.Stderr, "mapdropd query: %s %s: %v\n", mapName, key, err)
			status = max(status, failure.ExitCode(err))
		}
	}
	return status
}

// queryKeys yields the keys named on the command line, or the lines of
// stdin when the only key is "-".
func queryKeys(keys []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		if len(keys) != 1 || keys[0] != "-" {
			for _, k := range keys {
				if !yield(k) {
					return
				}
			}
			return
		}
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 64*1024), 100000)
		for sc.Scan() {
			if k := strings.TrimRight(sc.Text(), "\r"); k != "" && !yield(k) {
				return
			}
		}
	}
}

// check implements "mapdropd check": parse files and directories as serve
// would, print every error as "file:line: reason" (and every warning, such
// as a duplicate key, prefixed "warning: "), and exit 1 on any error.
func check(args []string) int {
	fs := flag.NewFlagSet("mapdropd check", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return 64
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mapdropd check PATH...")
		return 64
	}
	errs, warnings := reload.CheckWithWarnings(fs.Args()...)
	for _, w := range warnings {
		fmt.Printf("warning: %v\n", w)
	}
	for _, err := range errs {
		fmt.Println(err)
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

// exportCmd implements "mapdropd export": load the tables once and write the
// chosen maps as cdb snapshots into OUTDIR.
func exportCmd(args []string) int {
	fs := flag.NewFlagSet("mapdropd export", flag.ContinueOnError)
	var tf tableFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 64
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mapdropd export -tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR")
		return 64
	}
	log := newLogger("info")
	cfg, err := tf.config()
	if err != nil {
		return fail(log, err)
	}
	st, err := store.New(tf.delimiter)
	if err != nil {
		return fail(log, failure.Wrap(failure.Usage, err, "-recipient-delimiter"))
	}
	want := map[string]bool{}
	for _, n := range splitList(tf.exportMaps) {
		want[n] = true
	}
	outDir := fs.Arg(0)
	var exportErr error
	cfg.Logger = log
	cfg.OnLoad = func(name string, entries []mapfile.Entry) {
		if !want[name] {
			return
		}
		delete(want, name)
		if err := snapshot(outDir, name, entries); err != nil && exportErr == nil {
			exportErr = err
		}
	}
	rl, err := reload.New(cfg, st)
	if err != nil {
		return fail(log, err)
	}
	if err := rl.LoadAll(); err != nil {
		return fail(log, failure.Wrap(failure.Permanent, err, "tables"))
	}
	if exportErr != nil {
		return fail(log, exportErr)
	}
	for name := range want {
		return fail(log, failure.Perm("-export-maps: no table named %s", name))
	}
	return 0
}

// snapshot writes entries to dir/NAME.cdb. The reloader hands over each
// key once (the first of equal keys, as lookups answer), so they go as they
// are.
func snapshot(dir, name string, entries []mapfile.Entry) error {
	return export.Snapshot(dir, name, func(yield func(string, string) bool) {
		for _, e := range entries {
			if !yield(e.Key, e.Value) {
				return
			}
		}
	})
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
