// Command holdconns is a hostile local user for the no-lockout test: it
// keeps -n connections open to a unix socket, dialling again as soon as
// one is closed, half of them idle and half stalled in the middle of a
// request. Every 200ms it prints one line
//
//	held=N dials=N closed=N dialfail=N
//
// (connections open now, connects that succeeded, connections the server
// closed, connects that failed) until it is killed.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "the unix socket")
	n := flag.Int("n", 2000, "connections to hold")
	flag.Parse()
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "holdconns: -addr is required")
		os.Exit(64)
	}
	var held, dials, closed, dialFail atomic.Int64
	for i := range *n {
		go func() {
			buf := make([]byte, 512)
			for {
				c, err := net.Dial("unix", *addr)
				if err != nil {
					dialFail.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				dials.Add(1)
				held.Add(1)
				if i%2 == 1 {
					c.Write([]byte("12:userdb")) // the rest never comes
				}
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
				held.Add(-1)
				closed.Add(1)
			}
		}()
	}
	for range time.Tick(200 * time.Millisecond) {
		fmt.Printf("held=%d dials=%d closed=%d dialfail=%d\n", held.Load(), dials.Load(), closed.Load(), dialFail.Load())
	}
}
