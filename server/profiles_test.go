package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// memProfiles holds profiles in memory.
type memProfiles map[string][]byte

var profileTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func (m memProfiles) ListProfiles() ([]ProfileInfo, error) {
	var out []ProfileInfo
	for n, b := range m {
		out = append(out, ProfileInfo{Name: n, Size: int64(len(b)), ModTime: profileTime})
	}
	return out, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (m memProfiles) OpenProfile(name string) (io.ReadSeekCloser, time.Time, error) {
	b, ok := m[name]
	if !ok {
		return nil, time.Time{}, ErrNoProfile
	}
	return nopCloser{bytes.NewReader(b)}, profileTime, nil
}

func get(h http.Handler, path string, auth bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if auth {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	return serve(h, req)
}

func TestProfiles(t *testing.T) {
	cfg := bearerConfig(t)
	cfg.Profiles = memProfiles{"shop-web_heap_20261123t120000.000z.pb.gz": []byte("HEAP")}
	h := newTestHandler(t, cfg, &recordingProcessor{})

	for _, path := range []string{"/profiles", "/profiles/shop-web_heap_20261123t120000.000z.pb.gz"} {
		if rec := get(h, path, false); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials = %d, want 401", path, rec.Code)
		}
	}
	rec := get(h, "/profiles", true)
	var list struct {
		Profiles []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
			URL  string `json:"url"`
		} `json:"profiles"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Profiles) != 1 ||
		list.Profiles[0].Size != 4 || list.Profiles[0].URL != "/profiles/shop-web_heap_20261123t120000.000z.pb.gz" {
		t.Fatalf("GET /profiles = %d %s", rec.Code, rec.Body)
	}
	rec = get(h, list.Profiles[0].URL, true)
	if rec.Code != http.StatusOK || rec.Body.String() != "HEAP" || rec.Header().Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET %s = %d %q (%s)", list.Profiles[0].URL, rec.Code, rec.Body, rec.Header().Get("Content-Type"))
	}
	if rec := get(h, "/profiles/nope.pb.gz", true); rec.Code != http.StatusNotFound {
		t.Errorf("GET an unknown profile = %d, want 404", rec.Code)
	}
}

// Without authentication the profiles are not served at all.
func TestProfilesNeedAuthentication(t *testing.T) {
	reg := prometheusRegistry()
	h := newTestHandler(t, Config{InsecureNoAuth: true, Registerer: reg, Gatherer: reg, Profiles: memProfiles{"a.pb.gz": []byte("x")}}, &recordingProcessor{})
	if rec := get(h, "/profiles", false); rec.Code != http.StatusNotFound {
		t.Errorf("GET /profiles with --insecure-no-auth = %d, want 404", rec.Code)
	}
}

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// summarized holds one profile with a summary and one without.
type summarized struct{ memProfiles }

func (s summarized) ListProfiles() ([]ProfileInfo, error) {
	return []ProfileInfo{
		{Name: "shop-web_heap_20261123t120000.000z.pb.gz", Size: 4, ModTime: profileTime, Summary: json.RawMessage(`{"text":"heap in use 9.00MiB: main.leak 9.00MiB (98%)","summary":{"kind":"heap"}}`)},
		{Name: "shop-web_goroutine_20261123t120000.000z.pb.gz", Size: 4, ModTime: profileTime},
	}, nil
}

// GET /profiles gives each profile's summary, as the store keeps it, and
// leaves the field out for a profile without one; the other fields are
// as before.
func TestProfilesWithSummaries(t *testing.T) {
	cfg := bearerConfig(t)
	cfg.Profiles = summarized{}
	h := newTestHandler(t, cfg, &recordingProcessor{})
	rec := get(h, "/profiles", true)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /profiles = %d %s", rec.Code, rec.Body)
	}
	var list struct {
		Profiles []map[string]json.RawMessage `json:"profiles"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Profiles) != 2 {
		t.Fatalf("GET /profiles = %s (%v)", rec.Body, err)
	}
	var sum struct {
		Text    string `json:"text"`
		Summary struct {
			Kind string `json:"kind"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(list.Profiles[0]["summary"], &sum); err != nil || sum.Text != "heap in use 9.00MiB: main.leak 9.00MiB (98%)" || sum.Summary.Kind != "heap" {
		t.Errorf("first profile's summary = %s (%v)", list.Profiles[0]["summary"], err)
	}
	if _, ok := list.Profiles[1]["summary"]; ok {
		t.Errorf("a profile without a summary lists one: %s", list.Profiles[1]["summary"])
	}
	for _, p := range list.Profiles {
		for _, k := range []string{"name", "size", "modTime", "url"} {
			if _, ok := p[k]; !ok {
				t.Errorf("profile %s has no %q", p["name"], k)
			}
		}
	}
}
