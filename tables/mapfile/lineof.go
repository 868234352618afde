package mapfile

import (
	"strings"
	"unicode/utf8"
)

// LineOf returns the line where the entry of key (folded with key.Fold)
// starts in text, a map source file as ParseTable reads it: the first line
// of its logical line, so the key's own line for an entry with
// continuation lines. Of equal keys it finds the first, the one that
// lookups answer. It returns 0 when no entry has that key. Finding it costs
// one pass over text, as parsing does; nothing is kept per entry for it.
func LineOf(text, key string) int {
	text = strings.TrimPrefix(text, BOM)
	p := parser{
		text:       text,
		checkBytes: strings.IndexByte(text, 0) >= 0 || !utf8.ValidString(text),
		firstLine:  map[string]int{key: 0},
	}
	p.run()
	return p.firstLine[key]
}
