// Package testkit is what mapdrop's tests share: waiting for a condition
// with a bounded deadline, the project's binaries built once per test
// binary, and a running mapdropd over real sockets. It imports nothing of
// mapdrop's, so the tests of every package may use it; the fixtures that
// need mapdrop's packages (in-process table servers, misbehaving servers, a
// store holding a map) are in the subpackage fixtures.
//
// A test package that builds binaries runs its tests through Main, which
// removes them at the end:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
package testkit

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Patience bounds every wait in this package. It keeps a broken test from
// hanging; it is never a timing assertion.
const Patience = time.Minute

// Eventually polls cond, at first often and then every 100 ms, until it
// holds, and fails the test if it still does not after Patience; what
// names the awaited state in the failure message.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Poll(Patience, cond) {
		t.Fatalf("gave up after %v waiting for %s", Patience, what)
	}
}

// Poll is Eventually for a caller that handles the failure itself: it
// reports whether cond held within limit.
func Poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
	return true
}

// Main runs the tests and then removes what Binaries built, and exits
// with the tests' status.
func Main(m *testing.M) {
	code := m.Run()
	removeBuilds()
	os.Exit(code)
}

// Buffer is a bytes.Buffer that a subprocess's output copier or a logger
// and the test may use at the same time.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (a
// listener was bound to it and closed again), for a server about to start.
func FreePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Port is FreePort for a test: it fails the test when no port is free.
func Port(t testing.TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Addr is "127.0.0.1:PORT" for a Port.
func Addr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(Port(t))
}
