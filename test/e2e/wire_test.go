package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// request is one request a client sent and the status it got.
type request struct {
	Method, Path string
	Status       int
}

func (r request) String() string { return fmt.Sprintf("%s %s -> %d", r.Method, r.Path, r.Status) }

// wire records every request of a client and can hold its first write.
type wire struct {
	next http.RoundTripper
	// beforeFirstWrite, when set, runs once, before the first request
	// that is not a GET (and that holdsWrite picks, when set) goes out.
	beforeFirstWrite func() error
	holdsWrite       func(*http.Request) bool
	once             sync.Once
	onceErr          error

	mu       sync.Mutex
	requests []request
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && w.beforeFirstWrite != nil && (w.holdsWrite == nil || w.holdsWrite(req)) {
		w.once.Do(func() { w.onceErr = w.beforeFirstWrite() })
		if w.onceErr != nil {
			return nil, w.onceErr
		}
	}
	resp, err := w.next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	w.mu.Lock()
	w.requests = append(w.requests, request{req.Method, req.URL.Path, status})
	w.mu.Unlock()
	return resp, err
}

// writes returns the requests that were not GETs.
func (w *wire) writes() []request {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []request
	for _, r := range w.requests {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

// recordedClient is a leakguard client whose requests w records.
func recordedClient(t *testing.T, w *wire) kubernetes.Interface {
	t.Helper()
	needLab(t)
	cfg := rest.CopyConfig(leakguardConfig)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		w.next = rt
		return w
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// barrier lets n parties through together, or fails them all after
// timeout.
type barrier struct {
	mu      sync.Mutex
	waiting int
	release chan struct{}
	timeout time.Duration
}

func newBarrier(n int, timeout time.Duration) *barrier {
	return &barrier{waiting: n, release: make(chan struct{}), timeout: timeout}
}

func (b *barrier) wait() error {
	b.mu.Lock()
	b.waiting--
	if b.waiting == 0 {
		close(b.release)
	}
	b.mu.Unlock()
	select {
	case <-b.release:
		return nil
	case <-time.After(b.timeout):
		return fmt.Errorf("barrier: the other parties did not arrive within %s", b.timeout)
	}
}
