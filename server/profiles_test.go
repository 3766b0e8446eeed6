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
