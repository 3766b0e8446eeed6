package server

import (
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/spf13/pflag"
)

func TestRegisterFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Config
	}{
		{"defaults", nil, Config{MaxBodyBytes: 1 << 10, QueueWait: DefaultQueueWait}},
		{"bearer and TLS", []string{"--bearer-token-file=/t", "--tls-cert-file=/c", "--tls-key-file=/k", "--max-body-bytes=2048", "--ready-timeout=2s", "--shutdown-timeout=3s"},
			Config{BearerTokenFile: "/t", TLSCertFile: "/c", TLSKeyFile: "/k", MaxBodyBytes: 2048, ReadyTimeout: 2 * time.Second, ShutdownTimeout: 3 * time.Second, QueueWait: DefaultQueueWait}},
		{"basic", []string{"--basic-auth-username=am", "--basic-auth-password-file=/p"}, Config{BasicAuthUsername: "am", BasicAuthPasswordFile: "/p", MaxBodyBytes: 1 << 10, QueueWait: DefaultQueueWait}},
		{"insecure", []string{"--insecure-no-auth"}, Config{InsecureNoAuth: true, MaxBodyBytes: 1 << 10, QueueWait: DefaultQueueWait}},
		{"no queue wait", []string{"--queue-wait=0", "--max-in-flight=4"}, Config{MaxBodyBytes: 1 << 10, MaxInFlight: 4}},
		{"queue wait", []string{"--queue-wait=5s"}, Config{MaxBodyBytes: 1 << 10, QueueWait: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{MaxBodyBytes: 1 << 10} // a default the caller chose
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatalf("Parse(%q) = %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, cfg, cmpopts.IgnoreFields(Config{}, "ReadyChecks", "Registerer", "Gatherer")); diff != "" {
				t.Errorf("flags %q gave Config (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
