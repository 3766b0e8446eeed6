package lab

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate/profile/summary"
)

// TestProcessLeak: the lab's leak refuses to start at the runtime's
// default profile rate and with negative options; at MemProfileRate it
// grows to its bound and no further, and two heap profiles of this
// process served by PprofHandler, one before and one after, name
// leakForTheLab first in what grew and among the top in-use functions;
// Stop gives everything back.
func TestProcessLeak(t *testing.T) {
	runtime.MemProfileRate = 512 << 10
	if _, err := StartProcessLeak(ProcessLeakOptions{}); err == nil {
		t.Fatal("started at the runtime's default profile rate")
	}
	runtime.MemProfileRate = MemProfileRate
	if _, err := StartProcessLeak(ProcessLeakOptions{Chunk: -1}); err == nil {
		t.Fatal("started with a negative chunk")
	}

	srv := httptest.NewServer(PprofHandler())
	defer srv.Close()
	heap := func() []byte {
		t.Helper()
		runtime.GC() // the profile is as of the last collection
		resp, err := srv.Client().Get(srv.URL + "/debug/pprof/heap")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /debug/pprof/heap: %s, %v", resp.Status, err)
		}
		return b
	}
	base := heap()

	const chunk, bound = 64 << 10, 4 << 20
	l, err := StartProcessLeak(ProcessLeakOptions{Chunk: chunk, Every: 5 * time.Millisecond, MaxBytes: bound})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for l.Bytes() < bound {
		select {
		case <-ctx.Done():
			t.Fatalf("the leak holds %d bytes after 30s, want %d", l.Bytes(), bound)
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Past the bound it holds still: a few more ticks add nothing.
	for i := 0; i < 5; i++ {
		time.Sleep(5 * time.Millisecond)
		if got := l.Bytes(); got != bound {
			t.Fatalf("the leak holds %d bytes, past its bound %d", got, bound)
		}
	}

	s, err := summary.Summarize(heap(), base, summary.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Growth == nil || len(s.Growth.Grew) == 0 || s.Growth.Grew[0].Function != LeakFunction {
		t.Fatalf("what grew does not begin with %s:\n%s", LeakFunction, s)
	}
	// The rate samples every chunk: the estimate is near the truth.
	if g := s.Growth.Grew[0].Flat; g < bound*3/4 || g > bound*5/4 {
		t.Errorf("%s grew %d bytes, want about %d:\n%s", LeakFunction, g, bound, s)
	}
	top := false
	for _, site := range s.Top {
		top = top || site.Function == LeakFunction
	}
	if !top {
		t.Errorf("%s is not among the top in-use functions:\n%s", LeakFunction, s)
	}

	l.Stop()
	l.Stop()
	if got := l.Bytes(); got != 0 {
		t.Errorf("stopped, the leak still holds %d bytes", got)
	}
}
