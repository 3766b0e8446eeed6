package docs_test

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// repoRoot is the repository's root, relative to this package.
const repoRoot = ".."

// knownBrokenInREADME lists links of README.md that are broken on this
// branch and are README's to fix (another change rewrites README.md into
// docs/ pages), as "target" exactly as written. The test fails for any
// other broken link, and for an entry here that README.md no longer has
// broken: remove it then, so that the list only ever shrinks.
var knownBrokenInREADME []string

// TestRelativeLinksResolve checks every relative link of README.md,
// docs/**/*.md and remediate/**/README.md: the file (or folder) it names
// exists, and its #anchor, in a Markdown file, is a heading there (or an
// HTML anchor). Links with a scheme (https:, mailto:) are not followed.
func TestRelativeLinksResolve(t *testing.T) {
	files, err := markdownFiles(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 || files[0] != "README.md" || !slices.Contains(files, "docs/performance.md") {
		t.Fatalf("found only %v", files)
	}
	problems, checked, err := brokenLinks(repoRoot, files, knownBrokenInREADME)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d links in %d files", checked, len(files))
}

// TestBrokenLinks runs the whole check over a small tree: what it reports,
// and that an allowed broken link of README.md is allowed only while it
// is there and broken.
func TestBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n[ok](docs/a.md#second) [old](docs/OLD.md) [self](#top)\n")
	write("docs/a.md", "# First\n\n## Second\n\n[back](../README.md#top) [gone](b.md) [bad anchor](../README.md#bottom)\n")
	write("docs/runbooks/r.md", "# R\n\n[up](../a.md#first) ```[not](a/link.md)```\n")
	write("remediate/restart/README.md", "# restart\n\n[engine](../README.md)\n")
	write("remediate/notes.md", "[not read](nowhere.md)\n")

	files, err := markdownFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"README.md", "docs/a.md", "docs/runbooks/r.md", "remediate/restart/README.md"}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}

	tests := []struct {
		name    string
		allowed []string
		want    []string
	}{
		{
			name: "nothing allowed",
			want: []string{
				`README.md:3: link "docs/OLD.md": no file docs/OLD.md`,
				`docs/a.md:5: link "b.md": no file docs/b.md`,
				`docs/a.md:5: link "../README.md#bottom": README.md has no heading #bottom`,
				`remediate/restart/README.md:3: link "../README.md": no file remediate/README.md`,
			},
		},
		{
			name:    "README's broken link allowed, and a stale entry",
			allowed: []string{"docs/OLD.md", "docs/a.md#second", "docs/elsewhere.md"},
			want: []string{
				`docs/a.md:5: link "b.md": no file docs/b.md`,
				`docs/a.md:5: link "../README.md#bottom": README.md has no heading #bottom`,
				`remediate/restart/README.md:3: link "../README.md": no file remediate/README.md`,
				`knownBrokenInREADME lists "docs/a.md#second", which README.md no longer has broken: remove it from the list`,
				`knownBrokenInREADME lists "docs/elsewhere.md", which README.md no longer has broken: remove it from the list`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, checked, err := brokenLinks(root, files, tc.allowed)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if checked != 8 {
				t.Errorf("checked %d links, want 8", checked)
			}
		})
	}
}

// brokenLinks checks the links of files (slash paths from root) and
// returns one line per problem, in file order. A broken link of README.md
// whose target is in allowedREADME is not a problem; an entry of
// allowedREADME that is not a broken link of README.md is.
func brokenLinks(root string, files, allowedREADME []string) (problems []string, checked int, err error) {
	anchors := map[string]map[string]bool{} // by slash path from root
	anchorsOf := func(p string) (map[string]bool, error) {
		if a, ok := anchors[p]; ok {
			return a, nil
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		if err != nil {
			return nil, err
		}
		a := map[string]bool{}
		for _, s := range headingSlugs(string(data)) {
			a[s] = true
		}
		for _, m := range htmlAnchorRE.FindAllStringSubmatch(string(data), -1) {
			a[m[1]] = true
		}
		anchors[p] = a
		return a, nil
	}
	brokenREADME := map[string]bool{}
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			return nil, 0, err
		}
		for _, l := range markdownLinks(string(data)) {
			checked++
			problem := checkLink(root, file, l.target, anchorsOf)
			if problem == "" {
				continue
			}
			if file == "README.md" && slices.Contains(allowedREADME, l.target) {
				brokenREADME[l.target] = true
				continue
			}
			problems = append(problems, fmt.Sprintf("%s:%d: link %q: %s", file, l.line, l.target, problem))
		}
	}
	for _, target := range allowedREADME {
		if !brokenREADME[target] {
			problems = append(problems, fmt.Sprintf("knownBrokenInREADME lists %q, which README.md no longer has broken: remove it from the list", target))
		}
	}
	return problems, checked, nil
}

// markdownFiles lists the files the link check reads, as slash paths from
// root: README.md, then docs/**/*.md and remediate/**/README.md, sorted.
func markdownFiles(root string) ([]string, error) {
	var files []string
	for _, dir := range []string{"docs", "remediate"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".md") {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if dir == "docs" || path.Base(rel) == "README.md" {
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return append([]string{"README.md"}, files...), nil
}

// checkLink returns what is wrong with a link target written in file (a
// slash path from root), or "" when it resolves or is not relative.
func checkLink(root, file, target string, anchorsOf func(string) (map[string]bool, error)) string {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Sprintf("not a URL: %v", err)
	}
	if u.Scheme != "" || u.Host != "" {
		return "" // external: not fetched
	}
	dest := file
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			dest = path.Clean(strings.TrimPrefix(u.Path, "/"))
		} else {
			dest = path.Join(path.Dir(file), u.Path)
		}
		if dest == ".." || strings.HasPrefix(dest, "../") {
			return "points outside the repository"
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
			return fmt.Sprintf("no file %s", dest)
		}
	}
	if u.Fragment == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	a, err := anchorsOf(dest)
	if err != nil {
		return err.Error()
	}
	if !a[u.Fragment] {
		return fmt.Sprintf("%s has no heading #%s", dest, u.Fragment)
	}
	return ""
}

// link is a link target and the line it is on.
type link struct {
	target string
	line   int
}

var (
	// inlineLinkRE matches [text](target) and ![alt](target), with an
	// optional title; the text may hold one level of brackets.
	inlineLinkRE = regexp.MustCompile(`\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)`)
	// refDefRE matches a reference definition: [label]: target.
	refDefRE = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	// htmlAnchorRE matches <a id="x"> or <a name="x">.
	htmlAnchorRE = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	// fenceRE matches the line that opens or closes a fenced code block.
	fenceRE = regexp.MustCompile("^ {0,3}(```+|~~~+)")
)

// markdownLinks returns the link targets of a Markdown text, outside code
// blocks and code spans.
func markdownLinks(text string) []link {
	var links []link
	for i, line := range proseLines(text) {
		if line == "" {
			continue
		}
		line = blankCodeSpans(line)
		for _, m := range inlineLinkRE.FindAllStringSubmatch(line, -1) {
			links = append(links, link{target: m[1], line: i + 1})
		}
		if m := refDefRE.FindStringSubmatch(line); m != nil {
			links = append(links, link{target: m[1], line: i + 1})
		}
	}
	return links
}

// blankCodeSpans replaces each code span of a line (a run of backticks,
// up to the next run of as many) with spaces; a run without its match is
// text.
func blankCodeSpans(line string) string {
	b := []byte(line)
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		end := -1
		for j := i + n; j < len(b); {
			if b[j] != '`' {
				j++
				continue
			}
			m := 0
			for j+m < len(b) && b[j+m] == '`' {
				m++
			}
			if m == n {
				end = j + m
				break
			}
			j += m
		}
		if end < 0 {
			i += n
			continue
		}
		for k := i; k < end; k++ {
			b[k] = ' '
		}
		i = end
	}
	return string(b)
}

// proseLines returns the lines of text with those inside fenced code
// blocks (and the fences) blanked, so that line numbers stay.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, l := range lines {
		m := fenceRE.FindStringSubmatch(l)
		switch {
		case fence == "" && m != nil:
			fence = m[1]
			lines[i] = ""
		case fence != "":
			// A fence closes on a line of at least as many of the same
			// character and nothing else.
			if m != nil && m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(l)[len(m[1]):] == "" {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return lines
}

// atxHeadingRE matches an ATX heading: 1 to 6 #, a space, the text, and an
// optional closing run of #.
var atxHeadingRE = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)

// headingSlugs returns the anchors GitHub gives the headings of a Markdown
// text, in order: each heading's slug, with -1, -2, ... added to a slug
// already taken.
func headingSlugs(text string) []string {
	var slugs []string
	seen := map[string]int{}
	for _, l := range proseLines(text) {
		m := atxHeadingRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		base := slug(m[1])
		s := base
		for {
			if _, taken := seen[s]; !taken {
				break
			}
			seen[base]++
			s = fmt.Sprintf("%s-%d", base, seen[base])
		}
		seen[s] = 0 // a numbered slug is taken as well
		slugs = append(slugs, s)
	}
	return slugs
}

var (
	// headingLinkRE matches a link or image in a heading: its text stays.
	headingLinkRE = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)`)
	// htmlTagRE matches an HTML tag in a heading: dropped.
	htmlTagRE = regexp.MustCompile(`<[^>]+>`)
)

// slug is GitHub's anchor for a heading's text: the text as rendered
// (links by their text, HTML tags dropped), lower-cased, every character
// but letters, digits, spaces, hyphens and underscores dropped, and each
// space turned into a hyphen.
func slug(heading string) string {
	s := headingLinkRE.ReplaceAllString(heading, "$1")
	s = htmlTagRE.ReplaceAllString(s, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Performance", "performance"},
		{"In the real Prometheus, against kube-prometheus's working-set rule", "in-the-real-prometheus-against-kube-prometheuss-working-set-rule"},
		{"`restart`", "restart"},
		{"Memory requests and limits (`leakguard recommend`)", "memory-requests-and-limits-leakguard-recommend"},
		{"A real node (`make e2e-node`)", "a-real-node-make-e2e-node"},
		{"The whole alert chain (`test/e2e/chain`)", "the-whole-alert-chain-teste2echain"},
		{"A recorded real trace (`rules/testdata/real-trace.test.yaml`)", "a-recorded-real-trace-rulestestdatareal-tracetestyaml"},
		{"Authentication, TLS and endpoints", "authentication-tls-and-endpoints"},
		{"Budgets & the pause switch", "budgets--the-pause-switch"},
		{"v1.37.2 and etcd 3.7", "v1372-and-etcd-37"},
		{"RBAC: the base and the components", "rbac-the-base-and-the-components"},
		{"How the harness measures (`hack/rulecost`)", "how-the-harness-measures-hackrulecost"},
		{"snake_case and kebab-case", "snake_case-and-kebab-case"},
		{"**Bold** and *em*", "bold-and-em"},
		{"See [the runbook](runbooks/NodeCgroupLeak.md) now", "see-the-runbook-now"},
		{"Ünïcode Überschrift", "ünïcode-überschrift"},
		{"Trailing spaces   ", "trailing-spaces"},
		{"What `deploy/` contains", "what-deploy-contains"},
		{"<code>HTML</code> tag", "html-tag"},
	}
	for _, tc := range tests {
		t.Run(tc.heading, func(t *testing.T) {
			if got := slug(tc.heading); got != tc.want {
				t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
			}
		})
	}
}

func TestHeadingSlugs(t *testing.T) {
	text := strings.Join([]string{
		"# Title",
		"## Install",
		"```sh",
		"# a comment in a code block, not a heading",
		"```",
		"### Install",
		"## Install ##",
		"####### seven hashes: not a heading",
		"#hashtag: not a heading",
		"  ## indented two: a heading",
		"~~~",
		"## in a tilde fence",
		"```",
		"## still in it: a backtick fence does not close a tilde one",
		"~~~",
		"## Install-1",
		"## A",
		"## A-1",
		"## A",
	}, "\n")
	want := []string{"title", "install", "install-1", "install-2", "indented-two-a-heading", "install-1-1", "a", "a-1", "a-2"}
	if diff := cmp.Diff(want, headingSlugs(text)); diff != "" {
		t.Errorf("heading slugs (-want +got):\n%s", diff)
	}
}

func TestMarkdownLinks(t *testing.T) {
	text := strings.Join([]string{
		"See [the docs](docs/install.md) and [the runbook](runbooks/A.md#meaning).",
		"An image ![chain](docs/chain.svg \"the chain\") and `[code](not/a/link.md)`.",
		"```",
		"[in a block](not/a/link.md)",
		"```",
		"[text with [brackets]](b.md) and <https://example.com> and [ext](https://example.com/x)",
		"[ref]: docs/ref.md",
		"A span with a backtick inside: ``[a ` b](not/a/link.md)`` then [after](c.md).",
		"| [in a table](#anchor) |",
	}, "\n")
	want := []link{
		{"docs/install.md", 1}, {"runbooks/A.md#meaning", 1},
		{"docs/chain.svg", 2},
		{"b.md", 6}, {"https://example.com/x", 6},
		{"docs/ref.md", 7},
		{"c.md", 8},
		{"#anchor", 9},
	}
	if diff := cmp.Diff(want, markdownLinks(text), cmp.AllowUnexported(link{})); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
}

func TestCheckLink(t *testing.T) {
	// The files are looked up in this repository; the anchors are the
	// test's.
	anchors := func(p string) (map[string]bool, error) {
		switch p {
		case "docs/performance.md":
			return map[string]bool{"detection": true, "node-agent": true}, nil
		case "README.md":
			return map[string]bool{"install": true}, nil
		}
		return nil, fmt.Errorf("read %s: no such file", p)
	}
	tests := []struct {
		file, target string
		wantProblem  string // a substring; "" for none
	}{
		{"README.md", "docs/performance.md", ""},
		{"README.md", "docs/performance.md#node-agent", ""},
		{"README.md", "docs/performance.md#no-such-heading", "has no heading #no-such-heading"},
		{"README.md", "docs/PERFORMANCE-missing.md", "no file docs/PERFORMANCE-missing.md"},
		{"docs/runbooks/ContainerMemoryLeak.md", "../performance.md#detection", ""},
		{"docs/runbooks/ContainerMemoryLeak.md", "../../README.md#install", ""},
		{"docs/runbooks/ContainerMemoryLeak.md", "../../../outside.md", "points outside the repository"},
		{"README.md", "#install", ""},
		{"README.md", "#nowhere", "README.md has no heading #nowhere"},
		{"README.md", "/Makefile", ""},
		{"README.md", "deploy/", ""},
		{"README.md", "Makefile#L10", ""},
		{"README.md", "https://example.com/missing.md#x", ""},
		{"README.md", "mailto:someone@example.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.file+" "+tc.target, func(t *testing.T) {
			got := checkLink(repoRoot, tc.file, tc.target, anchors)
			switch {
			case tc.wantProblem == "" && got != "":
				t.Errorf("checkLink = %q, want no problem", got)
			case tc.wantProblem != "" && !strings.Contains(got, tc.wantProblem):
				t.Errorf("checkLink = %q, want a problem with %q", got, tc.wantProblem)
			}
		})
	}
}
