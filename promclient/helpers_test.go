package promclient

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// vectorAnswer is the Prometheus API's answer to an instant query of
// vector(42).
const vectorAnswer = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"42"]}]}}`

// fakeProm is a Prometheus HTTP API on loopback that records the
// requests it gets and answers vector(42), or status with body when
// status is set.
type fakeProm struct {
	mu     sync.Mutex
	got    []http.Header
	status int
	body   string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	h := r.Header.Clone()
	h.Set("X-Test-Path", r.URL.Path)
	h.Set("X-Test-Host", r.Host)
	f.got = append(f.got, h)
	status, body := f.status, f.body
	f.mu.Unlock()
	if status != 0 {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(vectorAnswer))
}

// last is the last request's header; nil before any.
func (f *fakeProm) last() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return nil
	}
	return f.got[len(f.got)-1]
}

// requests is how many requests came.
func (f *fakeProm) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// query42 runs vector(42) through c and wants 42.
func query42(t *testing.T, c *Client) {
	t.Helper()
	if err := tryQuery42(c); err != nil {
		t.Fatal(err)
	}
}

// tryQuery42 runs vector(42) through c and says whether 42 came back.
func tryQuery42(c *Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, _, _, err := c.Query(ctx, "vector(42)", time.Now())
	if err != nil {
		return err
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 || vec[0].Value != 42 {
		return &unexpected{v}
	}
	return nil
}

type unexpected struct{ v model.Value }

func (u *unexpected) Error() string { return "Query(vector(42)) = " + u.v.String() + ", want 42" }
