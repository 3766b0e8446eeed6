package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/server"
)

// serve with --profile-dir serves the stored profiles, by name, to a
// client with the bearer token, and to nobody without it.
func TestServeProfiles(t *testing.T) {
	dir := t.TempDir()
	store, err := profileFlags{dir: dir, maxBytes: 1 << 20, maxAge: time.Hour}.store()
	if err != nil {
		t.Fatal(err)
	}
	name, err := store.Save([]string{"shop-web", "heap"}, time.Now(), []byte("\x1f\x8bHEAP"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SaveRecord(profile.Record{Profile: name, Kind: "heap", Text: "heap summary missing: not a pprof profile", Missing: "not a pprof profile"}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry()
	policy, err := loadPolicy("", reg)
	if err != nil {
		t.Fatal(err)
	}
	_, h, err := buildServe(serveDeps{
		flags:  serveFlags{server: server.Config{BearerTokenFile: tokenFile}},
		policy: policy, client: fake.NewClientset(), querier: &testQuerier{}, logger: slog.New(slog.DiscardHandler), registry: reg,
		profiles: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/profiles", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /profiles without the token = %d, want 401", rec.Code)
	}
	rec := get("/profiles", "tok")
	var list struct {
		Profiles []struct {
			Name, URL string
			Summary   *profile.Record
		} `json:"profiles"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Profiles) != 1 || list.Profiles[0].Name != name {
		t.Fatalf("GET /profiles = %d %s, want %s", rec.Code, rec.Body, name)
	}
	// The profile's summary (here: why it is missing) comes with it; the
	// record beside it is not listed as a profile.
	if sum := list.Profiles[0].Summary; sum == nil || sum.Profile != name || sum.Missing != "not a pprof profile" {
		t.Errorf("GET /profiles: summary %+v, want the record of %s", sum, name)
	}
	if rec := get(list.Profiles[0].URL, "tok"); rec.Code != http.StatusOK || rec.Body.String() != "\x1f\x8bHEAP" {
		t.Errorf("GET %s = %d %q", list.Profiles[0].URL, rec.Code, rec.Body)
	}
	for _, bad := range []string{"/profiles/..%2Ftoken", "/profiles/missing.pb.gz"} {
		if rec := get(bad, "tok"); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", bad, rec.Code)
		}
	}
}

// TestProfileStoreReplica: the store serve opens names this replica for
// profile's Event: $POD_NAME (the Deployment's downward API), else the host
// name.
func TestProfileStoreReplica(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("os.Hostname() = %q, %v", host, err)
	}
	for _, tc := range []struct{ name, env, want string }{
		{"POD_NAME", "leakguard-serve-6d9f-abcde", "leakguard-serve-6d9f-abcde"},
		{"host name", "", host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAME", tc.env)
			store, err := profileFlags{dir: t.TempDir(), maxBytes: 1 << 20, maxAge: time.Hour}.store()
			if err != nil {
				t.Fatal(err)
			}
			if store.Replica != tc.want {
				t.Errorf("Replica = %q, want %q", store.Replica, tc.want)
			}
		})
	}
}

// The default growthAfter, with the default fetch timeout and the time
// kept for the remediators after profile, fits a delivery's default
// deadline (--process-timeout) with 30 s to spare for the check, the
// claims and the first fetches: profile with its defaults takes its
// second heap profile within a delivery.
func TestProfileGrowthFitsTheDeliveryDeadline(t *testing.T) {
	need := profile.DefaultGrowthAfter + profile.DefaultProfileFetchTimeout + profile.GrowthReserve
	if spare := server.DefaultProcessTimeout - need; spare < 30*time.Second {
		t.Errorf("growthAfter %s + timeout %s + %s leave %s of --process-timeout's %s, want at least 30s", profile.DefaultGrowthAfter, profile.DefaultProfileFetchTimeout, profile.GrowthReserve, spare, server.DefaultProcessTimeout)
	}
}
