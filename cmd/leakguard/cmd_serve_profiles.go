package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/server"
	"github.com/spf13/pflag"
)

// profileFlags configure where serve keeps the profile remediator's
// profiles.
type profileFlags struct {
	dir        string
	maxBytes   int64
	maxAge     time.Duration
	maxFetches int
}

func (p *profileFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&p.dir, "profile-dir", "", "`DIR` (a volume) where the profile remediator stores heap and goroutine profiles, served at GET /profiles; empty holds profile (no-profile-store)")
	fs.Int64Var(&p.maxBytes, "profile-max-bytes", profile.DefaultProfileMaxBytes, "total size of the stored profiles; the oldest are removed beyond it")
	fs.DurationVar(&p.maxAge, "profile-max-age", profile.DefaultProfileMaxAge, "age after which a stored profile is removed")
	fs.IntVar(&p.maxFetches, "profile-max-fetches", profile.DefaultProfileMaxFetches, "profile fetches streaming into --profile-dir at once, across deliveries; more wait for a slot")
}

// store opens the profile directory, nil without --profile-dir.
func (p profileFlags) store() (*profile.Store, error) {
	if p.dir == "" {
		return nil, nil
	}
	if p.maxBytes <= 0 || p.maxAge <= 0 || p.maxFetches < 0 {
		return nil, errors.New("--profile-max-bytes and --profile-max-age must be positive, --profile-max-fetches not negative")
	}
	s, err := profile.NewStore(p.dir, p.maxBytes, p.maxAge)
	if err != nil {
		return nil, err
	}
	s.MaxFetches = p.maxFetches
	s.Replica = replicaName()
	return s, nil
}

// replicaName names this replica for the profile Events: $POD_NAME (the
// Deployment sets it from the downward API), else the host name (a pod's
// name too, unless the pod sets hostname), else none.
func replicaName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	return host
}

// profileSource serves a ProfileStore through server.ProfileSource.
type profileSource struct{ s *profile.Store }

func (p profileSource) ListProfiles() ([]server.ProfileInfo, error) {
	p.s.Prune(time.Now())
	files, err := p.s.List()
	if err != nil {
		return nil, err
	}
	out := make([]server.ProfileInfo, 0, len(files))
	for _, f := range files {
		info := server.ProfileInfo{Name: f.Name, Size: f.Size, ModTime: f.ModTime}
		// A profile without a readable record is listed all the same,
		// without a summary: the profile is the evidence.
		if rec, err := p.s.ReadRecordJSON(f.Name); err == nil && json.Valid(rec) {
			info.Summary = rec
		}
		out = append(out, info)
	}
	return out, nil
}

func (p profileSource) OpenProfile(name string) (io.ReadSeekCloser, time.Time, error) {
	f, err := p.s.Open(name)
	if errors.Is(err, profile.ErrProfileNotFound) {
		return nil, time.Time{}, server.ErrNoProfile
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, time.Time{}, err
	}
	return f, info.ModTime(), nil
}

// resumeInterval is how often serve looks for drains whose replica
// stopped (a heartbeat older than two minutes).
const resumeInterval = time.Minute

// resumeDrains resumes or reports, at start and every resumeInterval,
// the drains whose replica stopped mid-drain, until ctx ends.
func resumeDrains(ctx context.Context, e *remediate.Engine, logger *slog.Logger) {
	t := time.NewTicker(resumeInterval)
	defer t.Stop()
	for {
		resumed, reported, err := e.Resume(ctx)
		switch {
		case err != nil:
			logger.Warn("could not look for interrupted drains", "error", err)
		case resumed+reported > 0:
			logger.Info("interrupted drains", "resumed", resumed, "reported_incomplete", reported)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
