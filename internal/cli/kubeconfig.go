package cli

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigHelp and ContextHelp are the usage of the --kubeconfig and
// --context flags of every command that reaches a cluster.
const (
	KubeconfigHelp = "kubeconfig `FILE` to reach the cluster; empty: the files $KUBECONFIG lists, else ~/.kube/config, else (none of them there) the in-cluster service account"
	ContextHelp    = "the kubeconfig context `NAME` to use; empty: the kubeconfig's current-context"
)

// RESTConfig finds the cluster as kubectl does (client-go's default
// loading rules): the kubeconfig file if given (it must exist), else the
// files $KUBECONFIG lists, else ~/.kube/config; kubeContext, if given,
// picks the context instead of the current-context. When those hold no
// configuration (none of them exists, as in a pod's container), the
// in-cluster service account: clientcmd falls back to it only when the
// kubeconfig it loaded is empty, so a kubeconfig that fails to load
// (unreadable, not YAML, naming an absent context) fails rather than
// quietly reaching the cluster the pod runs in. Outside a cluster with no
// kubeconfig it fails, naming where it looked. The caller sets the
// User-Agent, rate limits and timeouts.
func RESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	source := kubeconfigSource(rules)
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	if kubeContext != "" {
		// clientcmd's own error ("context was not found for specified
		// context") does not say where it looked nor what there is.
		raw, err := loader.RawConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", source, err)
		}
		if _, ok := raw.Contexts[kubeContext]; !ok {
			return nil, fmt.Errorf("--context %q: no such context in kubeconfig %s (contexts: %s)", kubeContext, source, contextNames(raw.Contexts))
		}
	}
	cfg, err := loader.ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		// No kubeconfig, and not in a pod (no service account token or
		// no KUBERNETES_SERVICE_HOST): say both, with in-cluster's reason.
		_, icErr := rest.InClusterConfig()
		if icErr == nil {
			icErr = err
		}
		return nil, fmt.Errorf("no kubeconfig (%s) and in-cluster Kubernetes config failed (outside a cluster, pass --kubeconfig or set KUBECONFIG): %w", source, icErr)
	case err != nil:
		return nil, fmt.Errorf("kubeconfig %s: %w", source, err)
	}
	return cfg, nil
}

// kubeconfigSource names the files rules reads, for errors.
func kubeconfigSource(rules *clientcmd.ClientConfigLoadingRules) string {
	if rules.ExplicitPath != "" {
		return rules.ExplicitPath
	}
	if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		return strings.Join(rules.Precedence, string(filepath.ListSeparator)) // ~/.kube/config
	}
	return "$KUBECONFIG=" + strings.Join(rules.Precedence, string(filepath.ListSeparator))
}

// contextNames lists the names of contexts, sorted, or "none".
func contextNames(contexts map[string]*clientcmdapi.Context) string {
	if len(contexts) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(contexts)), ", ")
}
