package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the HTTP server. The write timeout is generous because the
// Processor may take several Kubernetes and Prometheus round trips.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Serve listens on addr until ctx is done, then shuts down gracefully
// (within cfg's shutdown timeout). With cfg.TLSCertFile and cfg.TLSKeyFile it
// serves HTTPS and reloads the key pair when the files change; without
// them, plain HTTP, with a warning at start.
func Serve(ctx context.Context, addr string, cfg Config, h http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, cfg, h, logger)
}

// ServeListener is Serve on a listener the caller opened (for example on
// port 0 in a test); it closes ln.
func ServeListener(ctx context.Context, ln net.Listener, cfg Config, h http.Handler, logger *slog.Logger) error {
	addr := ln.Addr().String()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serve := func() error { return srv.Serve(ln) }
	scheme := "http"
	switch {
	case (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == ""):
		ln.Close()
		return fmt.Errorf("serve on %s: TLS needs both a certificate and a key file", addr)
	case cfg.TLSCertFile != "":
		certs, err := newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, logger)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve on %s: %w", addr, err)
		}
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: certs.getCertificate,
		}
		serve = func() error { return srv.ServeTLS(ln, "", "") }
		scheme = "https"
	}

	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	logger.Info("serving", "address", addr, "scheme", scheme)
	if scheme == "http" {
		// A choice (deploy/components/plain-http), not a fallback: say
		// what it means once, at start.
		logger.Warn("serving plain HTTP: no --tls-cert-file and --tls-key-file; the webhook's credentials cross the network in clear text unless TLS terminates in front of serve (a service mesh, a proxy)", "address", addr)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "address", addr, "timeout", cfg.shutdownTimeout())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdownTimeout())
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", addr, err)
	}
	if shutdownErr != nil {
		srv.Close()
		return fmt.Errorf("graceful shutdown of %s: %w", addr, shutdownErr)
	}
	return nil
}
