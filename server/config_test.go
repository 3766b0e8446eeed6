package server

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakguard/leakguard/internal/tlstest"
)

// notAGatherer is a Registerer that cannot serve /metrics.
type notAGatherer struct{ prometheus.Registerer }

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "abc\n")
	empty := writeFile(t, dir, "empty", " \n")
	missing := dir + "/missing"
	pairA := tlstest.SelfSigned(t, "a")
	cert := writeFile(t, dir, "tls.crt", string(pairA.CertPEM))
	key := writeFile(t, dir, "tls.key", string(pairA.KeyPEM))
	otherKey := writeFile(t, dir, "other.key", string(tlstest.SelfSigned(t, "b").KeyPEM))
	ok := func(context.Context) error { return nil }

	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; none means valid
	}{
		{name: "bearer", cfg: Config{BearerTokenFile: token}},
		{name: "basic", cfg: Config{BasicAuthUsername: "am", BasicAuthPasswordFile: token}},
		{name: "insecure", cfg: Config{InsecureNoAuth: true}},
		{name: "bearer with TLS and checks", cfg: Config{BearerTokenFile: token, TLSCertFile: cert, TLSKeyFile: key, MaxBodyBytes: 1 << 20,
			ReadyChecks: map[string]func(context.Context) error{"kubernetes": ok}, Registerer: prometheus.NewRegistry()}},
		{name: "no auth", cfg: Config{}, wantErr: []string{"no credentials configured", "--insecure-no-auth"}},
		{name: "bearer and basic", cfg: Config{BearerTokenFile: token, BasicAuthUsername: "am", BasicAuthPasswordFile: token}, wantErr: []string{"both a bearer token file and basic auth"}},
		{name: "bearer and insecure", cfg: Config{BearerTokenFile: token, InsecureNoAuth: true}, wantErr: []string{"together with --insecure-no-auth"}},
		{name: "unreadable token file", cfg: Config{BearerTokenFile: missing}, wantErr: []string{"bearer token file: read " + missing}},
		{name: "empty token file", cfg: Config{BearerTokenFile: empty}, wantErr: []string{"bearer token file: " + empty + " is empty"}},
		{name: "basic without password", cfg: Config{BasicAuthUsername: "am"}, wantErr: []string{"a user name is set but no password file"}},
		{name: "basic without user", cfg: Config{BasicAuthPasswordFile: token}, wantErr: []string{"a password file is set but no user name"}},
		{name: "basic user with colon", cfg: Config{BasicAuthUsername: "a:m", BasicAuthPasswordFile: token}, wantErr: []string{"contains a colon"}},
		{name: "basic password unreadable", cfg: Config{BasicAuthUsername: "am", BasicAuthPasswordFile: missing}, wantErr: []string{"basic auth password file: read"}},
		{name: "cert without key", cfg: Config{InsecureNoAuth: true, TLSCertFile: cert}, wantErr: []string{"TLS needs both --tls-cert-file and --tls-key-file"}},
		{name: "key without cert", cfg: Config{InsecureNoAuth: true, TLSKeyFile: key}, wantErr: []string{"TLS needs both"}},
		{name: "mismatched pair", cfg: Config{InsecureNoAuth: true, TLSCertFile: cert, TLSKeyFile: otherKey}, wantErr: []string{"load TLS key pair"}},
		{name: "missing cert", cfg: Config{InsecureNoAuth: true, TLSCertFile: missing, TLSKeyFile: key}, wantErr: []string{"load TLS key pair"}},
		{name: "negative body limit", cfg: Config{InsecureNoAuth: true, MaxBodyBytes: -1}, wantErr: []string{"body limit -1 bytes is negative"}},
		{name: "negative timeouts", cfg: Config{InsecureNoAuth: true, ReadyTimeout: -1, ShutdownTimeout: -1}, wantErr: []string{"ready timeout -1ns is negative", "shutdown timeout -1ns is negative"}},
		{name: "nil ready check", cfg: Config{InsecureNoAuth: true, ReadyChecks: map[string]func(context.Context) error{"prometheus": nil}}, wantErr: []string{`ready check "prometheus" is nil`}},
		{name: "unnamed ready check", cfg: Config{InsecureNoAuth: true, ReadyChecks: map[string]func(context.Context) error{"": ok}}, wantErr: []string{"empty name"}},
		{name: "nil ready note", cfg: Config{InsecureNoAuth: true, ReadyNotes: map[string]func() string{"drains": nil}}, wantErr: []string{`ready note "drains" is nil`}},
		{name: "note named as a check", cfg: Config{InsecureNoAuth: true, ReadyChecks: map[string]func(context.Context) error{"drains": ok}, ReadyNotes: map[string]func() string{"drains": func() string { return "" }}},
			wantErr: []string{`"drains" is both a ready check and a ready note`}},
		{name: "registerer without gatherer", cfg: Config{InsecureNoAuth: true, Registerer: notAGatherer{prometheus.NewRegistry()}}, wantErr: []string{"is not a Gatherer, so set Gatherer too"}},
		{name: "all problems at once", cfg: Config{TLSCertFile: cert, MaxBodyBytes: -5}, wantErr: []string{"no credentials configured", "TLS needs both", "body limit -5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("Validate(%s) = %v, want nil", tt.name, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%s) = nil, want an error containing %q", tt.name, tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate(%s) = %q, want it to contain %q", tt.name, err, want)
				}
			}
		})
	}
}
