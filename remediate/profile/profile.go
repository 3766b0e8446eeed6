package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Name is the name of the profile remediator.
const Name = "profile"

// Annotations profile reads and writes.
const (
	// AnnotationPprofPort on a pod opts its container in: the port of
	// its net/http/pprof handler.
	AnnotationPprofPort = "leakguard.io/pprof-port"
	// AnnotationPprofPath is the handler's base path (default
	// /debug/pprof).
	AnnotationPprofPath = "leakguard.io/pprof-path"
	// AnnotationProfile on the target names the files profile stored.
	AnnotationProfile = "leakguard.io/profile"
)

// Reasons of profile's own guards and failures.
const (
	// ReasonNoPprofPort: the pod does not opt in (no pprof-port).
	ReasonNoPprofPort = "no-pprof-port"
	// ReasonProfilingDisabled: the apiserver serves no /debug/pprof
	// (--profiling=false).
	ReasonProfilingDisabled = "profiling-disabled"
	// ReasonProfileTooLarge: the profile is over maxBytes; reading
	// stopped there and nothing was kept.
	ReasonProfileTooLarge = "profile-too-large"
	// ReasonProfileFailed: the fetch failed (timeout, refused, 5xx).
	ReasonProfileFailed = "profile-failed"
	// ReasonNoProfileStore: serve has no --profile-dir.
	ReasonNoProfileStore = "no-profile-store"
)

// Defaults of profile's arguments.
const (
	// DefaultProfileFetchBytes caps one profile: a heap profile of a
	// process of a few GiB is a few MiB gzipped.
	DefaultProfileFetchBytes   = 16 << 20
	DefaultProfileFetchTimeout = 20 * time.Second
	DefaultAPIServerPort       = 6443
	defaultPprofPath           = "/debug/pprof"
)

// Deps are what profile needs beyond its policy arguments; the assembly
// package (remediate/builtin) passes them to Info.
type Deps struct {
	// Store stores the profiles; nil makes profile hold (no directory).
	Store *Store
	// Config is the client configuration (token, CA) for the requests
	// to one apiserver's own address; nil disables those.
	Config *rest.Config
}

// Info declares profile, built with deps: pods, workloads (their alert's
// pod) and the apiserver; it stops nothing, so it is not disruptive.
func Info(deps Deps) remediate.RemediatorInfo {
	return remediate.RemediatorInfo{Name: Name, Targets: []string{remediate.TargetWorkload, remediate.TargetPod, remediate.TargetAPIServer},
		New: func(args json.RawMessage) (remediate.Remediator, error) { return New(args, deps) },
		Rights: func(target string) []remediate.Right {
			if target == remediate.TargetAPIServer {
				return []remediate.Right{{Verb: "get", NonResourceURL: "/debug/pprof/heap", Grant: remediate.GrantProfile}}
			}
			return []remediate.Right{remediate.ResourceRight("get", "", "pods/proxy", remediate.GrantProfile)}
		},
	}
}

// ProfileArgs are profile's policy arguments.
type ProfileArgs struct {
	// Profiles are the pprof profiles to fetch (default heap and
	// goroutine; the apiserver's heap only unless listed).
	Profiles []string `json:"profiles"`
	// MaxBytes caps one profile (default 16 MiB); reading stops past it
	// and the profile is dropped, not truncated.
	MaxBytes int64 `json:"maxBytes"`
	// Timeout bounds one fetch (default 20s).
	Timeout remediate.Duration `json:"timeout"`
	// Required makes a failed profile stop the remediators after it (a
	// restart then waits for the evidence); by default they run anyway.
	Required bool `json:"required"`
	// APIServerPort is the port of the apiserver on its node's address
	// (default 6443).
	APIServerPort int `json:"apiserverPort"`
}

// Profile fetches heap (and goroutine) profiles of the leaking process
// before anything restarts it: a pod's through the pods/proxy
// subresource, the apiserver's from the alerting node's own address.
type Profile struct {
	Profiles      []string
	MaxBytes      int64
	Timeout       time.Duration
	Required      bool
	APIServerPort int
	// Store and Config are the Deps it was built with.
	Store  *Store
	Config *rest.Config
}

var _ remediate.Remediator = Profile{}

var knownProfiles = map[string]bool{"heap": true, "goroutine": true, "allocs": true}

// New builds profile from its arguments, with deps.
func New(args json.RawMessage, deps Deps) (remediate.Remediator, error) {
	var a ProfileArgs
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	p := Profile{Profiles: a.Profiles, MaxBytes: a.MaxBytes, Timeout: time.Duration(a.Timeout), Required: a.Required, APIServerPort: a.APIServerPort, Store: deps.Store, Config: deps.Config}
	var errs []error
	for _, k := range p.Profiles {
		if !knownProfiles[k] {
			errs = append(errs, fmt.Errorf("profiles: %q is not one of heap, goroutine, allocs", k))
		}
	}
	if p.MaxBytes < 0 || p.Timeout < 0 || p.APIServerPort < 0 || p.APIServerPort > 65535 {
		errs = append(errs, errors.New("maxBytes, timeout and apiserverPort must not be negative (and a port at most 65535)"))
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = DefaultProfileFetchBytes
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultProfileFetchTimeout
	}
	if p.APIServerPort == 0 {
		p.APIServerPort = DefaultAPIServerPort
	}
	return p, errors.Join(errs...)
}

// isAPIServer reports whether t is the apiserver: its static pod, or its
// node where it runs outside Kubernetes.
func isAPIServer(t *remediate.Target) bool {
	if t.Object.Kind == remediate.KindNode {
		return true
	}
	if t.Object.Kind != remediate.KindPod || t.Object.Namespace != remediate.SystemNamespace {
		return false
	}
	if p, ok := t.Resolved().(*corev1.Pod); ok && p.Labels["component"] == "kube-apiserver" {
		return true
	}
	return strings.HasPrefix(t.Object.Name, "kube-apiserver-")
}

// Plan judges whether there is something to fetch from.
func (p Profile) Plan(t *remediate.Target, f remediate.Finding, now time.Time) remediate.Plan {
	if isAPIServer(t) {
		if t.Node == "" {
			return remediate.Plan{Hold: remediate.ReasonTargetNotFound, Detail: "the alert names no node, whose apiserver to profile"}
		}
		kinds := p.Profiles
		if len(kinds) == 0 {
			kinds = []string{"heap"}
		}
		return remediate.Plan{
			Action: fmt.Sprintf("fetch %s profile of the apiserver on Node %s (its own address, port %d)", strings.Join(kinds, " and "), t.Node, p.APIServerPort),
			Apply: func(ctx context.Context, env remediate.Env) (string, error) {
				return p.apply(ctx, env, t, kinds, func(ctx context.Context, kind string) (io.ReadCloser, error) {
					return p.fetchAPIServer(ctx, env, t.Node, kind)
				})
			},
		}
	}
	if t.Pod == nil {
		return remediate.Plan{Hold: remediate.ReasonTargetNotFound, Detail: "the alert names no pod to profile"}
	}
	pod := *t.Pod
	ann := t.ExaminedAnnotations(remediate.KindPod, pod.Namespace, pod.Name)
	port, err := strconv.Atoi(strings.TrimSpace(ann[AnnotationPprofPort]))
	if err != nil || port < 1 || port > 65535 {
		return remediate.Plan{Hold: ReasonNoPprofPort, Detail: fmt.Sprintf("%s has no usable %s annotation (%q); add it to the pod template to opt in", pod, AnnotationPprofPort, remediate.Clip(ann[AnnotationPprofPort]))}
	}
	base := strings.TrimSpace(ann[AnnotationPprofPath])
	if base == "" {
		base = defaultPprofPath
	}
	if !strings.HasPrefix(base, "/") || strings.Contains(base, "..") || strings.ContainsAny(base, "?#") {
		return remediate.Plan{Hold: ReasonNoPprofPort, Detail: fmt.Sprintf("%s: %s %q is not an absolute path", pod, AnnotationPprofPath, remediate.Clip(base))}
	}
	base = strings.TrimRight(base, "/")
	kinds := p.Profiles
	if len(kinds) == 0 {
		kinds = []string{"heap", "goroutine"}
	}
	return remediate.Plan{
		Action: fmt.Sprintf("fetch %s profiles of %s through pods/proxy (port %d, %s)", strings.Join(kinds, " and "), pod, port, base),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			return p.apply(ctx, env, t, kinds, func(ctx context.Context, kind string) (io.ReadCloser, error) {
				return env.Client.CoreV1().RESTClient().Get().Namespace(pod.Namespace).Resource("pods").
					Name(fmt.Sprintf("%s:%d", pod.Name, port)).SubResource("proxy").Suffix(base, kind).Stream(ctx)
			})
		},
	}
}

// errProfilingDisabled is an apiserver without /debug/pprof.
var errProfilingDisabled = errors.New("profiling disabled")

// apply fetches each kind, each under Timeout once it holds one of the
// store's fetch slots, streams it into the store under MaxBytes and names
// the files on the target. A failure is held (the remediators after it
// run) unless Required.
func (p Profile) apply(ctx context.Context, env remediate.Env, t *remediate.Target, kinds []string, fetch func(context.Context, string) (io.ReadCloser, error)) (string, error) {
	if p.Store == nil {
		return "", p.fail(ReasonNoProfileStore, "serve has no --profile-dir to store profiles in")
	}
	subject := t.Object.Name
	if t.Pod != nil {
		subject = t.Pod.Namespace + "-" + t.Pod.Name
	}
	var saved []string
	for _, kind := range kinds {
		name, size, err := p.fetchOne(ctx, p.Store, []string{subject, kind}, env.Now, func(ctx context.Context) (io.ReadCloser, error) { return fetch(ctx, kind) })
		switch {
		case errors.Is(err, errProfilingDisabled):
			return "", &remediate.HeldError{Reason: ReasonProfilingDisabled, Detail: fmt.Sprintf("the apiserver on Node %s serves no /debug/pprof (--profiling=false); no profile taken", t.Node)}
		case errors.Is(err, errTooLarge):
			return "", p.fail(ReasonProfileTooLarge, fmt.Sprintf("%s profile of %s: %v; nothing kept", kind, subject, err))
		case err != nil:
			return "", p.fail(ReasonProfileFailed, fmt.Sprintf("%s profile of %s: %v", kind, subject, err))
		}
		saved = append(saved, fmt.Sprintf("%s %s (%d bytes)", kind, name, size))
	}
	list := strings.Join(saved, ", ")
	where := ""
	if p.Store.Replica != "" {
		where = "; on replica " + p.Store.Replica + " (its GET /profiles)"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationProfile: list}}})
	if _, err := remediate.PatchObject(ctx, env.Client, t.Object, types.MergePatchType, patch); err != nil {
		// The profiles are stored; the Event names them all the same.
		return "profiles stored: " + list + where + " (the annotation could not be written: " + err.Error() + ")", nil
	}
	return "profiles stored: " + list + where, nil
}

// fetchOne waits, as long as ctx allows, for one of store's fetch slots,
// then opens the profile and streams it into store, both under Timeout.
func (p Profile) fetchOne(ctx context.Context, store *Store, parts []string, now time.Time, open func(context.Context) (io.ReadCloser, error)) (string, int64, error) {
	release, err := store.acquireFetch(ctx)
	if err != nil {
		return "", 0, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	rc, err := open(ctx)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	return store.SaveFrom(parts, now, rc, p.MaxBytes)
}

// fail is a held outcome, or with Required an error that stops the
// remediators after profile.
func (p Profile) fail(reason, detail string) error {
	if p.Required {
		return fmt.Errorf("%s: %s (required: the remediators after profile do not run)", reason, detail)
	}
	return &remediate.HeldError{Reason: reason, Detail: detail + " (not required: the remediators after profile run)"}
}

// fetchAPIServer fetches /debug/pprof/<kind> from the apiserver on node,
// at the node's InternalIP (its advertise address on kubeadm clusters),
// with the service account's token and the cluster CA: that apiserver,
// not whichever replica a load balancer picks.
func (p Profile) fetchAPIServer(ctx context.Context, env remediate.Env, node, kind string) (io.ReadCloser, error) {
	if p.Config == nil {
		return nil, errors.New("no client configuration to reach an apiserver's own address")
	}
	n, err := env.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read Node %s: %w", node, remediate.ClassifyKube(err))
	}
	addr := ""
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			addr = a.Address
			break
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("Node %s has no InternalIP", node)
	}
	cfg := rest.CopyConfig(p.Config)
	cfg.Host = "https://" + net.JoinHostPort(addr, strconv.Itoa(p.APIServerPort))
	cfg.Timeout = p.Timeout
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/debug/pprof/"+kind, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil // the caller streams it into the store
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errProfilingDisabled
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s: forbidden (the ClusterRole needs get on nonResourceURLs /debug/pprof/*): %w", cfg.Host, apierrors.NewForbidden(corev1.Resource("nonresource"), "/debug/pprof/"+kind, errors.New("RBAC")))
	default:
		return nil, fmt.Errorf("%s/debug/pprof/%s: %s", cfg.Host, kind, resp.Status)
	}
}
