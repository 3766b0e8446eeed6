package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
)

// ProfilesPath is where serve lists the stored profiles; one profile is
// at ProfilesPath/{name}.
const ProfilesPath = "/profiles"

// ProfileInfo describes one stored profile.
type ProfileInfo struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
	// Summary is the profile's summary as the store keeps it (JSON: the
	// short text, the summary of its top sites and stacks, what it was
	// compared with, or why the summary is missing); nil when the store
	// has none for it, and then left out of GET /profiles.
	Summary json.RawMessage `json:"summary,omitempty"`
}

// ErrNoProfile is what a ProfileSource's Open returns for a name it does
// not hold.
var ErrNoProfile = errors.New("no such profile")

// ProfileSource is the store of heap and goroutine profiles that GET
// /profiles lists and serves.
type ProfileSource interface {
	ListProfiles() ([]ProfileInfo, error)
	// OpenProfile opens the profile name; an unknown name or one not of
	// a profile's shape is ErrNoProfile.
	OpenProfile(name string) (io.ReadSeekCloser, time.Time, error)
}

// mountProfiles serves the stored profiles to authenticated clients
// only: without authentication (--insecure-no-auth) they are not served,
// as a heap profile holds whatever the process held in memory.
func (h *handler) mountProfiles(r chi.Router, auth authenticator) {
	src := h.cfg.Profiles
	if src == nil {
		return
	}
	if auth == nil {
		h.logger.Warn("profiles are not served: webhook authentication is off (--insecure-no-auth), and a heap profile may hold secrets")
		return
	}
	r.Group(func(r chi.Router) {
		r.Use(requireAuth(auth))
		r.Get(ProfilesPath, func(w http.ResponseWriter, r *http.Request) {
			list, err := src.ListProfiles()
			if err != nil {
				h.logger.Error("list profiles", "error", err)
				writeError(w, http.StatusInternalServerError, "the profiles cannot be listed")
				return
			}
			type item struct {
				ProfileInfo
				URL string `json:"url"`
			}
			out := struct {
				Profiles []item `json:"profiles"`
			}{Profiles: []item{}}
			for _, p := range list {
				out.Profiles = append(out.Profiles, item{p, ProfilesPath + "/" + url.PathEscape(p.Name)})
			}
			writeJSON(w, http.StatusOK, out)
		})
		r.Get(ProfilesPath+"/{name}", func(w http.ResponseWriter, r *http.Request) {
			name := chi.URLParam(r, "name")
			f, mod, err := src.OpenProfile(name)
			if errors.Is(err, ErrNoProfile) {
				writeError(w, http.StatusNotFound, "no such profile")
				return
			}
			if err != nil {
				h.logger.Error("open profile", "error", err)
				writeError(w, http.StatusInternalServerError, "the profile cannot be read")
				return
			}
			defer f.Close()
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
			http.ServeContent(w, r, name, mod, f)
		})
	})
}
