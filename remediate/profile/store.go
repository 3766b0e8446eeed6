package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a ProfileStore's retention.
const (
	DefaultProfileMaxBytes = 512 << 20
	DefaultProfileMaxAge   = 7 * 24 * time.Hour
	// DefaultProfileMaxFetches bounds the profile fetches in flight at
	// once, across deliveries.
	DefaultProfileMaxFetches = 2
)

// profileNameRE is the shape of every stored profile's file name; a name
// of another shape is never opened, so no path leaves the directory.
var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,200}\.pb\.gz$`)

// ErrProfileNotFound is returned by ProfileStore.Open for a name that is
// not a stored profile.
var ErrProfileNotFound = errors.New("profile not found")

// ProfileStore keeps heap and goroutine profiles in a directory (a
// volume), bounded by total size and age: the oldest go first.
type Store struct {
	Dir      string
	MaxBytes int64
	MaxAge   time.Duration
	// MaxFetches bounds the fetches streaming into the store at once,
	// across deliveries (0 means DefaultProfileMaxFetches); set it before
	// the first fetch.
	MaxFetches int
	// Replica names the replica whose disk holds the store (serve's pod
	// name), for the outcome of profile, hence its Event: GET /profiles
	// through the Service reaches any replica, so a reader needs to know
	// which one to ask. Empty names none.
	Replica   string
	mu        sync.Mutex
	slotsOnce sync.Once
	slots     chan struct{}
	// waiting counts the fetches waiting for a slot now.
	waiting atomic.Int64
	// summarySlot lets one summary at a time hold profiles in memory.
	summaryOnce sync.Once
	summarySlot chan struct{}
}

// NewProfileStore returns a store in dir, creating it; zero limits take
// the defaults.
func NewStore(dir string, maxBytes int64, maxAge time.Duration) (*Store, error) {
	if dir == "" {
		return nil, errors.New("profile store: no directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("profile store: %w", err)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultProfileMaxBytes
	}
	if maxAge <= 0 {
		maxAge = DefaultProfileMaxAge
	}
	return &Store{Dir: dir, MaxBytes: maxBytes, MaxAge: maxAge}, nil
}

// ProfileFile is one stored profile.
type File struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
}

// sanitize makes s fit a profile file name.
func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "._-")
	if len(out) > 60 {
		out = out[:60]
	}
	if out == "" {
		out = "x"
	}
	return out
}

// Save writes data as a new profile named after its parts and the time,
// then applies the retention (the new file is kept). It returns the
// file's name.
func (s *Store) Save(parts []string, now time.Time, data []byte) (string, error) {
	name, _, err := s.SaveFrom(parts, now, bytes.NewReader(data), 0)
	return name, err
}

// errTooLarge is a profile over the size cap.
var errTooLarge = errors.New("profile over the size cap")

// SaveFrom streams r into a new profile named after its parts and the
// time, then applies the retention (the new file is kept). limit, when
// positive, caps the profile: r is read to at most limit+1 bytes, and a
// profile over limit fails (wrapping errTooLarge) with nothing kept, not
// truncated. The bytes go to a temporary file in the directory, renamed
// into place once complete, so a listing never shows a partial profile.
// It returns the file's name and size.
func (s *Store) SaveFrom(parts []string, now time.Time, r io.Reader, limit int64) (string, int64, error) {
	clean := make([]string, 0, len(parts)+1)
	for _, p := range parts {
		clean = append(clean, sanitize(p))
	}
	clean = append(clean, now.UTC().Format("20060102t150405.000z"))
	name := strings.Join(clean, "_") + ".pb.gz"
	if !profileNameRE.MatchString(name) {
		return "", 0, fmt.Errorf("profile name %q does not fit", name)
	}
	tmp, err := os.CreateTemp(s.Dir, ".tmp-*")
	if err != nil {
		return "", 0, fmt.Errorf("save profile: %w", err)
	}
	src := r
	if limit > 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, werr := io.Copy(tmp, src)
	cerr := tmp.Close()
	if werr == nil && limit > 0 && n > limit {
		// Fails closed: a cut profile does not parse, and the rest is
		// not read at all.
		werr = fmt.Errorf("%w of %d bytes", errTooLarge, limit)
	}
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return "", 0, fmt.Errorf("save profile: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp.Name(), filepath.Join(s.Dir, name)); err != nil {
		_ = os.Remove(tmp.Name())
		return "", 0, fmt.Errorf("save profile: %w", err)
	}
	s.prune(now, name)
	return name, n, nil
}

// FetchesWaiting is the number of fetches waiting now for one of the
// MaxFetches slots.
func (s *Store) FetchesWaiting() int64 { return s.waiting.Load() }

// acquireFetch takes one of the MaxFetches fetch slots, waiting as long
// as ctx allows; the returned func gives it back.
func (s *Store) acquireFetch(ctx context.Context) (func(), error) {
	s.slotsOnce.Do(func() {
		n := s.MaxFetches
		if n <= 0 {
			n = DefaultProfileMaxFetches
		}
		s.slots = make(chan struct{}, n)
	})
	release := func() { <-s.slots }
	select {
	case s.slots <- struct{}{}:
		return release, nil
	default:
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of %d profile fetch slots: %w", cap(s.slots), context.Cause(ctx))
	}
}

// List returns the stored profiles, newest first.
func (s *Store) List() ([]File, error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	var out []File
	for _, e := range entries {
		if !e.Type().IsRegular() || !profileNameRE.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, File{Name: e.Name(), Size: info.Size(), ModTime: info.ModTime().UTC()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ModTime.Equal(out[j].ModTime) {
			return out[i].ModTime.After(out[j].ModTime)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}

// Open opens the stored profile name; a name not of a stored profile's
// shape, or absent, is ErrProfileNotFound.
func (s *Store) Open(name string) (*os.File, error) {
	if !profileNameRE.MatchString(name) {
		return nil, ErrProfileNotFound
	}
	f, err := os.Open(filepath.Join(s.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrProfileNotFound
	}
	return f, err
}

// Prune applies the retention at now.
func (s *Store) Prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now, "")
}

// prune removes profiles older than MaxAge, then the oldest until the
// total fits MaxBytes; keep is never removed. A profile's record goes
// with it and counts in its size; a record whose profile is gone goes
// too.
func (s *Store) prune(now time.Time, keep string) {
	s.removeStaleTemps()
	defer s.removeOrphanRecords()
	files, err := s.List()
	if err != nil {
		return
	}
	remove := func(name string) error {
		err := os.Remove(filepath.Join(s.Dir, name))
		if err == nil {
			_ = os.Remove(filepath.Join(s.Dir, recordName(name)))
		}
		return err
	}
	var total int64
	var kept []File
	for _, f := range files {
		if f.Name != keep && now.Sub(f.ModTime) > s.MaxAge {
			_ = remove(f.Name)
			continue
		}
		f.Size += s.recordSize(f.Name)
		kept = append(kept, f)
		total += f.Size
	}
	for i := len(kept) - 1; i >= 0 && total > s.MaxBytes; i-- {
		if kept[i].Name == keep {
			continue
		}
		if remove(kept[i].Name) == nil {
			total -= kept[i].Size
		}
	}
}

// staleTemp is the age of a temporary file's last write past which no
// fetch is writing it any more.
const staleTemp = time.Hour

// removeStaleTemps removes the temporary files of fetches that died with
// their process mid-stream. A live fetch writes its file as the bytes
// come, so its modification time stays recent, on the wall clock.
func (s *Store) removeStaleTemps() {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			_ = os.Remove(filepath.Join(s.Dir, e.Name()))
		}
	}
}
