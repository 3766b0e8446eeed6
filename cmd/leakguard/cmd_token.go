package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/internal/cli"
)

// tokenBytes is the length of a generated webhook token before base64
// encoding: 256 bits.
const tokenBytes = 32

// runToken is `leakguard token ensure`: the webhook token's Secret for a
// trial install (deploy/components/trial-token runs it as a Job), created
// with a random token when absent and never changed once it exists, so
// that the rendered manifests hold nothing random and a re-run (a GitOps
// sync, a Job retry) keeps the token Alertmanager already sends.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("token", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leakguard token ensure [flags]

Create the webhook token's Secret (the bearer token Alertmanager sends and
serve checks) with a random 256-bit token, base64, if it does not exist. An
existing Secret is left unchanged, whatever it holds: the command never
overwrites a token. The token is never printed. Needs get on the Secret and
create on secrets in its namespace (deploy/components/trial-token's Role).

With --copy-to-namespace NS, the same token also goes into a Secret of the
same name in NS, for an Alertmanager there, which cannot read a Secret of
another namespace: created when absent, left when it holds the same token,
and an error (nothing changed) when it holds another, since Alertmanager
would then send a token serve refuses.

flags:
`)
		fs.PrintDefaults()
	}
	var namespace, copyTo, secret, key, kubeconfig, kubeContext, logLevel string
	fs.StringVar(&namespace, "namespace", "leakguard", "the Secret's namespace")
	fs.StringVar(&copyTo, "copy-to-namespace", "", "also put the same token in a Secret of the same name in this namespace (Alertmanager's); empty (the default): none")
	fs.StringVar(&secret, "secret", "leakguard-webhook-token", "the Secret's name (deploy/'s Deployment mounts leakguard-webhook-token)")
	fs.StringVar(&key, "key", "token", "the Secret's key that holds the token (serve's --bearer-token-file reads key token)")
	fs.StringVar(&kubeconfig, "kubeconfig", "", cli.KubeconfigHelp)
	fs.StringVar(&kubeContext, "context", "", cli.ContextHelp)
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	// The subcommand comes first, its flags after it.
	ensure := len(args) > 0 && args[0] == "ensure"
	if ensure {
		args = args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !ensure || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "token: want the subcommand ensure, then its flags, and no other argument")
		fs.Usage()
		return errUsage
	}
	if namespace == "" || secret == "" || key == "" {
		fmt.Fprintln(stderr, "token ensure: --namespace, --secret and --key must not be empty")
		return errUsage
	}
	logger, err := newLogger(stderr, logLevel)
	if err != nil {
		return err
	}
	cfg, err := kubeRESTConfig(kubeconfig, kubeContext)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	token, _, err := ensureToken(ctx, client, namespace, secret, key, logger)
	if err != nil || copyTo == "" || copyTo == namespace {
		return err
	}
	_, err = copyToken(ctx, client, copyTo, secret, key, token, namespace, logger)
	return err
}

// ensureToken creates the Secret namespace/name with a random token under
// key if it does not exist, and returns the token the Secret holds and
// whether it created it. An existing Secret is never changed: if it lacks
// key (or holds an empty token) that is an error, since serve would refuse
// it, but it is still left as it is (the Secret is someone's, the command
// does not guess whose).
func ensureToken(ctx context.Context, client kubernetes.Interface, namespace, name, key string, logger *slog.Logger) (token []byte, created bool, err error) {
	random, err := randomToken()
	if err != nil {
		return nil, false, err
	}
	created, token, err = createIfAbsent(ctx, client, namespace, name, key, []byte(random))
	switch {
	case err != nil:
		return nil, false, err
	case created:
		logger.Info("created the webhook token's Secret with a random token", "namespace", namespace, "secret", name, "key", key)
	default:
		logger.Info("the webhook token's Secret exists, left unchanged", "namespace", namespace, "secret", name, "key", key)
	}
	return token, created, nil
}

// copyToken makes the Secret namespace/name hold token under key, as the
// Secret of the namespace from does: created when absent, left as it is
// when it holds the same token. One that holds another token (or none) is
// an error and is left unchanged: the two would disagree, and which one is
// right is the user's call.
func copyToken(ctx context.Context, client kubernetes.Interface, namespace, name, key string, token []byte, from string, logger *slog.Logger) (created bool, err error) {
	created, held, err := createIfAbsent(ctx, client, namespace, name, key, token)
	switch {
	case err != nil:
		return false, err
	case created:
		logger.Info("copied the webhook token into a new Secret", "namespace", namespace, "secret", name, "key", key, "from_namespace", from)
	case !bytes.Equal(held, token):
		return false, fmt.Errorf("Secret %s/%s holds another token than %s/%s: left unchanged; Alertmanager would send a token serve refuses: delete it to have the token copied, or make the two equal", namespace, name, from, name)
	default:
		logger.Info("the webhook token's copy holds the same token, left unchanged", "namespace", namespace, "secret", name, "key", key, "from_namespace", from)
	}
	return created, nil
}

// createIfAbsent creates the Secret namespace/name with token under key
// unless it exists, and returns whether it did and the token the Secret
// holds. An existing Secret is never changed; one without a token under
// key is an error. A Secret created by someone else between the check and
// the create counts as existing.
func createIfAbsent(ctx context.Context, client kubernetes.Interface, namespace, name, key string, token []byte) (created bool, held []byte, err error) {
	secrets := client.CoreV1().Secrets(namespace)
	existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		held, err := existingToken(existing, key)
		return false, held, err
	case !apierrors.IsNotFound(err):
		return false, nil, tokenAPIError("get", namespace, name, err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "leakguard",
				"app.kubernetes.io/part-of":    "leakguard",
				"app.kubernetes.io/managed-by": "leakguard-token-ensure",
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{key: token},
	}
	_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
	switch {
	case err == nil:
		return true, token, nil
	case apierrors.IsAlreadyExists(err):
		// Another run (or a person) was first: theirs stands.
		existing, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil, tokenAPIError("get", namespace, name, err)
		}
		held, err := existingToken(existing, key)
		return false, held, err
	default:
		return false, nil, tokenAPIError("create", namespace, name, err)
	}
}

// existingToken returns the token s holds under key, or fails when it
// holds none.
func existingToken(s *corev1.Secret, key string) ([]byte, error) {
	if len(s.Data[key]) == 0 {
		return nil, fmt.Errorf("Secret %s/%s exists without a token under key %q (keys: %s): left unchanged; add the key or delete the Secret to have one made", s.Namespace, s.Name, key, secretKeys(s))
	}
	return s.Data[key], nil
}

func secretKeys(s *corev1.Secret) string {
	if len(s.Data) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(s.Data)), ", ")
}

// tokenAPIError wraps an API error of verb on the Secret, saying which
// rights are missing when the API server forbids it.
func tokenAPIError(verb, namespace, name string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s Secret %s/%s: forbidden: the account needs get on secrets named %s and create on secrets in namespace %s (deploy/components/trial-token's Roles): %w", verb, namespace, name, name, namespace, err)
	}
	return fmt.Errorf("%s Secret %s/%s: %w", verb, namespace, name, err)
}

// randomToken returns tokenBytes random bytes, base64.
func randomToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
