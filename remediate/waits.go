package remediate

import (
	"sort"
	"sync"
	"time"
)

// Waits lists the work that waits, by node: drains while leakguard is
// paused or in dry-run, or while the policy has no drain for their alert
// (Engine.WaitingDrains, /readyz). The engine keeps one (Env.Waits).
type Waits struct {
	mu sync.Mutex
	m  map[string]Wait
}

// Wait is one waiting drain: its alert, why it waits, its deadline.
type Wait struct {
	Alert, Why string
	Deadline   time.Time
	// scanned: Scanned listed it: drain's Resume found it (a record whose replica stopped),
	// not a drainer of this process.
	scanned bool
}

// Set lists node's work as waiting.
func (w *Waits) Set(node string, dw Wait) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]Wait{}
	}
	w.m[node] = dw
}

// Clear drops node's entry, if it is of the kind scanned says.
func (w *Waits) Clear(node string, scanned bool) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if dw, ok := w.m[node]; ok && dw.scanned == scanned {
		delete(w.m, node)
	}
}

// Scanned makes found the entries that drain's Resume found; a drainer's
// own entry stays. It returns the nodes whose entry is new or changed.
func (w *Waits) Scanned(found map[string]Wait) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]Wait{}
	}
	for node, dw := range w.m {
		if _, ok := found[node]; dw.scanned && !ok {
			delete(w.m, node)
		}
	}
	var changed []string
	for node, dw := range found {
		old, ok := w.m[node]
		if ok && !old.scanned {
			continue
		}
		dw.scanned = true
		if !ok || old != dw {
			changed = append(changed, node)
		}
		w.m[node] = dw
	}
	sort.Strings(changed)
	return changed
}
