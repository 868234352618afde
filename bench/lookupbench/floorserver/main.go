// Command floorserver is the baseline lookupbench measures mapdropd against:
// the least a socketmap server can do.
//
// Usage:
//
//	floorserver SOCKET-PATH TABLE-FILE
//
// It reads TABLE-FILE as lines "KEY SP VALUE" (the simple files lookupbench
// writes: no comments, continuations or case folding) into a Go map, listens
// on the unix socket SOCKET-PATH, prints "ready" on stdout, and then answers
// every connection, one goroutine each, with the socketmap protocol: each
// request is the netstring "NAME SP KEY"; NAME is ignored, and the reply is the
// netstring "OK VALUE" when KEY is in the map, else "NOTFOUND ". A request that
// breaks the framing closes the connection. There are no timeouts, no
// limits, no logging and no reloading: it runs until killed.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"

	"github.com/mapdrop/mapdrop/lookup/netstring"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: floorserver SOCKET-PATH TABLE-FILE")
		os.Exit(64)
	}
	table, err := load(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorserver:", err)
		os.Exit(1)
	}
	os.Remove(os.Args[1])
	ln, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorserver:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "floorserver:", err)
			os.Exit(1)
		}
		go serve(c, table)
	}
}

// load reads "KEY SP VALUE" lines into a map of ready-made replies.
func load(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	table := make(map[string][]byte)
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimRight(line, "\n"), []byte(" "))
		if !ok {
			continue
		}
		table[string(k)] = netstring.Append(nil, append([]byte("OK "), v...))
	}
	return table, nil
}

var notFound = netstring.AppendString(nil, "NOTFOUND ")

func serve(c net.Conn, table map[string][]byte) {
	defer c.Close()
	r := netstring.NewReader(bufio.NewReader(c), 100000)
	w := bufio.NewWriter(c)
	for {
		req, err := r.Read()
		if err != nil {
			return
		}
		_, key, _ := bytes.Cut(req, []byte(" "))
		reply, ok := table[string(key)]
		if !ok {
			reply = notFound
		}
		w.Write(reply)
		if err := w.Flush(); err != nil {
			return
		}
	}
}
