// Command gen writes the man pages mapdropd.8 and mapdrop.8 from the -h
// output of the binaries (see package doc). Run by "go generate ./doc":
// without -bin it builds mapdropd and mapdrop from this checkout first.
//
//	go run ./doc/gen [-bin DIR] [-o DIR]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/mapdrop/mapdrop/doc"
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
		cmd := exec.Command("go", "build", "-o", tmp+string(os.PathSeparator),
			"github.com/mapdrop/mapdrop/cmd/mapdropd", "github.com/mapdrop/mapdrop/cmd/mapdrop")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build: %v", err)
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
