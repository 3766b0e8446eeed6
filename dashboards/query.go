package dashboards

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Query is one PromQL expression of a dashboard: a panel target, an
// annotation or a variable's label_values query (its inner selector).
type Query struct {
	// Where names it for error messages: "<uid> / <panel title> / <refId>".
	Where string
	Expr  string
	// Variable is true for a variable's query, whose result is label
	// values rather than samples.
	Variable bool
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// Queries lists every PromQL expression of d, in a fixed order.
func Queries(d Dashboard) ([]Query, error) {
	var qs []Query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(v.Query)
		if m == nil {
			return nil, fmt.Errorf("%s: variable %s: query %q is not label_values(selector, label)", d.UID, v.Name, v.Query)
		}
		qs = append(qs, Query{Where: d.UID + " / variable " + v.Name, Expr: m[1], Variable: true})
	}
	for _, a := range d.Annotations.List {
		if a.Target != nil {
			qs = append(qs, Query{Where: d.UID + " / annotation " + a.Name, Expr: a.Target.Expr})
		}
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Where: d.UID + " / " + p.Title + " / " + t.RefID, Expr: t.Expr})
		}
	}
	return qs, nil
}

// Substitute replaces Grafana's variables in expr with the values in vars
// (names without the $), in both the $name and ${name} forms; longer names
// first, so that $__rate_interval is not taken for $__rate.
func Substitute(expr string, vars map[string]string) string {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return len(names[i]) > len(names[j]) || len(names[i]) == len(names[j]) && names[i] < names[j]
	})
	for _, n := range names {
		expr = strings.ReplaceAll(expr, "${"+n+"}", vars[n])
		expr = strings.ReplaceAll(expr, "$"+n, vars[n])
	}
	return expr
}

// promqlKeywords are identifiers of PromQL that are not metric names.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

// aggregations are PromQL's aggregation operators, which may be followed by
// "by (...)" or "without (...)" before their "(".
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// MetricNames returns the metric names an expression selects, in order of
// first appearance. It is a tokenizer, not a parser: it skips strings, label
// matchers in braces, ranges in brackets, Grafana variables, numbers and
// durations, keywords and the label lists after them, and identifiers
// followed by "(" (functions and aggregations); what is left is a metric.
func MetricNames(expr string) []string {
	var names []string
	seen := map[string]bool{}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipTo := func(i int, close byte) int {
		for i < len(expr) && expr[i] != close {
			if expr[i] == '"' || expr[i] == '\'' {
				q := expr[i]
				for i++; i < len(expr) && expr[i] != q; i++ {
					if expr[i] == '\\' {
						i++
					}
				}
			}
			i++
		}
		return i
	}
	nextNonSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\n' || expr[i] == '\t') {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			q := c
			for i++; i < len(expr) && expr[i] != q; i++ {
				if expr[i] == '\\' && q != '`' {
					i++
				}
			}
			i++
		case c == '{':
			i = skipTo(i+1, '}') + 1
		case c == '[':
			i = skipTo(i+1, ']') + 1
		case c == '$':
			i++
			if i < len(expr) && expr[i] == '{' {
				i = skipTo(i, '}') + 1
			}
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := nextNonSpace(j)
			switch {
			case labelListKeywords[word] && k < len(expr) && expr[k] == '(':
				j = skipTo(k, ')') + 1
			case promqlKeywords[word], aggregations[word]:
			case k < len(expr) && expr[k] == '(':
				// a function or aggregation
			default:
				if !seen[word] {
					seen[word] = true
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	return names
}
