package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mapdrop/mapdrop/bench/internal/benchkit"
	"github.com/mapdrop/mapdrop/lookup/netstring"
)

// conn is a lean socketmap client for one persistent connection: it frames
// requests and reads replies with no per-request deadline or allocation, so
// that the load generator costs both servers the same and as little as
// possible.
type conn struct {
	c       net.Conn
	r       *netstring.Reader
	req     []byte // the frame being sent
	payload []byte // "MAP KEY"
}

func dial(sock string) (*conn, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, r: netstring.NewReader(bufio.NewReaderSize(c, 4096), 100000)}, nil
}

// ask sends the payload "mapName key" and returns the reply's payload, valid
// until the next call.
func (c *conn) ask(mapName, key string) ([]byte, error) {
	c.payload = append(append(append(c.payload[:0], mapName...), ' '), key...)
	return c.askPayload()
}

func (c *conn) askPayload() ([]byte, error) {
	c.req = netstring.Append(c.req[:0], c.payload)
	if _, err := c.c.Write(c.req); err != nil {
		return nil, err
	}
	return c.r.Read()
}

func (c *conn) close() { c.c.Close() }

// keyspace generates the lookup mix: hits are keys of the generated table,
// misses are keys that are not in it (and, virtual_alias being an address
// map, make mapdropd also try the stripped address and the @domain
// catch-all).
type keyspace struct {
	entries int
	domains int
	missPct int // percent of requests that are misses
}

func domainsFor(entries int) int { return max(1, min(1000, entries/10)) }

// appendLine appends the table line of entry i, "userI@domainM.example
// targetI@else.example\n".
func (ks keyspace) appendLine(b []byte, i int) []byte {
	b = ks.appendKey(b, i, false)
	b = append(b, ' ')
	b = ks.appendValue(b, i)
	return append(b, '\n')
}

func (ks keyspace) appendKey(b []byte, i int, miss bool) []byte {
	if miss {
		b = append(b, "nouser"...)
	} else {
		b = append(b, "user"...)
	}
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "@domain"...)
	b = strconv.AppendInt(b, int64(i%ks.domains), 10)
	return append(b, ".example"...)
}

func (ks keyspace) appendValue(b []byte, i int) []byte {
	b = append(b, "target"...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, "@else.example"...)
}

// roundResult is what one load round against one server measured.
type roundResult struct {
	Requests   int64
	Errors     int64
	Elapsed    time.Duration
	P99        time.Duration
	FirstError string
}

func (r roundResult) rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

const mapName = "virtual_alias"

var notFoundReply = []byte("NOTFOUND ")

// warmupRequests is how many requests each connection of a round sends
// before the measured part, unmeasured and not in Requests.
const warmupRequests = 50

// loadRound runs conns persistent connections against the socketmap server
// at sock for about dur, each a goroutine asking random keys one after the
// other, and checks every answer.
func loadRound(sock string, conns int, dur time.Duration, ks keyspace, seed uint64) (roundResult, error) {
	cs := make([]*conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for range conns {
		c, err := dial(sock)
		if err != nil {
			return roundResult{}, err
		}
		cs = append(cs, c)
	}
	type workerResult struct {
		n, errs  int64
		lat      []time.Duration
		firstErr string
	}
	results := make([]workerResult, conns)
	var ready, done sync.WaitGroup
	startGate := make(chan struct{})
	var start time.Time
	for w, c := range cs {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			res := &results[w]
			var want, wantBuf []byte
			fail := func(format string, args ...any) {
				res.errs++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf(format, args...)
				}
			}
			// one request; returns false when the connection is unusable.
			one := func() bool {
				i := rng.IntN(ks.entries)
				miss := rng.IntN(100) < ks.missPct
				c.payload = ks.appendKey(append(c.payload[:0], mapName+" "...), i, miss)
				if miss {
					want = notFoundReply
				} else {
					wantBuf = ks.appendValue(append(wantBuf[:0], "OK "...), i)
					want = wantBuf
				}
				reply, err := c.askPayload()
				if err != nil {
					fail("%s: %v", c.payload, err)
					return false
				}
				if !bytes.Equal(reply, want) {
					fail("%s: got %q, want %q", c.payload, reply, want)
				}
				return true
			}
			// Warm up the connection (and the server's goroutine) unmeasured.
			ok := true
			for range warmupRequests {
				if ok = one(); !ok {
					break
				}
			}
			ready.Done()
			<-startGate
			if !ok {
				return
			}
			end := start.Add(dur)
			c.c.SetDeadline(end.Add(30 * time.Second))
			res.lat = make([]time.Duration, 0, 1<<14)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if !one() {
					return // the connection died; one() counted it
				}
				res.lat = append(res.lat, time.Since(t0))
				res.n++
			}
		}()
	}
	ready.Wait()
	start = time.Now()
	close(startGate)
	done.Wait()
	elapsed := time.Since(start)
	var rr roundResult
	var all []time.Duration
	for _, res := range results {
		rr.Requests += res.n
		rr.Errors += res.errs
		if rr.FirstError == "" {
			rr.FirstError = res.firstErr
		}
		all = append(all, res.lat...)
	}
	rr.Elapsed = elapsed
	rr.P99 = benchkit.Percentile(all, 99)
	return rr, nil
}
