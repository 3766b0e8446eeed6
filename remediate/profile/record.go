package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate/profile/summary"
)

// recordSuffix ends the name of the record the store keeps beside each
// profile: <profile name without .pb.gz>.summary.json.
const recordSuffix = ".summary.json"

// recordNameRE is the shape of a record's file name; List never shows
// one, as it does not end in .pb.gz.
var recordNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,200}\.summary\.json$`)

// maxRecordBytes bounds a record read back from the store: a summary is
// a few KiB (DefaultTop sites and stacks of DefaultFrames frames).
const maxRecordBytes = 1 << 20

// Record is what the store keeps beside a profile: its summary, or why
// there is none, what it was compared with, and (the apiserver's heap)
// the object kinds that dominated. GET /profiles serves it with the
// profile.
type Record struct {
	// Profile is the profile's file name.
	Profile string `json:"profile"`
	// Kind is the profile's kind as fetched: heap, goroutine or allocs.
	Kind string `json:"kind"`
	// Process identifies the process profiled: the pod's UID and its
	// containers' restart count ("" when unknown); a stored profile is
	// the base of a later one only when both name the same process.
	Process string `json:"process,omitempty"`
	// TakenAt is when the profile was fetched.
	TakenAt time.Time `json:"takenAt"`
	// Text is the short summary that the Event and the annotation carry.
	Text string `json:"text"`
	// Summary is the profile's summary; nil when it is missing.
	Summary *summary.Summary `json:"summary,omitempty"`
	// Missing says why Summary is nil (the profile does not parse, is of
	// a kind not summarized, is too large).
	Missing string `json:"missing,omitempty"`
	// Base is the file name of the earlier heap profile of the same
	// process that Summary's growth is computed against.
	Base string `json:"base,omitempty"`
	// NoGrowth says why a heap profile's summary has no growth.
	NoGrowth string `json:"noGrowth,omitempty"`
	// Objects are the object kinds with the most objects, for the
	// apiserver's heap profile.
	Objects []ObjectCount `json:"objects,omitempty"`
	// NoObjects says why an apiserver heap profile's record has no
	// Objects.
	NoObjects string `json:"noObjects,omitempty"`
}

// ObjectCount is the number of objects of one resource the apiserver
// holds.
type ObjectCount struct {
	Resource string `json:"resource"`
	Count    int64  `json:"count"`
}

// recordName is the name of the record of profile name.
func recordName(name string) string {
	return strings.TrimSuffix(name, ".pb.gz") + recordSuffix
}

// SaveRecord writes rec beside the profile it describes, atomically as
// the profiles are written (a temporary file renamed into place), so a
// reader never sees half a record. The retention removes it with its
// profile.
func (s *Store) SaveRecord(rec Record) error {
	if !profileNameRE.MatchString(rec.Profile) {
		return fmt.Errorf("record of %q: not a profile name", rec.Profile)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("record of %s: %w", rec.Profile, err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("record of %s: %w", rec.Profile, err)
	}
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record of %s: %w", rec.Profile, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp.Name(), filepath.Join(s.Dir, recordName(rec.Profile))); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record of %s: %w", rec.Profile, err)
	}
	return nil
}

// ErrNoRecord is returned by ReadRecord for a profile without a record
// (stored before records were kept, or its process died before writing
// one).
var ErrNoRecord = errors.New("no summary recorded for the profile")

// ReadRecordJSON returns the record of the stored profile name as JSON,
// as stored, at most maxRecordBytes of it.
func (s *Store) ReadRecordJSON(name string) ([]byte, error) {
	if !profileNameRE.MatchString(name) {
		return nil, ErrProfileNotFound
	}
	f, err := os.Open(filepath.Join(s.Dir, recordName(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoRecord
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecordBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRecordBytes {
		return nil, fmt.Errorf("record of %s: over %d bytes", name, maxRecordBytes)
	}
	return data, nil
}

// ReadRecord returns the record of the stored profile name.
func (s *Store) ReadRecord(name string) (*Record, error) {
	data, err := s.ReadRecordJSON(name)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("record of %s: %w", name, err)
	}
	return &rec, nil
}

// readProfile reads the stored profile name, at most limit bytes.
func (s *Store) readProfile(name string, limit int64) ([]byte, error) {
	f, err := s.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w of %d bytes", errTooLarge, limit)
	}
	return data, nil
}

// removeOrphanRecords removes the records whose profile is gone (removed
// by the retention, or by hand). Called with mu held.
func (s *Store) removeOrphanRecords() {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !recordNameRE.MatchString(n) {
			continue
		}
		profile := strings.TrimSuffix(n, recordSuffix) + ".pb.gz"
		if _, err := os.Stat(filepath.Join(s.Dir, profile)); errors.Is(err, os.ErrNotExist) {
			_ = os.Remove(filepath.Join(s.Dir, n))
		}
	}
}

// recordSize is the size of the record beside profile name, 0 without one.
func (s *Store) recordSize(name string) int64 {
	info, err := os.Stat(filepath.Join(s.Dir, recordName(name)))
	if err != nil {
		return 0
	}
	return info.Size()
}

// findBase returns the record of the newest stored heap profile of
// subject whose record names rec's process, taken between minBaseAge and
// maxBaseAge before rec, with a summary (it parsed); nil when there is
// none. An unknown process has no base: a profile of an earlier pod of
// the workload, or of the container before it restarted, is another
// process, whose whole heap would show as growth.
func (s *Store) findBase(subject string, rec *Record) *Record {
	if rec.Process == "" {
		return nil
	}
	files, err := s.List()
	if err != nil {
		return nil
	}
	prefix := sanitize(subject) + "_heap_"
	for _, f := range files { // newest first
		if f.Name == rec.Profile || !strings.HasPrefix(f.Name, prefix) {
			continue
		}
		r, err := s.ReadRecord(f.Name)
		if err != nil || r.Kind != "heap" || r.Process != rec.Process || r.Summary == nil || r.Profile != f.Name {
			continue
		}
		if age := rec.TakenAt.Sub(r.TakenAt); age < minBaseAge || age > maxBaseAge {
			continue
		}
		return r
	}
	return nil
}

// acquireSummary takes the store's one summary slot, waiting as long as
// ctx allows; the returned func gives it back.
func (s *Store) acquireSummary(ctx context.Context) (func(), error) {
	s.summaryOnce.Do(func() { s.summarySlot = make(chan struct{}, 1) })
	select {
	case s.summarySlot <- struct{}{}:
		return func() { <-s.summarySlot }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the summary slot: %w", context.Cause(ctx))
	}
}
