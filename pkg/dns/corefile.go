package dns

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/coredns/caddy/caddyfile"
)

// Zone is the DNS zone of the .global model.
const Zone = "global"

// Block is the server block that forwards the global zone to istiocoredns.
// `forward` replaced `proxy`, which CoreDNS removed in 1.5.
func Block(ip string) string {
	return "global:53 {\n    errors\n    cache 30\n    forward . " + ip + "\n}\n"
}

// ServerBlock is one server block of a Corefile as CoreDNS sees it: its
// keys and, per directive, the directive's tokens in order.
type ServerBlock struct {
	Keys       []string
	Directives map[string][]string
}

// parseMu serialises parsing: the caddyfile parser reports unmatched import
// globs through the standard logger, which is silenced while it runs.
var parseMu sync.Mutex

// ParseCorefile parses a Corefile with CoreDNS's parser. Imports are
// resolved against an empty directory: the files they name live in the
// CoreDNS pod, not here, so they contribute nothing but must not fail.
func ParseCorefile(text string) ([]ServerBlock, error) {
	dir, err := os.MkdirTemp("", "corefile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	parseMu.Lock()
	prev := log.Writer()
	log.SetOutput(io.Discard)
	blocks, err := caddyfile.Parse(filepath.Join(dir, "Corefile"), strings.NewReader(text), nil)
	log.SetOutput(prev)
	parseMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("parse Corefile: %w", err)
	}
	out := make([]ServerBlock, 0, len(blocks))
	for _, b := range blocks {
		sb := ServerBlock{Keys: slices.Clone(b.Keys), Directives: map[string][]string{}}
		for dir, toks := range b.Tokens {
			for _, t := range toks {
				sb.Directives[dir] = append(sb.Directives[dir], t.Text)
			}
		}
		out = append(out, sb)
	}
	return out, nil
}

// Equal reports whether two server blocks mean the same.
func (b ServerBlock) Equal(o ServerBlock) bool {
	if !slices.Equal(b.Keys, o.Keys) || len(b.Directives) != len(o.Directives) {
		return false
	}
	for k, v := range b.Directives {
		if !slices.Equal(v, o.Directives[k]) {
			return false
		}
	}
	return true
}

// ServesGlobal reports whether one of the block's keys is the global zone
// on port 53.
func (b ServerBlock) ServesGlobal() bool {
	return slices.ContainsFunc(b.Keys, isGlobalKey)
}

// ForwardsTo is the upstream list of the block's forward (or legacy proxy)
// directive for the root of its zone.
func (b ServerBlock) ForwardsTo() []string {
	for _, dir := range []string{"forward", "proxy"} {
		toks := b.Directives[dir]
		if len(toks) >= 3 && toks[1] == "." {
			var to []string
			for _, t := range toks[2:] {
				if t == "{" {
					break
				}
				to = append(to, t)
			}
			return to
		}
	}
	return nil
}

// isGlobalKey matches the spellings CoreDNS accepts for the global zone on
// the DNS port: global, global., global:53, dns://global.:53, …
func isGlobalKey(key string) bool {
	key = strings.TrimSuffix(key, ",")
	key = strings.TrimPrefix(strings.ToLower(key), "dns://")
	zone, port := key, "53"
	if h, p, err := net.SplitHostPort(key); err == nil {
		zone, port = h, p
	}
	return strings.TrimSuffix(zone, ".") == Zone && port == "53"
}

// GlobalForwarding returns the upstreams the Corefile forwards the global
// zone to; nil if no server block serves it.
func GlobalForwarding(corefile string) ([]string, error) {
	blocks, err := ParseCorefile(corefile)
	if err != nil {
		return nil, err
	}
	for _, b := range blocks {
		if b.ServesGlobal() {
			return b.ForwardsTo(), nil
		}
	}
	return nil, nil
}

// span is where a server block sits in the text: lines [first, last],
// zero-based.
type span struct {
	keys        []string
	first, last int
}

// blockSpans walks the Corefile's tokens (lexed by the caddyfile package)
// and returns the line span of every top-level server block. A block must
// start and end on lines of its own so that it can be replaced or removed
// without touching a neighbour.
func blockSpans(text string) ([]span, error) {
	d := caddyfile.NewDispenser("Corefile", strings.NewReader(text))
	type tok struct {
		text string
		line int
	}
	var toks []tok
	for d.Next() {
		toks = append(toks, tok{d.Val(), d.Line() - 1})
	}
	var spans []span
	for i := 0; i < len(toks); {
		s := span{first: toks[i].line}
		for i < len(toks) && toks[i].text != "{" && toks[i].line == s.first {
			s.keys = append(s.keys, toks[i].text)
			i++
		}
		if i == len(toks) || toks[i].line != s.first {
			// A line without a block: an import, or a braceless block
			// (allowed only as a file's single block). Nothing to span.
			continue
		}
		depth := 0
		for ; i < len(toks); i++ {
			switch toks[i].text {
			case "{":
				depth++
			case "}":
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i == len(toks) {
			return nil, fmt.Errorf("parse Corefile: server block %s has no closing brace", strings.Join(s.keys, " "))
		}
		s.last = toks[i].line
		if (i+1 < len(toks) && toks[i+1].line == s.last) || (len(spans) > 0 && spans[len(spans)-1].last == s.first) {
			s.first = -1 // shares a line with another block
		}
		spans = append(spans, s)
		i++
	}
	return spans, nil
}

// CorefileEdit is what EnsureGlobal changed in a Corefile: the lines it
// replaced (empty when it appended) and the lines it wrote.
type CorefileEdit struct {
	Removed      string `json:"removed,omitempty"`
	Added        string `json:"added"`
	NewlineAdded bool   `json:"newlineAdded,omitempty"`
}

// EnsureGlobal returns the Corefile with a global:53 block that forwards to
// ip. An existing global block that already does exactly that is left
// alone (edit is nil); one that differs (e.g. the old `proxy . IP`) is
// replaced; otherwise the block is appended. Every other byte stays, and
// the result is checked by parsing both texts: all other server blocks
// must mean the same.
func EnsureGlobal(corefile, ip string) (string, *CorefileEdit, error) {
	if net.ParseIP(ip) == nil {
		return "", nil, fmt.Errorf("istiocoredns address %q is not an IP address", ip)
	}
	before, err := ParseCorefile(corefile)
	if err != nil {
		return "", nil, err
	}
	want, err := ParseCorefile(Block(ip))
	if err != nil {
		return "", nil, err
	}
	spans, err := blockSpans(corefile)
	if err != nil {
		return "", nil, err
	}
	var global *span
	for i := range spans {
		if slices.ContainsFunc(spans[i].keys, isGlobalKey) {
			if global != nil {
				return "", nil, fmt.Errorf("the Corefile has more than one server block for the global zone; keep one and run again")
			}
			global = &spans[i]
		}
	}
	lines := strings.SplitAfter(corefile, "\n")
	var out string
	edit := &CorefileEdit{Added: Block(ip)}
	if global == nil {
		if slices.ContainsFunc(before, ServerBlock.ServesGlobal) {
			return "", nil, fmt.Errorf("the Corefile serves the global zone in a block kubectl mesh cannot edit safely; give it its own `global:53 { … }` block on separate lines")
		}
		out = corefile
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
			edit.NewlineAdded = true
		}
		out += edit.Added
	} else {
		if len(global.keys) != 1 {
			return "", nil, fmt.Errorf("the Corefile's server block %q serves the global zone together with other zones; split it so that global:53 has a block of its own", strings.Join(global.keys, " "))
		}
		if global.first < 0 {
			return "", nil, fmt.Errorf("the Corefile's global server block shares a line with another block; put it on lines of its own")
		}
		for _, b := range before {
			if b.ServesGlobal() && b.Equal(rekey(want[0], b.Keys)) {
				return corefile, nil, nil
			}
		}
		edit.Removed = strings.Join(lines[global.first:global.last+1], "")
		added := edit.Added
		if !strings.HasSuffix(edit.Removed, "\n") {
			// The old block ended the file without a newline: keep it so.
			added = strings.TrimSuffix(added, "\n")
			edit.Added = added
		}
		out = strings.Join(lines[:global.first], "") + added + strings.Join(lines[global.last+1:], "")
	}
	if err := sameExceptGlobal(before, out); err != nil {
		return "", nil, err
	}
	return out, edit, nil
}

// rekey gives b the keys of another spelling of the same zone, so that
// `global {` and `global:53 {` compare equal.
func rekey(b ServerBlock, keys []string) ServerBlock {
	b.Keys = keys
	return b
}

// sameExceptGlobal checks that text, parsed, has exactly the server blocks
// of before apart from the global one.
func sameExceptGlobal(before []ServerBlock, text string) error {
	after, err := ParseCorefile(text)
	if err != nil {
		return fmt.Errorf("the edited Corefile does not parse (nothing was written): %w", err)
	}
	strip := func(bs []ServerBlock) []ServerBlock {
		return slices.DeleteFunc(slices.Clone(bs), ServerBlock.ServesGlobal)
	}
	a, b := strip(before), strip(after)
	if !slices.EqualFunc(a, b, ServerBlock.Equal) {
		return fmt.Errorf("editing the Corefile would change other server blocks (nothing was written); add the global:53 block by hand")
	}
	return nil
}

// RemoveGlobal undoes edit on corefile: the global block that EnsureGlobal
// wrote is replaced by the text it replaced, or removed. A global block
// that already is the one replaced (the edit was never written, or is
// undone) is left as it is. If the block is neither, the Corefile is
// returned unchanged and an error says why.
func RemoveGlobal(corefile string, edit CorefileEdit) (string, error) {
	lines, s, err := globalSpan(corefile)
	if err != nil || s == nil {
		return corefile, err
	}
	text := strings.Join(lines[s.first:s.last+1], "")
	if text == edit.Removed {
		return corefile, nil
	}
	if text != edit.Added {
		return corefile, fmt.Errorf("the global server block was changed after kubectl mesh wrote it; remove it by hand")
	}
	head := strings.Join(lines[:s.first], "")
	tail := strings.Join(lines[s.last+1:], "")
	if edit.NewlineAdded && tail == "" {
		head = strings.TrimSuffix(head, "\n")
	}
	return head + edit.Removed + tail, nil
}

// globalBlock returns the text of the Corefile's global server block, when
// it has one on lines of its own.
func globalBlock(corefile string) (text string, found bool, err error) {
	lines, s, err := globalSpan(corefile)
	if err != nil || s == nil {
		return "", false, err
	}
	return strings.Join(lines[s.first:s.last+1], ""), true, nil
}

// globalSpan finds the global server block that sits on lines of its own.
func globalSpan(corefile string) ([]string, *span, error) {
	spans, err := blockSpans(corefile)
	if err != nil {
		return nil, nil, err
	}
	for i, s := range spans {
		if s.first >= 0 && slices.ContainsFunc(s.keys, isGlobalKey) {
			return strings.SplitAfter(corefile, "\n"), &spans[i], nil
		}
	}
	return nil, nil, nil
}

// Canonical renders blocks in a stable form, for messages and tests.
func Canonical(blocks []ServerBlock) string {
	var buf bytes.Buffer
	for _, b := range blocks {
		fmt.Fprintf(&buf, "%s {\n", strings.Join(b.Keys, " "))
		dirs := make([]string, 0, len(b.Directives))
		for d := range b.Directives {
			dirs = append(dirs, d)
		}
		slices.Sort(dirs)
		for _, d := range dirs {
			fmt.Fprintf(&buf, "  %s\n", strings.Join(b.Directives[d], " "))
		}
		buf.WriteString("}\n")
	}
	return buf.String()
}
