package main

import (
	"bufio"
	"context"
	"fmt"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/server"
	"github.com/mapdrop/mapdrop/lookup/sockaddr"
)

// query implements "mapdropd query": like postmap -q, one key prints its
// value; several keys (or "-", keys from stdin) print "key<TAB>value" for
// each key found. Exit status (failure.LookupExitCode): 0 all found, 1 any
// not found, 75 server unreachable or TEMP, 78 PERM; the highest wins.
func query(args []string) int {
	fs := newFlagSet("query")
	server := fs.String("s", envOr("MAPDROP_SERVER", sockaddr.DefaultServer), "server `ADDR`ess, unix:/path or inet:host:port")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the server after this long, `D`")
	explain := fs.Bool("explain", false, "show how the server finds the answer to one KEY: every key tried in order, hit or miss, the FILE:LINE of the entry that answers, the extension copied")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() < 2 || *explain && fs.NArg() != 2 {
		return usageError("mapdropd query [-s ADDR] [-timeout D] [-explain] MAP KEY...   (KEY - reads keys from stdin; one KEY with -explain)")
	}
	a, err := sockaddr.Parse(*server)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mapdropd query: %v\n", err)
		return failure.Usage.ExitCode()
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
	if *explain {
		return explainKey(ctx, c, mapName, keys[0])
	}

	fromStdin := len(keys) == 1 && keys[0] == "-"
	status := 0
	probe := keys[0]
	before := servedRevision(ctx, c, mapName, probe)
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
			status = max(status, failure.LookupExitCode(err))
		default:
			fmt.Fprintf(os.Stderr, "mapdropd query: %s %s: %v\n", mapName, key, err)
			status = max(status, failure.LookupExitCode(err))
		}
	}
	// A map from etcd: name the revision that answered (stderr, so that
	// stdout stays what postmap -q prints).
	if before == 0 {
		return status // not an etcd map (or a server that cannot say)
	}
	if after := servedRevision(ctx, c, mapName, probe); after != 0 {
		if before == after {
			fmt.Fprintf(os.Stderr, "mapdropd query: %s: etcd revision %d\n", mapName, after)
		} else {
			fmt.Fprintf(os.Stderr, "mapdropd query: %s: etcd revision %d to %d (changed during the query)\n", mapName, before, after)
		}
	}
	return status
}

// servedRevision is the etcd revision the server answers map m from, 0
// when m does not come from etcd (or the server cannot say).
func servedRevision(ctx context.Context, c *client.Socketmap, m, key string) int64 {
	if key == "-" {
		key = "x"
	}
	text, err := c.Lookup(ctx, server.ExplainPrefix+m, key)
	if err != nil {
		return 0
	}
	return revisionOf(text)
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

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// explainKey prints the server's explanation of one lookup (see
// tables.Explain). Exit status as for a lookup: 0 found, 1 not found, 75
// or 78 when the server fails.
func explainKey(ctx context.Context, c *client.Socketmap, mapName, key string) int {
	text, err := c.Lookup(ctx, server.ExplainPrefix+mapName, key)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mapdropd query -explain: %s %s: %v\n", mapName, key, err)
		if failure.KindOf(err) == failure.NotFound {
			err = failure.Temp("the server did not explain: is it an older mapdropd?")
		}
		return failure.LookupExitCode(err)
	}
	fmt.Println(text)
	for _, line := range strings.Split(text, "\n") {
		if line == resultFound {
			return 0
		}
	}
	return failure.LookupExitCode(failure.ErrNotFound)
}
