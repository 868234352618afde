package main

import (
	"log/slog"
	"time"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/export"
	"github.com/mapdrop/mapdrop/tables/mapfile"
	"github.com/mapdrop/mapdrop/tables/reload"
	"github.com/mapdrop/mapdrop/tables/store"
)

// exportCmd implements "mapdropd export": load the tables once and write the
// chosen maps as cdb snapshots into OUTDIR.
func exportCmd(args []string) int {
	fs := newFlagSet("export")
	var tf tableFlags
	tf.register(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError("mapdropd export -tables DIR [-map NAME=PATH]... [-export-maps LIST] OUTDIR")
	}
	log := newLogger("info")
	cfg, err := tf.config(true)
	if err != nil {
		return fail(log, err)
	}
	st, err := store.New(tf.delimiter)
	if err != nil {
		return fail(log, failure.Wrap(failure.Usage, err, "-recipient-delimiter"))
	}
	want := tf.exportSet()
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

// exportSet is the set of maps named by -export-maps.
func (tf *tableFlags) exportSet() map[string]bool {
	want := map[string]bool{}
	for _, n := range splitList(tf.exportMaps) {
		want[n] = true
	}
	return want
}

// exportHook returns the reload hook that writes the chosen maps as cdb
// files into dir, or nil when dir is empty.
func (tf *tableFlags) exportHook(dir string, log *slog.Logger) func(string, []mapfile.Entry) {
	if dir == "" {
		return nil
	}
	want := tf.exportSet()
	return func(name string, entries []mapfile.Entry) {
		if !want[name] {
			return
		}
		start := time.Now()
		if err := snapshot(dir, name, entries); err != nil {
			log.Error("export failed; the previous snapshot stays", "map", name, "dir", dir, "err", err)
			return
		}
		log.Info("exported", "map", name, "file", dir+"/"+name+".cdb", "entries", len(entries), "duration", time.Since(start).Round(time.Microsecond))
	}
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
