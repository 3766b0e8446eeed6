package server

import (
	"bytes"
	"errors"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/alertmanager/template"
)

// summary is what the fixture test compares of a decoded payload.
type summary struct {
	Receiver, Status string
	Alerts           int
	Firing, Resolved int
	Truncated        uint64
	Alertnames       []string
	GroupKeyHas      string
}

func summarize(m *Message) summary {
	names := map[string]bool{}
	for _, a := range m.Alerts {
		names[a.Labels["alertname"]] = true
	}
	var list []string
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	return summary{
		Receiver: m.Receiver, Status: m.Status, Alerts: len(m.Alerts),
		Firing: len(m.Alerts.Firing()), Resolved: len(m.Alerts.Resolved()),
		Truncated: m.TruncatedAlerts, Alertnames: list,
	}
}

// TestDecodeMessageFixtures decodes every payload the real Alertmanager 0.25
// sent (tools/capture-alertmanager) and checks what it holds.
func TestDecodeMessageFixtures(t *testing.T) {
	tests := []struct {
		file string
		want summary
	}{
		{"alertmanager-0.25-firing.json", summary{Receiver: "leakguard", Status: "firing", Alerts: 3, Firing: 3, Alertnames: []string{"ContainerMemoryLeak"}}},
		{"alertmanager-0.25-mixed.json", summary{Receiver: "leakguard", Status: "firing", Alerts: 3, Firing: 2, Resolved: 1, Alertnames: []string{"ContainerMemoryLeak"}}},
		{"alertmanager-0.25-resolved.json", summary{Receiver: "leakguard", Status: "resolved", Alerts: 2, Resolved: 2, Alertnames: []string{"ContainerMemoryLeak"}}},
		{"alertmanager-0.25-node-firing.json", summary{Receiver: "leakguard", Status: "firing", Alerts: 2, Firing: 2, Alertnames: []string{"NodeOrphanCgroups"}}},
		{"alertmanager-0.25-apiserver-firing.json", summary{Receiver: "leakguard", Status: "firing", Alerts: 1, Firing: 1, Alertnames: []string{"KubeAPIServerMemoryHigh"}}},
		{"alertmanager-0.25-firing-100.json", summary{Receiver: "leakguard", Status: "firing", Alerts: 100, Firing: 100, Alertnames: []string{"ContainerMemoryLeak"}}},
		{"alertmanager-0.25-truncated.json", summary{Receiver: "leakguard-truncated", Status: "firing", Alerts: 2, Firing: 2, Truncated: 3, Alertnames: []string{"ContainerMemoryNearLimit"}}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[filepath.Join("testdata", tt.file)] = true
		t.Run(tt.file, func(t *testing.T) {
			msg, err := DecodeMessage(bytes.NewReader(readFixture(t, tt.file)))
			if err != nil {
				t.Fatalf("DecodeMessage(%s) = %v", tt.file, err)
			}
			if diff := cmp.Diff(tt.want, summarize(msg)); diff != "" {
				t.Errorf("DecodeMessage(%s) summary mismatch (-want +got):\n%s", tt.file, diff)
			}
			if msg.Version != "4" || msg.GroupKey == "" || msg.ExternalURL == "" {
				t.Errorf("DecodeMessage(%s) = version %q, groupKey %q, externalURL %q, want 4 and both set", tt.file, msg.Version, msg.GroupKey, msg.ExternalURL)
			}
			for i, a := range msg.Alerts {
				if a.Fingerprint == "" || a.StartsAt.IsZero() || a.Annotations["runbook_url"] == "" {
					t.Errorf("DecodeMessage(%s) alert %d = fingerprint %q, startsAt %v, runbook_url %q, want all set", tt.file, i, a.Fingerprint, a.StartsAt, a.Annotations["runbook_url"])
				}
			}
		})
	}
	for _, p := range fixturePaths(t) {
		if !seen[p] {
			t.Errorf("fixture %s has no case in TestDecodeMessageFixtures", p)
		}
	}
}

func TestDecodeMessageValid(t *testing.T) {
	startsAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want *Message
	}{
		{
			name: "minimal",
			in:   `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`,
			want: &Message{Version: "4", Data: &template.Data{Status: "firing", Alerts: template.Alerts{{Status: "firing", Labels: template.KV{"alertname": "A"}}}}},
		},
		{
			name: "unknown fields are ignored and white space may follow",
			in:   "{\"version\":\"4\",\"status\":\"resolved\",\"future\":{\"x\":[1]},\"groupKey\":\"g\",\"truncatedAlerts\":7,\"alerts\":[{\"status\":\"resolved\",\"labels\":{\"alertname\":\"B\"},\"startsAt\":\"2026-01-02T03:04:05Z\",\"new\":true}]}\n\t \n",
			want: &Message{Version: "4", GroupKey: "g", TruncatedAlerts: 7, Data: &template.Data{Status: "resolved", Alerts: template.Alerts{{Status: "resolved", Labels: template.KV{"alertname": "B"}, StartsAt: startsAt}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMessage(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("DecodeMessage(%s) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(template.Data{})); diff != "" {
				t.Errorf("DecodeMessage(%s) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	alert := func(status, labels string) string {
		return `{"status":"` + status + `","labels":` + labels + `}`
	}
	payload := func(version, status string, alerts ...string) string {
		return `{"version":"` + version + `","status":"` + status + `","alerts":[` + strings.Join(alerts, ",") + `]}`
	}
	ok := alert("firing", `{"alertname":"A"}`)
	var many []string
	for range 20 {
		many = append(many, alert("firing", `{}`))
	}
	tests := []struct {
		name    string
		in      string
		wantErr []string // substrings of the error
	}{
		{"empty body", ``, []string{"empty body"}},
		{"only white space", " \n", []string{"empty body"}},
		{"not JSON", `alertname=A`, []string{"invalid JSON at byte 1"}},
		{"truncated JSON", `{"version":"4","alerts":[`, []string{"truncated JSON"}},
		{"trailing object", payload("4", "firing", ok) + `{}`, []string{"unexpected data after the JSON object"}},
		{"trailing garbage", payload("4", "firing", ok) + `x`, []string{"invalid JSON"}},
		{"null", `null`, []string{`unsupported payload version ""`}},
		{"array", `[]`, []string{"the payload must be an object, not a JSON array"}},
		{"version 3", payload("3", "firing", ok), []string{`unsupported payload version "3", want "4"`}},
		{"version as number", `{"version":4}`, []string{"version must be a string, not a JSON number"}},
		{"no version", `{"status":"firing","alerts":[` + ok + `]}`, []string{`unsupported payload version ""`}},
		{"no alerts field", `{"version":"4","status":"firing"}`, []string{"payload has no alerts"}},
		{"empty alerts", payload("4", "firing"), []string{"payload has no alerts"}},
		{"alerts not an array", `{"version":"4","status":"firing","alerts":{}}`, []string{"alerts must be an array, not a JSON object"}},
		{"payload status unknown", payload("4", "pending", ok), []string{`payload status "pending"`}},
		{"alert without alertname", payload("4", "firing", ok, alert("firing", `{"pod":"x"}`)), []string{"alert 1: labels.alertname is missing or empty"}},
		{"alert with empty alertname", payload("4", "firing", alert("firing", `{"alertname":""}`)), []string{"alert 0: labels.alertname is missing or empty"}},
		{"alert without labels", payload("4", "firing", `{"status":"firing"}`), []string{"alert 0: labels.alertname"}},
		{"null alert", payload("4", "firing", `null`), []string{"alert 0: labels.alertname", `alert 0: status ""`}},
		{"alert status unknown", payload("4", "firing", ok, alert("silenced", `{"alertname":"A"}`)), []string{`alert 1: status "silenced", want "firing" or "resolved"`}},
		{"alertname not a string", payload("4", "firing", alert("firing", `{"alertname":1}`)), []string{"alerts.labels must be a string, not a JSON number"}},
		{"truncatedAlerts negative", `{"version":"4","truncatedAlerts":-1}`, []string{"truncatedAlerts must be an integer, not a JSON number -1"}},
		{"bad startsAt", payload("4", "firing", `{"status":"firing","labels":{"alertname":"A"},"startsAt":"yesterday"}`), []string{"yesterday"}},
		{"problems are bounded", payload("4", "firing", many...), []string{"alert 0:", "alert 4:", "more problems in alerts 5 to 19 not reported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeMessage(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("DecodeMessage(%.80s) = %+v, nil; want an error", tt.in, got)
			}
			if got != nil {
				t.Errorf("DecodeMessage(%.80s) = %+v with an error, want nil", tt.in, got)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("DecodeMessage(%.80s) error = %q, want it to contain %q", tt.in, err, want)
				}
			}
			if tt.name == "problems are bounded" && strings.Contains(err.Error(), "alert 5:") {
				t.Errorf("DecodeMessage(20 bad alerts) error = %q, want at most 5 alerts listed", err)
			}
		})
	}
}

// TestDecodeMessageReadError checks that a read error, such as the body
// limit, is kept for errors.As.
func TestDecodeMessageReadError(t *testing.T) {
	tooLarge := &http.MaxBytesError{Limit: 10}
	_, err := DecodeMessage(errReader{tooLarge})
	var got *http.MaxBytesError
	if !errors.As(err, &got) || got.Limit != 10 {
		t.Errorf("DecodeMessage(reader failing with %v) = %v, want an error wrapping it", tooLarge, err)
	}
}
