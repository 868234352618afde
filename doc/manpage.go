package doc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Programs are the binaries that get a man page, all in section 8.
var Programs = []string{"mapdropd", "mapdrop"}

// Page is one generated man page.
type Page struct {
	File string // e.g. "mapdropd.8"
	Roff []byte
}

// Generate runs "PROGRAM -h" for every program in binDir, and
// "PROGRAM COMMAND -h" for each of its commands, and returns the man
// pages written from that text.
func Generate(binDir string) ([]Page, error) {
	var pages []Page
	for _, prog := range Programs {
		bin := filepath.Join(binDir, prog)
		top, err := helpOf(bin)
		if err != nil {
			return nil, err
		}
		subs := map[string]*helpText{}
		for _, name := range top.commands() {
			h, err := helpOf(bin, name)
			if err != nil {
				return nil, err
			}
			subs[name] = h
		}
		roff, err := render(prog, top, subs)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", prog, err)
		}
		pages = append(pages, Page{File: prog + ".8", Roff: roff})
	}
	return pages, nil
}

// helpOf runs bin with args and -h, which must exit 0 with the help on
// standard output and nothing on standard error.
func helpOf(bin string, args ...string) (*helpText, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append(args, "-h")
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C"}
	what := filepath.Base(bin) + " " + strings.Join(args, " ")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v (stderr %q); the help must exit 0", what, err, stderr.String())
	}
	if stderr.Len() > 0 {
		return nil, fmt.Errorf("%s: printed %q on standard error; the help goes to standard output", what, stderr.String())
	}
	h, err := parseHelp(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	return h, nil
}

// helpText is a parsed help text, in the layout package doc describes.
type helpText struct {
	name, whatis string
	usage        []string
	paras        []string
	sections     []section
}

type section struct {
	title string
	items []item
	paras []string
}

type item struct{ tag, text string }

var (
	titleLine  = regexp.MustCompile(`^[a-z][a-z ]*:$`)
	nameLine   = regexp.MustCompile(`^(\S+) - (.+)$`)
	commandTag = regexp.MustCompile(`^[a-z][a-z0-9-]*`)
)

// parseHelp reads a help text.
func parseHelp(text string) (*helpText, error) {
	h := &helpText{}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > 0 {
		if m := nameLine.FindStringSubmatch(lines[0]); m != nil {
			h.name, h.whatis = m[1], m[2]
			lines = lines[1:]
		}
	}
	var sec *section
	var para []string
	inUsage := false
	endPara := func() {
		if len(para) == 0 {
			return
		}
		sep := " "
		if para[0] == literalMark {
			sep = "\n"
		}
		p := strings.Join(para, sep)
		para = nil
		if sec != nil {
			sec.paras = append(sec.paras, p)
		} else {
			h.paras = append(h.paras, p)
		}
	}
	for n, line := range lines {
		switch {
		case strings.TrimSpace(line) == "":
			endPara()
			inUsage = false
		case strings.HasPrefix(line, "usage: ") && sec == nil && len(h.paras) == 0 && len(para) == 0:
			h.usage = append(h.usage, strings.TrimSpace(strings.TrimPrefix(line, "usage: ")))
			inUsage = true
		case inUsage && strings.HasPrefix(line, " "):
			h.usage = append(h.usage, strings.TrimSpace(line))
		case titleLine.MatchString(line):
			endPara()
			h.sections = append(h.sections, section{title: strings.TrimSuffix(line, ":")})
			sec = &h.sections[len(h.sections)-1]
		case strings.HasPrefix(line, "    \t") || strings.HasPrefix(line, "\t"):
			if sec == nil || len(sec.items) == 0 || len(para) > 0 {
				return nil, fmt.Errorf("line %d: item text %q without an item", n+1, line)
			}
			it := &sec.items[len(sec.items)-1]
			it.text = strings.TrimSpace(it.text + " " + strings.TrimSpace(line))
		case strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			if sec == nil || len(para) > 0 {
				return nil, fmt.Errorf("line %d: item %q outside a section", n+1, line)
			}
			tag, text, _ := strings.Cut(strings.TrimPrefix(line, "  "), "\t")
			sec.items = append(sec.items, item{tag: strings.TrimSpace(tag), text: strings.TrimSpace(text)})
		case strings.HasPrefix(line, "        ") && sec == nil:
			if len(para) > 0 && !strings.HasPrefix(para[0], literalMark) {
				endPara()
			}
			if len(para) == 0 {
				para = append(para, literalMark)
			}
			para = append(para, strings.TrimPrefix(line, "        "))
		case strings.HasPrefix(line, " "):
			return nil, fmt.Errorf("line %d: %q: indented neither as an item (two spaces) nor as its text (four spaces and a tab)", n+1, line)
		default:
			para = append(para, strings.TrimSpace(line))
		}
	}
	endPara()
	return h, nil
}

// commands returns the first word of every item of the "commands" section.
func (h *helpText) commands() []string {
	var names []string
	for _, s := range h.sections {
		if s.title != "commands" {
			continue
		}
		for _, it := range s.items {
			if name := commandTag.FindString(it.tag); name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

// render writes the man page of prog.
func render(prog string, top *helpText, subs map[string]*helpText) ([]byte, error) {
	if top.name != prog || top.whatis == "" {
		return nil, fmt.Errorf("the help's first line is %q, want %q", top.name+" - "+top.whatis, prog+" - WHAT IT IS")
	}
	if len(top.usage) == 0 {
		return nil, errors.New("the help has no usage: line")
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".\\\" Generated by \"go generate ./doc\" from the output of %q: do not edit.\n", prog+" -h")
	b.WriteString(".nr HY 0\n")
	fmt.Fprintf(&b, ".TH %s 8 \"\" \"mapdrop\" \"System Manager's Manual\"\n", strings.ToUpper(prog))
	b.WriteString(".nh\n.ad l\n")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", prog, text(top.whatis))
	b.WriteString(".SH SYNOPSIS\n")
	var synopses []string
	for _, name := range top.commands() {
		if len(subs[name].usage) == 0 {
			return nil, fmt.Errorf("%s %s -h has no usage: line", prog, name)
		}
		synopses = append(synopses, subs[name].usage...)
	}
	for _, u := range top.usage {
		if !strings.Contains(u, "COMMAND") {
			synopses = append(synopses, u)
		}
	}
	for _, s := range synopses {
		b.WriteString(synopsis(prog, s))
	}
	if len(top.paras) > 0 {
		b.WriteString(".SH DESCRIPTION\n")
		writeParas(&b, top.paras)
	}
	for _, s := range top.sections {
		switch s.title {
		case "commands":
			b.WriteString(".SH COMMANDS\n")
			for _, it := range s.items {
				name := commandTag.FindString(it.tag)
				sub := subs[name]
				fmt.Fprintf(&b, ".SS %s\n", name)
				for _, u := range sub.usage {
					b.WriteString(synopsis(prog, u))
				}
				paras := sub.paras
				if len(paras) == 0 {
					paras = []string{it.text}
				}
				b.WriteString(".PP\n")
				writeParas(&b, paras)
				for _, ss := range sub.sections {
					heading := strings.ToUpper(ss.title[:1]) + ss.title[1:]
					fmt.Fprintf(&b, ".PP\n%s:\n", text(heading))
					writeItems(&b, ss.items)
					writeParas(&b, ss.paras)
				}
			}
			if len(s.paras) > 0 {
				b.WriteString(".PP\n")
				writeParas(&b, s.paras)
			}
		case "see also":
			b.WriteString(".SH SEE ALSO\n")
			for i, it := range s.items {
				ref, sect, ok := strings.Cut(strings.TrimSuffix(it.tag, ")"), "(")
				if !ok {
					return nil, fmt.Errorf("see also: %q is not NAME(SECTION)", it.tag)
				}
				sep := ","
				if i == len(s.items)-1 {
					sep = ""
				}
				fmt.Fprintf(&b, ".BR %s (%s)%s\n", ref, sect, sep)
			}
		default:
			title := strings.ToUpper(s.title)
			if s.title == "flags" {
				title = "OPTIONS"
			}
			fmt.Fprintf(&b, ".SH %s\n", quoteArg(title))
			writeItems(&b, s.items)
			if len(s.items) > 0 && len(s.paras) > 0 {
				b.WriteString(".PP\n")
			}
			writeParas(&b, s.paras)
		}
	}
	return []byte(b.String()), nil
}

// literalMark starts a paragraph of literal lines (indented by eight
// spaces in the help, outside sections), one per line after the mark.
const literalMark = "\x00literal"

func writeParas(b *strings.Builder, paras []string) {
	for i, p := range paras {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		if lines, ok := strings.CutPrefix(p, literalMark+"\n"); ok {
			b.WriteString(".RS\n.nf\n")
			for _, l := range strings.Split(lines, "\n") {
				b.WriteString(escape(l) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
			continue
		}
		b.WriteString(text(p) + "\n")
	}
}

func writeItems(b *strings.Builder, items []item) {
	for _, it := range items {
		b.WriteString(".TP\n")
		b.WriteString(tag(it.tag) + "\n")
		if it.text != "" {
			b.WriteString(text(it.text) + "\n")
		}
	}
}

// quoteArg quotes a macro argument with spaces.
func quoteArg(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

var (
	// flagWord is an option in running text: one or two hyphens and a
	// name, at the start of a word.
	flagWord = regexp.MustCompile(`(^|[\s\[(|"'])(--?[a-zA-Z][a-zA-Z0-9-]*)`)
	// metaWord is a placeholder in a synopsis or a tag: a word in
	// capitals, as ADDR, NAME=PATH or FILE:LINE.
	metaWord = regexp.MustCompile(`\b[A-Z][A-Z0-9_]*([=:][A-Z][A-Z0-9_]*)*\b`)
)

// escape makes s safe as roff text: backslashes escaped, and a line that
// would start with a control character started with \&.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// flagRoff is an option in bold, with every hyphen \- (a minus that never
// breaks the line).
func flagRoff(f string) string {
	return `\fB` + strings.ReplaceAll(f, "-", `\-`) + `\fR`
}

// text is running text: options in bold.
func text(s string) string {
	return flagWord.ReplaceAllStringFunc(escape(s), func(m string) string {
		sub := flagWord.FindStringSubmatch(m)
		return sub[1] + flagRoff(sub[2])
	})
}

// tag is the tag of an item: options in bold, placeholders in italics.
func tag(s string) string {
	s = escape(s)
	var b strings.Builder
	for i, w := range strings.Split(s, " ") {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(word(w))
	}
	return b.String()
}

// word formats one word of a synopsis or tag: "-flag" bold, a placeholder
// italic, brackets and the rest as they are.
func word(w string) string {
	w = flagWord.ReplaceAllStringFunc(w, func(m string) string {
		sub := flagWord.FindStringSubmatch(m)
		return sub[1] + flagRoff(sub[2])
	})
	return metaWord.ReplaceAllStringFunc(w, func(m string) string { return `\fI` + m + `\fR` })
}

// synopsis is one synopsis line as a .SY/.YS block (a hanging indent
// past the program and command, in bold).
func synopsis(prog, s string) string {
	s = strings.TrimSpace(s)
	head := prog
	rest := strings.TrimPrefix(s, prog)
	if rest == s {
		return ".PP\n" + tag(s) + "\n"
	}
	rest = strings.TrimSpace(rest)
	if name := commandTag.FindString(rest); name != "" && (len(rest) == len(name) || rest[len(name)] == ' ') {
		head += " " + name
		rest = strings.TrimSpace(rest[len(name):])
	}
	out := ".SY " + quoteArg(head) + "\n"
	if rest != "" {
		out += keepGroups(tag(rest)) + "\n"
	}
	return out + ".YS\n"
}

// keepGroups makes the spaces inside brackets unbreakable (\~), so that a
// line break never splits "[-s ADDR]".
func keepGroups(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case r == ' ' && depth > 0:
			b.WriteString(`\~`)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
