package fleet

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// point is one sample of a trace: its minute from the trace's start, and
// either a value or a staleness marker.
type point struct {
	minute int
	value  float64
	stale  bool
}

// series is one input series of a promtool test file.
type series struct {
	labels map[string]string // with __name__
	points []point
}

// check is one promql_expr_test of a trace check file.
type check struct {
	name     string
	expr     string
	matchers []matcher // of the ALERTS selector in expr
	at       time.Duration
	want     float64
}

// caseFile is a promtool test file of the shared trace suite.
type caseFile struct {
	Tests []struct {
		Name        string `json:"name"`
		InputSeries []struct {
			Series string `json:"series"`
			Values string `json:"values"`
		} `json:"input_series"`
		PromQLExprTest []struct {
			Expr       string `json:"expr"`
			EvalTime   string `json:"eval_time"`
			ExpSamples []struct {
				Value float64 `json:"value"`
			} `json:"exp_samples"`
		} `json:"promql_expr_test"`
	} `json:"tests"`
}

// loadCase reads a trace check file: its series and its checks.
func loadCase(t *testing.T, path string) ([]series, []check) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f caseFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var ss []series
	var cs []check
	for _, tc := range f.Tests {
		for _, in := range tc.InputSeries {
			ls, err := parseSeries(in.Series)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			pts, err := expandValues(in.Values)
			if err != nil {
				t.Fatalf("%s: series %s: %v", path, in.Series, err)
			}
			ss = append(ss, series{labels: ls, points: pts})
		}
		for _, e := range tc.PromQLExprTest {
			at, err := model.ParseDuration(e.EvalTime)
			if err != nil {
				t.Fatalf("%s: eval_time %q: %v", path, e.EvalTime, err)
			}
			want := 0.0
			if len(e.ExpSamples) == 1 {
				want = e.ExpSamples[0].Value
			}
			ms, err := alertsMatchers(e.Expr)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			cs = append(cs, check{name: tc.Name, expr: e.Expr, matchers: ms, at: time.Duration(at), want: want})
		}
	}
	return ss, cs
}

// expandValues expands promtool's series notation, one value a minute from
// minute 0: "a", "a+bxN" and "a-bxN" (N+1 values), "_" and "_xN" (missing),
// "stale".
func expandValues(s string) ([]point, error) {
	var pts []point
	minute := 0
	for _, tok := range strings.Fields(s) {
		switch {
		case tok == "stale":
			pts = append(pts, point{minute: minute, stale: true})
			minute++
		case tok == "_":
			minute++
		case strings.HasPrefix(tok, "_x"):
			n, err := strconv.Atoi(tok[2:])
			if err != nil {
				return nil, fmt.Errorf("token %q: %v", tok, err)
			}
			minute += n
		case strings.Contains(tok, "x"):
			body, count, _ := strings.Cut(tok, "x")
			n, err := strconv.Atoi(count)
			if err != nil {
				return nil, fmt.Errorf("token %q: %v", tok, err)
			}
			// a+b or a-b; the sign of a itself may lead.
			i := strings.LastIndexAny(body, "+-")
			if i <= 0 {
				return nil, fmt.Errorf("token %q: no increment", tok)
			}
			a, err1 := strconv.ParseFloat(body[:i], 64)
			b, err2 := strconv.ParseFloat(body[i+1:], 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("token %q: not a+bxN", tok)
			}
			if body[i] == '-' {
				b = -b
			}
			for k := 0; k <= n; k++ {
				pts = append(pts, point{minute: minute, value: a + float64(k)*b})
				minute++
			}
		default:
			v, err := strconv.ParseFloat(tok, 64)
			if err != nil {
				return nil, fmt.Errorf("token %q: %v", tok, err)
			}
			pts = append(pts, point{minute: minute, value: v})
			minute++
		}
	}
	return pts, nil
}

var labelRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)`)

// parseSeries parses name{a="x",...} into labels with __name__.
func parseSeries(s string) (map[string]string, error) {
	name, rest, ok := strings.Cut(s, "{")
	if !ok || !strings.HasSuffix(rest, "}") {
		return nil, fmt.Errorf("series %q: want name{labels}", s)
	}
	ms, err := parseMatchers(strings.TrimSuffix(rest, "}"))
	if err != nil {
		return nil, fmt.Errorf("series %q: %v", s, err)
	}
	ls := map[string]string{"__name__": name}
	for _, m := range ms {
		if m.op != "=" {
			return nil, fmt.Errorf("series %q: label %s is not name=\"value\"", s, m.name)
		}
		ls[m.name] = m.value
	}
	return ls, nil
}

// matcher is one label matcher of a selector.
type matcher struct {
	name, op, value string
	re              *regexp.Regexp
}

func (m matcher) matches(ls map[string]string) bool {
	v := ls[m.name]
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

func matchAll(ms []matcher, ls map[string]string) bool {
	for _, m := range ms {
		if !m.matches(ls) {
			return false
		}
	}
	return true
}

func parseMatchers(body string) ([]matcher, error) {
	var ms []matcher
	for strings.TrimSpace(body) != "" {
		m := labelRE.FindStringSubmatch(body)
		if m == nil {
			return nil, fmt.Errorf("cannot parse labels at %q", body)
		}
		v, err := strconv.Unquote(`"` + m[3] + `"`)
		if err != nil {
			return nil, err
		}
		mt := matcher{name: m[1], op: m[2], value: v}
		if mt.op == "=~" || mt.op == "!~" {
			if mt.re, err = regexp.Compile("^(?:" + v + ")$"); err != nil {
				return nil, err
			}
		}
		ms = append(ms, mt)
		body = body[len(m[0]):]
	}
	return ms, nil
}

// alertsMatchers reads the ALERTS{...} selector of a trace check's
// expression, count(ALERTS{...}) or vector(0).
func alertsMatchers(expr string) ([]matcher, error) {
	i := strings.Index(expr, "ALERTS{")
	if i < 0 {
		return nil, fmt.Errorf("expression %q selects no ALERTS", expr)
	}
	body := expr[i+len("ALERTS{"):]
	j := strings.Index(body, "}")
	if j < 0 {
		return nil, fmt.Errorf("expression %q: unclosed selector", expr)
	}
	return parseMatchers(body[:j])
}

// withLabels copies ss, setting extra labels on every series.
func withLabels(ss []series, extra map[string]string) []series {
	out := make([]series, len(ss))
	for i, s := range ss {
		ls := make(map[string]string, len(s.labels)+len(extra))
		for k, v := range s.labels {
			ls[k] = v
		}
		for k, v := range extra {
			ls[k] = v
		}
		out[i] = series{labels: ls, points: s.points}
	}
	return out
}

// truncate keeps the points of ss up to minute last.
func truncate(ss []series, last int) []series {
	out := make([]series, len(ss))
	for i, s := range ss {
		var pts []point
		for _, p := range s.points {
			if p.minute <= last {
				pts = append(pts, p)
			}
		}
		out[i] = series{labels: s.labels, points: pts}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestExpandValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []point
	}{
		{"1 2", []point{{0, 1, false}, {1, 2, false}}},
		{"5+2x2", []point{{0, 5, false}, {1, 7, false}, {2, 9, false}}},
		{"5-1x1 _x2 stale", []point{{0, 5, false}, {1, 4, false}, {4, 0, true}}},
		{"_ 3+0x1", []point{{1, 3, false}, {2, 3, false}}},
		{"1e3+0x0", []point{{0, 1000, false}}},
	} {
		got, err := expandValues(tc.in)
		if err != nil {
			t.Errorf("expandValues(%q): %v", tc.in, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("expandValues(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if _, err := expandValues("1+x3"); err == nil {
		t.Error("expandValues(1+x3) succeeded, want an error")
	}
}

func TestParseSeries(t *testing.T) {
	got, err := parseSeries(`up{job="a",path="/x\"y"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"__name__": "up", "job": "a", "path": `/x"y`}
	if labelString(got) != labelString(want) {
		t.Errorf("parseSeries = %s, want %s", labelString(got), labelString(want))
	}
	ms, err := alertsMatchers(`count(ALERTS{alertname=~"A|B",alertstate="firing",node="n"}) or vector(0)`)
	if err != nil {
		t.Fatal(err)
	}
	if !matchAll(ms, map[string]string{"alertname": "B", "alertstate": "firing", "node": "n"}) ||
		matchAll(ms, map[string]string{"alertname": "AB", "alertstate": "firing", "node": "n"}) {
		t.Errorf("matchers %v match wrongly", ms)
	}
}
