package etcdmaps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mapdrop/mapdrop/internal/etcdtest"
	"github.com/mapdrop/mapdrop/tables/mapfile"
)

func TestLayoutParse(t *testing.T) {
	l := NewLayout("/mapdrop")
	for _, c := range []struct {
		key                 string
		kind                Kind
		name, version, ekey string
	}{
		{"/mapdrop/ptr/virtual_alias", PointerKey, "virtual_alias", "", ""},
		{"/mapdrop/v/virtual_alias/00ab/joe@example.com", EntryKey, "virtual_alias", "00ab", "joe@example.com"},
		{"/mapdrop/v/virtual_alias/00ab/a/b c", EntryKey, "virtual_alias", "00ab", "a/b c"},
		{"/mapdrop/v/virtual_alias/00ab/", Other, "", "", ""},
		{"/mapdrop/v/Bad/00ab/k", Other, "", "", ""},
		{"/mapdrop/ptr/", Other, "", "", ""},
		{"/other/ptr/x", Other, "", "", ""},
	} {
		kind, name, ver, k := l.Parse(c.key)
		if kind != c.kind || name != c.name || ver != c.version || k != c.ekey {
			t.Errorf("Parse(%q) = %v %q %q %q, want %v %q %q %q", c.key, kind, name, ver, k, c.kind, c.name, c.version, c.ekey)
		}
	}
	if got := l.Entry("m", "v1", "k"); got != "/mapdrop/v/m/v1/k" {
		t.Errorf("Entry = %q", got)
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// read returns every key under prefix with its value.
func read(t *testing.T, cli *clientv3.Client, prefix string) map[string]string {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range resp.Kvs {
		m[string(kv.Key)] = string(kv.Value)
	}
	return m
}

// TestPush against a real 3-member cluster: a first push, a second that
// replaces the map and deletes the old version, a map bigger than many
// transactions, a refused broken file, and a conflict.
func TestPush(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	ctx := context.Background()
	l := NewLayout("/mapdrop")
	dir := t.TempDir()
	writeFile(t, dir, "virtual_alias", "Joe@Example.com  joe.user@example.net\n@example.com catchall@example.net\n")
	maps, errs, _ := Read(dir)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	res, err := Push(ctx, cli, l, maps, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := res[0].Version
	if res[0].Revision == 0 || res[0].Old != "" || res[0].Entries != 2 {
		t.Errorf("first push: %+v", res[0])
	}
	got := read(t, cli, "/mapdrop/")
	want := map[string]string{
		"/mapdrop/ptr/virtual_alias":                          v1,
		"/mapdrop/v/virtual_alias/" + v1 + "/joe@example.com": "joe.user@example.net",
		"/mapdrop/v/virtual_alias/" + v1 + "/@example.com":    "catchall@example.net",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after first push:\n got %v\nwant %v", got, want)
	}

	// A 1000-entry map: several transactions; the old version goes away.
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "user%d@example.com u%d\n", i, i)
	}
	writeFile(t, dir, "virtual_alias", b.String())
	maps, _, _ = Read(dir)
	res, err = Push(ctx, cli, l, maps, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Old != v1 || res[0].Entries != 1000 {
		t.Errorf("second push: %+v", res[0])
	}
	got = read(t, cli, "/mapdrop/")
	if len(got) != 1001 || got["/mapdrop/ptr/virtual_alias"] != res[0].Version {
		t.Errorf("after second push: %d keys, pointer %q", len(got), got["/mapdrop/ptr/virtual_alias"])
	}
	for k := range got {
		if strings.Contains(k, v1) {
			t.Errorf("old version key left: %s", k)
		}
	}

	// One value changed and one key gone: changed in place, in one
	// transaction, same version; then the same again changes nothing.
	ver := res[0].Version
	b.Reset()
	for i := 1; i < 1000; i++ {
		v := fmt.Sprintf("u%d", i)
		if i == 500 {
			v = "changed"
		}
		fmt.Fprintf(&b, "user%d@example.com %s\n", i, v)
	}
	writeFile(t, dir, "virtual_alias", b.String())
	maps, _, _ = Read(dir)
	before, _ := cli.Get(ctx, "x")
	res, err = Push(ctx, cli, l, maps, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.InPlace || r.Changed != 2 || r.Version != ver || r.Old != ver || r.Revision != before.Header.Revision+1 {
		t.Errorf("in-place push: %+v, want 2 keys changed in version %s at revision %d", r, ver, before.Header.Revision+1)
	}
	got = read(t, cli, "/mapdrop/")
	if len(got) != 1000 || got["/mapdrop/v/virtual_alias/"+ver+"/user500@example.com"] != "changed" || got["/mapdrop/v/virtual_alias/"+ver+"/user0@example.com"] != "" {
		t.Errorf("after the in-place push: %d keys, user500 %q, user0 %q", len(got), got["/mapdrop/v/virtual_alias/"+ver+"/user500@example.com"], got["/mapdrop/v/virtual_alias/"+ver+"/user0@example.com"])
	}
	res, err = Push(ctx, cli, l, maps, PushOptions{})
	if err != nil || !res[0].InPlace || res[0].Changed != 0 {
		t.Errorf("unchanged push: %+v, %v", res, err)
	}
	after, _ := cli.Get(ctx, "x")
	if after.Header.Revision != before.Header.Revision+1 {
		t.Errorf("an unchanged push wrote: revision %d, want %d", after.Header.Revision, before.Header.Revision+1)
	}

	// A broken file: Read refuses it with FILE:LINE, and nothing is pushed.
	bad := writeFile(t, t.TempDir(), "virtual_mailbox", "ok@example.com box\nnovalue@example.com\n")
	maps, errs, _ = Read(dir, bad)
	if maps != nil || len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), bad+":2: ") {
		t.Errorf("broken file: maps %v, errs %v", maps, errs)
	}

	// A conflict: another push switches the pointer between this push's
	// writes and its switch; this push switches nothing and deletes what
	// it wrote.
	writeFile(t, dir, "virtual_alias", "a@example.com a\n")
	maps, _, _ = Read(dir)
	var other []Result
	_, err = Push(ctx, cli, l, maps, PushOptions{BeforeSwitch: func() {
		var err error
		other, err = Push(ctx, cli, l, []Map{{Name: "virtual_alias", Path: "x", Entries: []mapfile.Entry{{Key: "b@example.com", Value: "b"}}}}, PushOptions{})
		if err != nil {
			t.Error(err)
		}
	}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting push: %v, want ErrConflict", err)
	}
	got = read(t, cli, "/mapdrop/")
	if len(got) != 2 || got["/mapdrop/ptr/virtual_alias"] != other[0].Version || got["/mapdrop/v/virtual_alias/"+other[0].Version+"/b@example.com"] != "b" {
		t.Errorf("after conflict: %v", got)
	}
}

// TestRead: the entries of each map (folded, the first of equal keys, in
// file order), sorted by name; a file whose name is no map name, and a map
// given twice, are errors, and then no map is returned.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "virtual_alias", "Joe@Example.com  first\nb@example.com b\njoe@example.com second\n")
	writeFile(t, dir, "canonical", "a@example.com a\n")
	maps, errs, warnings := Read(dir)
	if len(errs) > 0 || len(warnings) != 1 {
		t.Fatalf("errs %v, warnings %v; want none and one duplicate key", errs, warnings)
	}
	if got := fmt.Sprint(maps); got != fmt.Sprintf("[{canonical %s/canonical [{a@example.com a 1}]} {virtual_alias %s/virtual_alias [{joe@example.com first 1} {b@example.com b 2}]}]", dir, dir) {
		t.Errorf("maps: %s", got)
	}
	backup := writeFile(t, t.TempDir(), "virtual_alias.bak", "k v\n")
	if maps, errs, _ := Read(dir, backup); maps != nil || len(errs) != 1 || !strings.Contains(errs[0].Error(), "is not a map name") {
		t.Errorf("a backup file: maps %v, errs %v", maps, errs)
	}
	again := writeFile(t, t.TempDir(), "canonical", "k v\n")
	if maps, errs, _ := Read(dir, again); maps != nil || len(errs) != 1 || !strings.Contains(errs[0].Error(), "map canonical is also given by "+filepath.Join(dir, "canonical")) {
		t.Errorf("a map given twice: maps %v, errs %v", maps, errs)
	}
}
