package server

import "github.com/spf13/pflag"

// RegisterFlags defines the receiver's command-line flags on fs, writing into
// c: --bearer-token-file, --basic-auth-username, --basic-auth-password-file,
// --insecure-no-auth, --tls-cert-file, --tls-key-file, --max-body-bytes,
// --ready-timeout, --shutdown-timeout, --process-timeout, --max-in-flight
// and --queue-wait. The fields c already holds are the defaults, but for
// --queue-wait, whose default is DefaultQueueWait when c holds 0 (0 on the
// command line answers at once). ReadyChecks, Registerer and Gatherer are the caller's wiring, not
// flags.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.BearerTokenFile, "bearer-token-file", c.BearerTokenFile,
		"file holding the bearer token Alertmanager must send (http_config.authorization); re-read when it changes")
	fs.StringVar(&c.BasicAuthUsername, "basic-auth-username", c.BasicAuthUsername,
		"user name for HTTP basic auth (http_config.basic_auth), instead of a bearer token")
	fs.StringVar(&c.BasicAuthPasswordFile, "basic-auth-password-file", c.BasicAuthPasswordFile,
		"file holding the basic auth password; re-read when it changes")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", c.InsecureNoAuth,
		"accept webhook requests without credentials (without it, no credentials means the server refuses to start)")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", c.TLSCertFile,
		"serve HTTPS with this certificate (PEM, chain after the leaf); reloaded when it changes; with neither it nor --tls-key-file (the default), plain HTTP")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", c.TLSKeyFile,
		"the private key of --tls-cert-file (PEM); reloaded when it changes")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes,
		"largest webhook request body accepted, larger ones are answered 413 (0 means 4 MiB)")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", c.ReadyTimeout,
		"bound on the checks of /readyz (0 means 5s)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout,
		"bound on the graceful shutdown (0 means 10s)")
	fs.DurationVar(&c.ProcessTimeout, "process-timeout", c.ProcessTimeout,
		"deadline of one delivery's processing, under the 2m write timeout (0 means 90s)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", c.MaxInFlight,
		"deliveries processed at once; more wait up to --queue-wait for a slot, then are answered 503, so that Alertmanager retries (0 means 8)")
	queueWait := c.QueueWait
	if queueWait == 0 {
		queueWait = DefaultQueueWait
	}
	fs.DurationVar(&c.QueueWait, "queue-wait", queueWait,
		"how long a delivery waits for one of --max-in-flight slots before it is answered 503 (0 answers at once)")
}
