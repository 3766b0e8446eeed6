package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// racyWindow is how recently a file may have been modified for its content
// to be distrusted. File timestamps on Linux come from a coarse clock (a few
// milliseconds), so a file rewritten in place with the same size within that
// tick keeps its modification time: a version read that soon after a write
// is read again on the next check, until it is older than the window.
const racyWindow = 2 * time.Second

// fileVersion identifies the version of a file that was last loaded.
type fileVersion struct {
	info os.FileInfo
	racy bool
}

// unchanged reports whether info is the loaded version: same file (a
// Kubernetes volume swaps a symlink, which changes the inode), same size, same
// modification time, and not racily recent.
func (v fileVersion) unchanged(info os.FileInfo) bool {
	return v.info != nil && !v.racy &&
		os.SameFile(v.info, info) &&
		v.info.Size() == info.Size() &&
		v.info.ModTime().Equal(info.ModTime())
}

func newFileVersion(info os.FileInfo, now time.Time) fileVersion {
	return fileVersion{info: info, racy: now.Sub(info.ModTime()) < racyWindow}
}

// readSecret reads a credentials file and returns its content without
// surrounding white space (as Alertmanager's credentials_file does). An empty
// secret is an error: it would let anyone in.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

// secretFile is a credentials file that is re-read when it changes. Only the
// SHA-256 of the secret is kept; comparing hashes of equal length in constant
// time also hides the secret's length.
type secretFile struct {
	path   string
	logger *slog.Logger

	mu      sync.Mutex
	version fileVersion
	sum     [sha256.Size]byte
	// failed is the version that last failed to load, so that a broken
	// file is logged once and not on every request.
	failed fileVersion
}

// newSecretFile loads path; it fails when the file cannot be read or is
// empty.
func newSecretFile(path string, logger *slog.Logger) (*secretFile, error) {
	s := &secretFile{path: path, logger: logger}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	b, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	s.sum = sha256.Sum256(b)
	s.version = newFileVersion(info, time.Now())
	return s, nil
}

// current returns the hash of the secret, re-reading the file first if it
// has changed since it was loaded. When the file is missing, unreadable or
// empty, the last good secret stays in force: Alertmanager does not retry a
// 401, so failing closed during a botched rotation would silently drop
// alerts, while the old secret is still one the operator chose.
func (s *secretFile) current() [sha256.Size]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := os.Stat(s.path)
	if err != nil {
		// A missing file is logged on every request until it is back.
		s.logFailure(err)
		return s.sum
	}
	if s.version.unchanged(info) {
		return s.sum
	}
	now := time.Now()
	if s.failed.unchanged(info) {
		return s.sum
	}
	b, err := readSecret(s.path)
	if err != nil {
		s.failed = newFileVersion(info, now)
		s.logFailure(err)
		return s.sum
	}
	sum := sha256.Sum256(b)
	if sum != s.sum {
		s.logger.Info("credentials file changed, new secret in force", "file", s.path)
	}
	s.sum = sum
	s.version = newFileVersion(info, now)
	s.failed = fileVersion{}
	return s.sum
}

func (s *secretFile) logFailure(err error) {
	s.logger.Error("cannot re-read credentials file, keeping the previous secret", "file", s.path, "error", err)
}

// certReloader serves the TLS key pair from two files and reloads it when
// either file changes, checked at each handshake. A pair that fails to load
// (for example the certificate has been replaced and the key not yet) leaves
// the previous pair in force and is tried again at the next handshake.
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu                    sync.Mutex
	cert                  *tls.Certificate
	certVer, keyVer       fileVersion
	failedCert, failedKey fileVersion
}

// newCertReloader loads the pair once; it fails when the pair does not load.
func newCertReloader(certFile, keyFile string, logger *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload stats both files and loads the pair if either has changed.
func (c *certReloader) reload() error {
	certInfo, err := os.Stat(c.certFile)
	if err != nil {
		return fmt.Errorf("stat TLS certificate: %w", err)
	}
	keyInfo, err := os.Stat(c.keyFile)
	if err != nil {
		return fmt.Errorf("stat TLS key: %w", err)
	}
	if c.cert != nil && c.certVer.unchanged(certInfo) && c.keyVer.unchanged(keyInfo) {
		return nil
	}
	if c.failedCert.unchanged(certInfo) && c.failedKey.unchanged(keyInfo) {
		return errPairStillBroken
	}
	now := time.Now()
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.failedCert, c.failedKey = newFileVersion(certInfo, now), newFileVersion(keyInfo, now)
		return fmt.Errorf("load TLS key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	if c.cert != nil && !equalChains(c.cert.Certificate, pair.Certificate) {
		c.logger.Info("TLS certificate changed, new key pair in force", "cert_file", c.certFile)
	}
	c.cert = &pair
	c.certVer, c.keyVer = newFileVersion(certInfo, now), newFileVersion(keyInfo, now)
	c.failedCert, c.failedKey = fileVersion{}, fileVersion{}
	return nil
}

// getCertificate is tls.Config.GetCertificate. It never fails once a pair
// has loaded: a pair that does not reload leaves the previous one in force.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.reload()
	switch {
	case err == nil, errors.Is(err, errPairStillBroken):
		// A broken version is logged once, when it first fails.
	default:
		c.logger.Error("cannot reload TLS key pair, keeping the previous one", "error", err)
	}
	return c.cert, nil
}

// errPairStillBroken is reload's answer for files that already failed to load
// and have not changed since.
var errPairStillBroken = errors.New("TLS key pair unchanged since it last failed to load")

func equalChains(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
