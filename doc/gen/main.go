// Command gen writes the man pages mapdropd.8 and mapdrop.8 from the -h
// output of the binaries (see package doc). Run by "go generate ./doc":
// without -bin it builds mapdropd and mapdrop from this checkout first
// (as the README does, CGO_ENABLED=0, from the module root whatever the
// working directory).
//
//	go run ./doc/gen [-bin DIR] [-o DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mapdrop/mapdrop/doc"
	"github.com/mapdrop/mapdrop/internal/testkit"
)

func main() {
	bin := flag.String("bin", "", "run mapdropd and mapdrop from DIR instead of building them")
	out := flag.String("o", ".", "write the pages into DIR")
	flag.Parse()
	if err := run(*bin, *out); err != nil {
		fmt.Fprintln(os.Stderr, "doc/gen:", err)
		os.Exit(1)
	}
}

func run(bin, out string) error {
	if bin == "" {
		tmp, err := os.MkdirTemp("", "mapdrop-doc-gen-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := testkit.BuildInto(ctx, tmp, false, "./cmd/mapdropd", "./cmd/mapdrop"); err != nil {
			return err
		}
		bin = tmp
	}
	pages, err := doc.Generate(bin)
	if err != nil {
		return err
	}
	for _, p := range pages {
		if err := os.WriteFile(filepath.Join(out, p.File), p.Roff, 0o644); err != nil {
			return err
		}
	}
	return nil
}
