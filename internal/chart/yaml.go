package chart

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// A template is a YAML document being turned into a Helm template: edits
// replace nodes of the document with tokens (plain scalars the encoder
// writes as they are), and expand replaces each token's line, or the token
// within a line, by template text.
type template struct {
	tokens map[string]token
	next   int
}

// token is what replaces one token when the document is written.
type token struct {
	kind tokenKind
	// expr is the template expression (without braces) of inline, block,
	// text and with; the condition of cond.
	expr string
	// key is the mapping key that with adds and cond wraps.
	key string
	// sub is the YAML of the node that cond wraps, already escaped, its
	// own tokens unexpanded.
	sub string
	// raw is the template text of raw, one line each, indented as the
	// token's line is.
	raw []string
	// scalar makes with write the value as a quoted scalar, not a block.
	scalar bool
}

type tokenKind int

const (
	// inline: the token is replaced by {{ expr }} where it stands (a whole
	// scalar, or a part of one).
	inline tokenKind = iota
	// block: "key: TOKEN" becomes key: {{- toYaml expr | nindent N }}.
	block
	// text: "key: TOKEN" becomes a literal block scalar of expr's text.
	text
	// with: "TOKEN: x" becomes key: ... if expr is not empty.
	with
	// cond: "key: TOKEN" or "- TOKEN" becomes the wrapped node under
	// {{- if expr }}.
	cond
	// raw: "TOKEN: x" or "- TOKEN" becomes the lines of raw.
	raw
)

// tokenRE matches a token; tokens are lower-case letters and digits so
// that the encoder writes them plain, and they never occur in deploy/.
var tokenRE = regexp.MustCompile(`xlgtpl[0-9]+x`)

func newTemplate() *template { return &template{tokens: map[string]token{}} }

// add records t and returns its token.
func (tp *template) add(t token) string {
	tp.next++
	name := "xlgtpl" + strconv.Itoa(tp.next) + "x"
	tp.tokens[name] = t
	return name
}

// marshal writes node as YAML (comments dropped), escaping every {{ and
// }} that the content holds (the rules' and dashboards' own templates), so
// that Helm writes them as they are.
func marshal(node *kyaml.Node) (string, error) {
	clearComments(node)
	s, err := kyaml.String(node)
	if err != nil {
		return "", err
	}
	return escapeBraces(s), nil
}

var braces = strings.NewReplacer("{{", `{{ "{{" }}`, "}}", `{{ "}}" }}`)

func escapeBraces(s string) string { return braces.Replace(s) }

func clearComments(n *kyaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		clearComments(c)
	}
}

var (
	// keyLineRE is "  key: TOKEN" or "  - key: TOKEN".
	keyLineRE = regexp.MustCompile(`^(\s*)((?:- )*)([^\s:][^:]*): (xlgtpl[0-9]+x)$`)
	// itemLineRE is "  - TOKEN".
	itemLineRE = regexp.MustCompile(`^(\s*)- (xlgtpl[0-9]+x)$`)
	// tokenKeyLineRE is "  TOKEN: ..." (with and raw in a mapping).
	tokenKeyLineRE = regexp.MustCompile(`^(\s*)(xlgtpl[0-9]+x): .*$`)
)

// expand replaces every token of doc, recursively, and fails on a token it
// cannot place.
func (tp *template) expand(doc string) (string, error) {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(doc, "\n"), "\n") {
		lines, err := tp.expandLine(line)
		if err != nil {
			return "", err
		}
		out = append(out, lines...)
	}
	return strings.Join(out, "\n") + "\n", nil
}

func (tp *template) expandLine(line string) ([]string, error) {
	names := tokenRE.FindAllString(line, -1)
	if len(names) == 0 {
		return []string{line}, nil
	}
	// Inline tokens first: they stand within scalars, several to a line.
	allInline := true
	for _, name := range names {
		t, ok := tp.tokens[name]
		if !ok {
			return nil, fmt.Errorf("unknown token %s in %q", name, line)
		}
		if t.kind != inline {
			allInline = false
			continue
		}
		line = replaceInline(line, name, "{{ "+t.expr+" }}")
	}
	if allInline {
		return []string{line}, nil
	}
	if m := tokenKeyLineRE.FindStringSubmatch(line); m != nil {
		ind, t := m[1], tp.tokens[m[2]]
		switch t.kind {
		case with:
			value := "{{- toYaml . | nindent " + strconv.Itoa(len(ind)+2) + " }}"
			if t.scalar {
				value = "{{ . | quote }}"
			}
			return []string{ind + "{{- with " + t.expr + " }}", ind + t.key + ": " + value, ind + "{{- end }}"}, nil
		case raw:
			return indentLines(ind, t.raw), nil
		}
	}
	if m := itemLineRE.FindStringSubmatch(line); m != nil {
		ind, t := m[1], tp.tokens[m[2]]
		switch t.kind {
		case raw:
			return indentLines(ind, t.raw), nil
		case cond:
			sub, err := tp.expand(t.sub)
			if err != nil {
				return nil, err
			}
			lines := []string{ind + "{{- if " + t.expr + " }}"}
			for i, l := range strings.Split(strings.TrimSuffix(sub, "\n"), "\n") {
				if i == 0 {
					lines = append(lines, ind+"- "+l)
				} else {
					lines = append(lines, ind+"  "+l)
				}
			}
			return append(lines, ind+"{{- end }}"), nil
		}
	}
	if m := keyLineRE.FindStringSubmatch(line); m != nil {
		ind, dashes, key, t := m[1], m[2], m[3], tp.tokens[m[4]]
		keyInd := len(ind) + len(dashes)
		switch t.kind {
		case block:
			return []string{ind + dashes + key + ": {{- toYaml " + t.expr + " | nindent " + strconv.Itoa(keyInd+2) + " }}"}, nil
		case text:
			return []string{ind + dashes + key + ": |", strings.Repeat(" ", keyInd+2) + "{{- " + t.expr + " | nindent " + strconv.Itoa(keyInd+2) + " }}"}, nil
		case cond:
			if dashes != "" {
				return nil, fmt.Errorf("cannot wrap %s, the first field of a list item, in a condition", key)
			}
			sub, err := tp.expand(t.sub)
			if err != nil {
				return nil, err
			}
			sub = strings.TrimSuffix(sub, "\n")
			lines := []string{ind + "{{- if " + t.expr + " }}"}
			if !strings.Contains(sub, "\n") && !strings.HasSuffix(sub, ":") && !isCollection(sub) {
				lines = append(lines, ind+key+": "+sub)
			} else {
				lines = append(lines, ind+key+":")
				for _, l := range strings.Split(sub, "\n") {
					lines = append(lines, ind+"  "+l)
				}
			}
			return append(lines, ind+"{{- end }}"), nil
		}
	}
	return nil, fmt.Errorf("cannot place the template of %q", line)
}

// isCollection reports whether a one-line YAML value is a mapping or a
// list entry ("a: b", "- a") rather than a scalar.
func isCollection(s string) bool {
	return strings.HasPrefix(s, "- ") || (strings.Contains(s, ": ") && !strings.HasPrefix(s, `"`) && !strings.HasPrefix(s, "'"))
}

// replaceInline puts expr where name stands in line; a whole scalar that
// the encoder quoted loses its quotes, since expr quotes what it writes.
func replaceInline(line, name, expr string) string {
	for _, q := range []string{`"`, `'`} {
		if strings.Contains(line, q+name+q) {
			return strings.Replace(line, q+name+q, expr, 1)
		}
	}
	return strings.Replace(line, name, expr, 1)
}

// indentLines indents raw's lines by ind, with NINDENT in them replaced
// by ind's width.
func indentLines(ind string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if l == "" {
			out[i] = l
			continue
		}
		out[i] = ind + strings.ReplaceAll(l, "NINDENT", strconv.Itoa(len(ind)))
	}
	return out
}
