package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxBodyBytes is the body limit of POST /api/v1/alerts when
// Config.MaxBodyBytes is 0. A firing group of 1,000 alerts with the labels and
// annotations leakguard's rules attach is under 1 MiB.
const DefaultMaxBodyBytes = 4 << 20

// Defaults of the durations and bounds in Config.
const (
	DefaultReadyTimeout    = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultProcessTimeout bounds one delivery's processing; it stays
	// under the server's write timeout (2 min), so that the answer still
	// reaches Alertmanager.
	DefaultProcessTimeout = 90 * time.Second
	// DefaultMaxInFlight bounds the deliveries processed at once.
	DefaultMaxInFlight = 8
	// DefaultQueueWait is --queue-wait's default: how long a delivery
	// that finds every slot busy waits for one: long enough to absorb a
	// burst, short next to the time Alertmanager gives a notification.
	DefaultQueueWait = 2 * time.Second
)

// Config is the receiver's configuration. Exactly one way to authenticate
// must be configured: a bearer token file, basic auth (a user name and a
// password file), or InsecureNoAuth.
type Config struct {
	// Profiles, when set, is served at GET /profiles and
	// /profiles/{name} to authenticated clients.
	Profiles ProfileSource
	// BearerTokenFile holds the token Alertmanager sends as
	// "Authorization: Bearer <token>" (http_config.authorization). Leading
	// and trailing white space is ignored. The file is re-read when it
	// changes, so a rotated Secret takes effect without a restart.
	BearerTokenFile string
	// BasicAuthUsername and BasicAuthPasswordFile configure HTTP basic auth
	// (http_config.basic_auth); the password file is re-read when it changes.
	BasicAuthUsername     string
	BasicAuthPasswordFile string
	// InsecureNoAuth accepts unauthenticated webhook requests. Without it,
	// a Config without credentials is invalid.
	InsecureNoAuth bool
	// TLSCertFile and TLSKeyFile, both or neither, make Serve speak HTTPS;
	// the pair is reloaded when either file changes.
	TLSCertFile, TLSKeyFile string
	// MaxBodyBytes bounds the webhook request body; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ReadyChecks are the named checks of GET /readyz, for example
	// "kubernetes" and "prometheus"; /readyz answers 200 only when all of
	// them return nil within ReadyTimeout.
	ReadyChecks map[string]func(context.Context) error
	// ReadyNotes are named notes that /readyz shows beside its checks
	// without deciding readiness: a state a person should see that must
	// not take the replica out of its Service (a drain waiting on the
	// pause switch). Each returns "" when it has nothing to say, shown
	// as "ok".
	ReadyNotes map[string]func() string
	// Registerer is where the server's metrics are registered; nil means a
	// private registry.
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves; nil means Registerer, which must
	// then be a Gatherer too (a *prometheus.Registry is). When Gatherer is
	// set and Registerer is nil, /metrics serves both Gatherer and the
	// private registry of the server's own metrics.
	Gatherer prometheus.Gatherer
	// ReadyTimeout bounds one run of the ready checks; 0 means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown in Serve; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ProcessTimeout is the deadline of one delivery's Processor call; 0
	// means DefaultProcessTimeout.
	ProcessTimeout time.Duration
	// MaxInFlight bounds the deliveries processed at once; one beyond it
	// waits up to QueueWait for a slot, then is answered 503, so that
	// Alertmanager retries it later. 0 means DefaultMaxInFlight.
	MaxInFlight int
	// QueueWait is how long a delivery that finds MaxInFlight deliveries
	// in flight waits for a slot before it is answered 503: a burst is
	// absorbed, a sustained overload pushed back. 0 answers it 503 at
	// once (the flag's default is DefaultQueueWait).
	QueueWait time.Duration
	// KnownAlertName reports whether an alert name may be a label value
	// of leakguard_alerts_received_total (the names the policy covers);
	// any other name counts as "other", so that a sender cannot create
	// series at will. Nil counts every name as "other".
	KnownAlertName func(name string) bool
}

// Validate reports a clear error for an unusable config: no credentials and
// not InsecureNoAuth, credentials together with InsecureNoAuth, both bearer
// and basic auth, half of basic auth, a credentials file that cannot be read
// or is empty, only one of the certificate and key or a pair that does not
// load, a negative limit or timeout, a nil ready check, or a Registerer that
// cannot serve as the Gatherer. All problems are reported together.
func (c Config) Validate() error {
	var errs []error
	bearer := c.BearerTokenFile != ""
	basic := c.BasicAuthUsername != "" || c.BasicAuthPasswordFile != ""
	switch {
	case bearer && basic:
		errs = append(errs, errors.New("both a bearer token file and basic auth are configured; choose one"))
	case (bearer || basic) && c.InsecureNoAuth:
		errs = append(errs, errors.New("credentials are configured together with --insecure-no-auth; drop one"))
	case !bearer && !basic && !c.InsecureNoAuth:
		errs = append(errs, errors.New("no credentials configured: set a bearer token file or basic auth (user name and password file), or pass --insecure-no-auth to accept unauthenticated webhook requests"))
	}
	if bearer {
		if _, err := readSecret(c.BearerTokenFile); err != nil {
			errs = append(errs, fmt.Errorf("bearer token file: %w", err))
		}
	}
	if basic {
		switch {
		case c.BasicAuthUsername == "":
			errs = append(errs, errors.New("basic auth: a password file is set but no user name"))
		case strings.Contains(c.BasicAuthUsername, ":"):
			errs = append(errs, fmt.Errorf("basic auth: user name %q contains a colon, which basic auth cannot carry", c.BasicAuthUsername))
		}
		if c.BasicAuthPasswordFile == "" {
			errs = append(errs, errors.New("basic auth: a user name is set but no password file"))
		} else if _, err := readSecret(c.BasicAuthPasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("basic auth password file: %w", err))
		}
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		errs = append(errs, fmt.Errorf("TLS needs both --tls-cert-file and --tls-key-file, got cert %q and key %q", c.TLSCertFile, c.TLSKeyFile))
	case c.TLSCertFile != "":
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("load TLS key pair %s, %s: %w", c.TLSCertFile, c.TLSKeyFile, err))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("body limit %d bytes is negative", c.MaxBodyBytes))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, fmt.Errorf("ready timeout %v is negative", c.ReadyTimeout))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %v is negative", c.ShutdownTimeout))
	}
	if c.ProcessTimeout < 0 || c.ProcessTimeout >= writeTimeout {
		errs = append(errs, fmt.Errorf("process timeout %v must not be negative and must be under the write timeout %v", c.ProcessTimeout, writeTimeout))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("max in flight %d is negative", c.MaxInFlight))
	}
	if c.QueueWait < 0 || c.QueueWait >= writeTimeout {
		errs = append(errs, fmt.Errorf("queue wait %v must not be negative and must be under the write timeout %v", c.QueueWait, writeTimeout))
	}
	for _, name := range sortedKeys(c.ReadyChecks) {
		switch {
		case name == "":
			errs = append(errs, errors.New("a ready check has an empty name"))
		case c.ReadyChecks[name] == nil:
			errs = append(errs, fmt.Errorf("ready check %q is nil", name))
		}
	}
	for _, name := range sortedKeys(c.ReadyNotes) {
		switch {
		case name == "":
			errs = append(errs, errors.New("a ready note has an empty name"))
		case c.ReadyNotes[name] == nil:
			errs = append(errs, fmt.Errorf("ready note %q is nil", name))
		case c.ReadyChecks[name] != nil:
			errs = append(errs, fmt.Errorf("%q is both a ready check and a ready note", name))
		}
	}
	if c.Gatherer == nil && c.Registerer != nil {
		if _, ok := c.Registerer.(prometheus.Gatherer); !ok {
			errs = append(errs, fmt.Errorf("the metrics Registerer (%T) is not a Gatherer, so set Gatherer too", c.Registerer))
		}
	}
	return errors.Join(errs...)
}

func (c Config) maxBodyBytes() int64 {
	if c.MaxBodyBytes == 0 {
		return DefaultMaxBodyBytes
	}
	return c.MaxBodyBytes
}

func (c Config) readyTimeout() time.Duration {
	if c.ReadyTimeout == 0 {
		return DefaultReadyTimeout
	}
	return c.ReadyTimeout
}

func (c Config) processTimeout() time.Duration {
	if c.ProcessTimeout == 0 {
		return DefaultProcessTimeout
	}
	return c.ProcessTimeout
}

func (c Config) maxInFlight() int {
	if c.MaxInFlight == 0 {
		return DefaultMaxInFlight
	}
	return c.MaxInFlight
}

func (c Config) shutdownTimeout() time.Duration {
	if c.ShutdownTimeout == 0 {
		return DefaultShutdownTimeout
	}
	return c.ShutdownTimeout
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
