package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mapdrop/mapdrop/internal/testkit/fixtures"
	"github.com/mapdrop/mapdrop/lookup/client"
	"github.com/mapdrop/mapdrop/lookup/server"
)

// BenchmarkSocketmapServer measures lookups through the socketmap server
// over loopback TCP, with 1, 8 and 64 persistent client connections
// sharing b.N lookups (alternately found and not found), with a
// map-backed Tables so that the protocol and server dominate.
func BenchmarkSocketmapServer(b *testing.B) {
	for _, conns := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			s, _ := fixtures.TableServer(b, func(s *server.Server) {
				s.Logger = slog.New(slog.DiscardHandler)
			})
			a := fixtures.SocketmapAddr(b, s)
			ctx := context.Background()
			clients := make([]*client.Socketmap, conns)
			for i := range clients {
				c, err := client.Dial(ctx, a)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				clients[i] = c
			}
			keys := []string{"user1", "nobody"}
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for _, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						_, err := c.Lookup(ctx, "userdb", keys[i%2])
						if (err == nil) != (i%2 == 0) {
							failed.Store(fmt.Sprintf("lookup %d: %v", i, err))
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if f := failed.Load(); f != nil {
				b.Fatal(f)
			}
		})
	}
}
