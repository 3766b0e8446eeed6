package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// authenticator decides whether a request carries valid credentials.
type authenticator interface {
	// authenticate reports whether r carries valid credentials.
	authenticate(r *http.Request) bool
	// challenge is the WWW-Authenticate header of a 401 answer.
	challenge() string
}

// newAuthenticator builds the authenticator cfg asks for; nil means none
// (InsecureNoAuth). cfg has been validated.
func newAuthenticator(cfg Config, logger *slog.Logger) (authenticator, error) {
	switch {
	case cfg.BearerTokenFile != "":
		f, err := newSecretFile(cfg.BearerTokenFile, logger)
		if err != nil {
			return nil, fmt.Errorf("bearer token file: %w", err)
		}
		return &bearerAuth{token: f}, nil
	case cfg.BasicAuthUsername != "":
		f, err := newSecretFile(cfg.BasicAuthPasswordFile, logger)
		if err != nil {
			return nil, fmt.Errorf("basic auth password file: %w", err)
		}
		return &basicAuth{user: sha256.Sum256([]byte(cfg.BasicAuthUsername)), password: f}, nil
	default:
		return nil, nil
	}
}

// bearerAuth accepts "Authorization: Bearer <token>" with the token of a
// file.
type bearerAuth struct {
	token *secretFile
}

func (a *bearerAuth) authenticate(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := a.token.current()
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func (a *bearerAuth) challenge() string { return `Bearer realm="leakguard"` }

// basicAuth accepts HTTP basic auth with a fixed user name and the password
// of a file.
type basicAuth struct {
	user     [sha256.Size]byte
	password *secretFile
}

func (a *basicAuth) authenticate(r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	if !ok {
		return false
	}
	gotUser := sha256.Sum256([]byte(user))
	gotPassword := sha256.Sum256([]byte(password))
	wantPassword := a.password.current()
	// Both comparisons always run, so the time does not say which failed.
	userOK := subtle.ConstantTimeCompare(gotUser[:], a.user[:])
	passwordOK := subtle.ConstantTimeCompare(gotPassword[:], wantPassword[:])
	return userOK&passwordOK == 1
}

func (a *basicAuth) challenge() string { return `Basic realm="leakguard", charset="UTF-8"` }

// requireAuth answers 401 to a request without valid credentials; nothing
// behind it runs, and the body is not read.
func requireAuth(a authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !a.authenticate(r) {
				w.Header().Set("WWW-Authenticate", a.challenge())
				writeError(w, http.StatusUnauthorized, "missing or invalid credentials")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
