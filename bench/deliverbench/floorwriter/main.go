// Command floorwriter is the baseline deliverbench measures mapdrop against:
// the least a durable Maildir delivery can do.
//
// Usage:
//
//	floorwriter MAILDIR < message
//
// It copies stdin into a new file MAILDIR/tmp/NAME (created exclusively, mode
// 0600), fsyncs and closes it, renames it to MAILDIR/new/NAME, and fsyncs the
// directory MAILDIR/new, where NAME is "SECONDS.MMICROSECONDSPPID.floor". No
// lookup, no identity change, no Maildir creation, no logging: MAILDIR and
// its tmp/ and new/ must exist. Exit status 0 on success, 75 on any error.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floorwriter MAILDIR < message")
		os.Exit(64)
	}
	if err := deliver(os.Args[1], os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "floorwriter:", err)
		os.Exit(75)
	}
}

func deliver(maildir string, msg io.Reader) error {
	now := time.Now()
	name := fmt.Sprintf("%d.M%dP%d.floor", now.Unix(), now.Nanosecond()/1000, os.Getpid())
	tmp := filepath.Join(maildir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, msg); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(maildir, "new", name)); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Join(maildir, "new"))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
