package check

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// maxSampleAge is how old a sample may be, relative to now, to count.
// Prometheus answers an instant query with samples stamped at the query
// time, so only a stale or replayed answer is older.
const maxSampleAge = 5 * time.Minute

// sampleValue reduces an instant-query answer to one value: the largest
// non-NaN sample not older than maxSampleAge. A scalar answer counts as one
// sample.
func sampleValue(answer model.Value, now time.Time) (float64, error) {
	var samples []struct {
		v  float64
		ts model.Time
	}
	switch a := answer.(type) {
	case nil:
		return 0, fmt.Errorf("empty answer: %w", remediate.ErrNoData)
	case model.Vector:
		for _, s := range a {
			samples = append(samples, struct {
				v  float64
				ts model.Time
			}{float64(s.Value), s.Timestamp})
		}
	case *model.Scalar:
		samples = append(samples, struct {
			v  float64
			ts model.Time
		}{float64(a.Value), a.Timestamp})
	default:
		return 0, fmt.Errorf("answer of type %s, want an instant vector", answer.Type())
	}
	if len(samples) == 0 {
		return 0, fmt.Errorf("no series: %w", remediate.ErrNoData)
	}
	best, found := math.Inf(-1), false
	for _, s := range samples {
		if math.IsNaN(s.v) || now.Sub(s.ts.Time()) > maxSampleAge {
			continue
		}
		if s.v > best {
			best, found = s.v, true
		}
	}
	if !found {
		return 0, fmt.Errorf("%d samples, none usable: %w", len(samples), remediate.ErrNoData)
	}
	return best, nil
}

// selector renders metric{l1="v1",...} with the alert's values of labels,
// each value quoted as a PromQL string literal (PromQL string literals
// follow Go's quoting rules). A missing or empty label is an error.
func selector(metric string, alert template.Alert, labels ...string) (string, error) {
	return scopedSelector(metric, alert, nil, labels...)
}

// scopedSelector is selector with a matcher for each of extra after the
// alert's labels, in the order of their names.
func scopedSelector(metric string, alert template.Alert, extra map[string]string, labels ...string) (string, error) {
	var b strings.Builder
	b.WriteString(metric)
	b.WriteByte('{')
	n := 0
	matcher := func(l, v string) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString(l)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
	}
	for _, l := range labels {
		v := alert.Labels[l]
		if v == "" {
			return "", fmt.Errorf("alert %s has no %q label", alert.Labels["alertname"], l)
		}
		matcher(l, v)
	}
	names := make([]string, 0, len(extra))
	for l := range extra {
		if slices.Contains(labels, l) {
			return "", fmt.Errorf("label %q is both the alert's and the scope's", l)
		}
		names = append(names, l)
	}
	sort.Strings(names)
	for _, l := range names {
		matcher(l, extra[l])
	}
	b.WriteByte('}')
	return b.String(), nil
}

// thresholdCheck confirms a finding when the recording rule's value for the
// alert's labels, times scale, is above threshold. The working-set-slope,
// orphan-cgroups and apiserver-memory checks are thresholdChecks.
type thresholdCheck struct {
	name      string
	metric    string
	labels    []string
	threshold float64
	scale     float64
	format    func(float64) string
}

func (c *thresholdCheck) Name() string { return c.name }

// Query takes the max over the matching series, so that a lingering series
// of a previous container or a second scrape target yields one value.
func (c *thresholdCheck) Query(alert template.Alert) (string, error) {
	return c.ScopedQuery(alert, nil)
}

// ScopedQuery is Query confined to the series that carry extra's labels.
func (c *thresholdCheck) ScopedQuery(alert template.Alert, extra map[string]string) (string, error) {
	sel, err := scopedSelector(c.metric, alert, extra, c.labels...)
	if err != nil {
		return "", err
	}
	return "max(" + sel + ")", nil
}

var _ remediate.ScopedCheck = (*thresholdCheck)(nil)

func (c *thresholdCheck) Evaluate(_ template.Alert, answer model.Value, now time.Time) (remediate.Result, error) {
	raw, err := sampleValue(answer, now)
	if err != nil {
		return remediate.Result{}, fmt.Errorf("check %s: %w", c.name, err)
	}
	v := raw * c.scale
	r := remediate.Result{Confirmed: v > c.threshold, Value: v, HasValue: true}
	op := ">"
	if !r.Confirmed {
		op = "<="
	}
	r.Summary = fmt.Sprintf("%s %s %s", c.format(v), op, c.format(c.threshold))
	return r, nil
}

// formatBytes renders a byte count with a binary unit.
func formatBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
