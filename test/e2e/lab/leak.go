package lab

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// MemProfileRate is the heap profile's sampling rate (runtime.MemProfileRate)
// a process must have set, at the start of its TestMain, before it starts a
// ProcessLeak: one sample per 4 KiB allocated on average, so that every
// chunk of the leak is in the profile with its stack (the runtime's
// default, 512 KiB, would see a chunk of 64 KiB only now and then). The
// rate must be set before the allocations it is to see: the runtime scales
// every sample by the rate in force when the profile is written.
const MemProfileRate = 4096

// ProcessLeakOptions configure StartProcessLeak; a zero field takes its
// default.
type ProcessLeakOptions struct {
	// Chunk is the size of one allocation (64 KiB).
	Chunk int
	// Every is the time between two allocations (200 ms: 320 KiB/s with
	// the default chunk).
	Every time.Duration
	// MaxBytes is where the leak stops growing and holds what it has
	// (64 MiB: 200 s at the default rate, longer than a test waits for an
	// alert).
	MaxBytes int
}

// ProcessLeak is a real leak in this process, for the lab's workloads that
// serve this process's net/http/pprof (Workload.PprofPort): a goroutine
// allocates a chunk at a steady rate through leakForTheLab and keeps every
// chunk, so that the heap profile's in-use bytes and the growth between two
// profiles of it name that function. It is bounded (MaxBytes) and gives
// everything back when stopped.
type ProcessLeak struct {
	o    ProcessLeakOptions
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	held [][]byte
	size int
}

// LeakFunction is the fully qualified name of the function through which a
// ProcessLeak allocates, as a heap profile names it.
const LeakFunction = "github.com/leakguard/leakguard/test/e2e/lab.leakForTheLab"

// StartProcessLeak starts the leak. It refuses unless the process samples
// its heap at MemProfileRate or finer: a coarser rate leaves the leak's
// chunks out of the profile, and a test would look for them in vain.
func StartProcessLeak(o ProcessLeakOptions) (*ProcessLeak, error) {
	if runtime.MemProfileRate <= 0 || runtime.MemProfileRate > MemProfileRate {
		return nil, fmt.Errorf("lab: runtime.MemProfileRate is %d; set it to lab.MemProfileRate (%d) at the start of TestMain, before the allocations the heap profile is to see", runtime.MemProfileRate, MemProfileRate)
	}
	if o.Chunk < 0 || o.Every < 0 || o.MaxBytes < 0 {
		return nil, errors.New("lab: a process leak's chunk, interval and bound must not be negative")
	}
	if o.Chunk == 0 {
		o.Chunk = 64 << 10
	}
	if o.Every == 0 {
		o.Every = 200 * time.Millisecond
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 64 << 20
	}
	l := &ProcessLeak{o: o, stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l, nil
}

func (l *ProcessLeak) run() {
	defer close(l.done)
	tick := time.NewTicker(l.o.Every)
	defer tick.Stop()
	lastGC := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		l.mu.Lock()
		if l.size+l.o.Chunk <= l.o.MaxBytes {
			l.held = append(l.held, leakForTheLab(l.o.Chunk))
			l.size += l.o.Chunk
		}
		l.mu.Unlock()
		// A heap profile is as of the last finished collection: in a
		// process that allocates little besides the leak, collections
		// are far apart, and two profiles a few seconds apart could be
		// the same. One a second keeps the profile within a second or
		// two of the leak.
		if time.Since(lastGC) >= time.Second {
			runtime.GC()
			lastGC = time.Now()
		}
	}
}

// leakForTheLab allocates n bytes and writes to every page of them, so that
// they are resident; the caller keeps them. It is not inlined, so that the
// heap profile names it as the allocation site.
//
//go:noinline
func leakForTheLab(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b
}

// Bytes is how much the leak holds.
func (l *ProcessLeak) Bytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Stop ends the leak and lets go of what it held; it returns once the
// goroutine has ended. It may be called more than once.
func (l *ProcessLeak) Stop() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	l.held, l.size = nil, 0
	l.mu.Unlock()
}
