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
	"github.com/leakguard/leakguard/remediate/profile/summary"

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
	// DefaultGrowthAfter is growthAfter's default: the wait before the
	// second heap profile, when the store holds no earlier one of the
	// same process. With the default fetch timeout (20s) and the
	// GrowthReserve it fits a delivery's default deadline (serve's
	// --process-timeout, 90s) with half a minute to spare for the check
	// and the first fetches.
	DefaultGrowthAfter = 30 * time.Second
)

// Bounds of the growth comparison.
const (
	// GrowthReserve is the time the second heap profile leaves on the
	// delivery's deadline for the remediators after profile (a restart).
	GrowthReserve = 10 * time.Second
	// minBaseAge and maxBaseAge bound the age of a stored heap profile
	// that serves as the base of a new one: younger, it shows little
	// growth; older, the comparison spans too much to name today's leak.
	minBaseAge = 30 * time.Second
	maxBaseAge = 6 * time.Hour
)

// Deps are what profile needs beyond its policy arguments; the assembly
// package (remediate/builtin) passes them to Info.
type Deps struct {
	// Store stores the profiles; nil makes profile hold (no directory).
	Store *Store
	// Config is the client configuration (token, CA) for the requests
	// to one apiserver's own address; nil disables those.
	Config *rest.Config
	// Querier asks Prometheus which object kinds the apiserver holds
	// most of, for its heap profile's summary; nil leaves that line out
	// (the summary says why).
	Querier remediate.Querier
	// Cluster and ClusterLabel confine that query to this cluster's
	// series in a fleet (serve's --cluster, --cluster-label); an empty
	// Cluster adds no matcher.
	Cluster, ClusterLabel string
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
	// GrowthAfter is the wait before a second heap profile, whose growth
	// since the first the summary shows, when the store holds no earlier
	// heap profile of the same process (default 30s; "0s" takes none).
	// The wait runs within the delivery, before the remediators after
	// profile, and only when its deadline leaves GrowthAfter, Timeout
	// and 10s more.
	GrowthAfter *remediate.Duration `json:"growthAfter"`
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
	GrowthAfter   time.Duration
	// Store, Config, Querier, Cluster and ClusterLabel are the Deps it
	// was built with.
	Store                 *Store
	Config                *rest.Config
	Querier               remediate.Querier
	Cluster, ClusterLabel string
	// wait waits d or until ctx ends; nil waits on a timer. Tests make
	// the process leak meanwhile instead.
	wait func(ctx context.Context, d time.Duration) error
}

var _ remediate.Remediator = Profile{}

var knownProfiles = map[string]bool{"heap": true, "goroutine": true, "allocs": true}

// New builds profile from its arguments, with deps.
func New(args json.RawMessage, deps Deps) (remediate.Remediator, error) {
	var a ProfileArgs
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	p := Profile{Profiles: a.Profiles, MaxBytes: a.MaxBytes, Timeout: time.Duration(a.Timeout), Required: a.Required, APIServerPort: a.APIServerPort,
		GrowthAfter: DefaultGrowthAfter, Store: deps.Store, Config: deps.Config, Querier: deps.Querier, Cluster: deps.Cluster, ClusterLabel: deps.ClusterLabel}
	if a.GrowthAfter != nil {
		p.GrowthAfter = time.Duration(*a.GrowthAfter)
	}
	var errs []error
	for _, k := range p.Profiles {
		if !knownProfiles[k] {
			errs = append(errs, fmt.Errorf("profiles: %q is not one of heap, goroutine, allocs", k))
		}
	}
	if p.MaxBytes < 0 || p.Timeout < 0 || p.GrowthAfter < 0 || p.APIServerPort < 0 || p.APIServerPort > 65535 {
		errs = append(errs, errors.New("maxBytes, timeout, growthAfter and apiserverPort must not be negative (and a port at most 65535)"))
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
// store's fetch slots, streams it into the store under MaxBytes,
// summarizes it (a heap profile against a base: an earlier stored one of
// the same process, or a second one taken GrowthAfter later), keeps the
// summary beside it and names the files, with a short summary, on the
// target and in the outcome. A failed fetch is held (the remediators
// after it run) unless Required; a missing summary fails nothing.
func (p Profile) apply(ctx context.Context, env remediate.Env, t *remediate.Target, kinds []string, fetch func(context.Context, string) (io.ReadCloser, error)) (string, error) {
	if p.Store == nil {
		return "", p.fail(ReasonNoProfileStore, "serve has no --profile-dir to store profiles in")
	}
	subject := t.Object.Name
	if t.Pod != nil {
		subject = t.Pod.Namespace + "-" + t.Pod.Name
	}
	process := p.processOf(ctx, env, t)
	var saved []string
	var recs []*Record
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
		recs = append(recs, &Record{Profile: name, Kind: kind, Process: process, TakenAt: env.Now})
	}
	// The summaries: each profile's own, a heap profile's with its
	// growth.
	var shown, seconds []*Record
	intervals := map[*Record]string{}
	for _, rec := range recs {
		if rec.Kind != "heap" {
			p.summarize(ctx, rec, "")
			shown = append(shown, rec)
			continue
		}
		second, interval := p.growth(ctx, subject, rec, fetch)
		if second == nil {
			intervals[rec] = interval
			shown = append(shown, rec)
			continue
		}
		saved = append(saved, fmt.Sprintf("heap %s (%d bytes)", second.Profile, second.size))
		seconds = append(seconds, &second.Record)
		if second.Summary == nil {
			rec.NoGrowth = "the second heap profile " + second.Profile + " has no summary: " + second.Missing
			shown = append(shown, rec)
			continue
		}
		// The second profile's summary, with the growth, stands for
		// both in the outcome.
		intervals[&second.Record] = interval
		shown = append(shown, &second.Record)
	}
	recs = append(recs, seconds...)
	if isAPIServer(t) {
		for i := len(shown) - 1; i >= 0; i-- {
			if shown[i].Kind == "heap" {
				shown[i].Objects, shown[i].NoObjects = p.objects(ctx, env.Now)
				break
			}
		}
	}
	briefs := map[*Record]brief{}
	for _, rec := range recs {
		b := briefOf(rec, intervals[rec])
		briefs[rec], rec.Text = b, b.text()
		// A record lost is a summary lost, not a profile: the profile
		// is stored and the outcome carries the summary all the same.
		_ = p.Store.SaveRecord(*rec)
	}
	var ranked []brief
	for _, rec := range shown {
		ranked = append(ranked, briefs[rec])
	}
	list := strings.Join(saved, ", ")
	where := ""
	if p.Store.Replica != "" {
		where = "; on replica " + p.Store.Replica + " (its GET /profiles)"
	}
	// The annotation keeps the files' names and as much of the
	// summaries as fits, the most telling first.
	ann := remediate.Truncate(list+". "+outcomeText(ranked, maxAnnotationBytes-len(list)-2), maxAnnotationBytes)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationProfile: ann}}})
	if _, err := remediate.PatchObject(ctx, env.Client, t.Object, types.MergePatchType, patch); err != nil {
		// The profiles are stored; the Event names them all the same.
		where += " (the annotation could not be written: " + err.Error() + ")"
	}
	head := "profiles stored: " + list + where + ". "
	return head + outcomeText(ranked, maxOutcomeBytes-len(head)), nil
}

// processOf identifies the process that t's profiles come from: its
// pod's UID and the sum of its containers' restart counts, as read now.
// "" (unknown: no pod, or it cannot be read) makes no stored profile a
// base, which fails safe: a profile of another process would show its
// whole heap as growth.
func (p Profile) processOf(ctx context.Context, env remediate.Env, t *remediate.Target) string {
	if t.Pod == nil {
		return ""
	}
	pod, err := env.Client.CoreV1().Pods(t.Pod.Namespace).Get(ctx, t.Pod.Name, metav1.GetOptions{})
	if err != nil || pod.UID == "" || (t.Pod.UID != "" && pod.UID != t.Pod.UID) {
		return ""
	}
	var restarts int32
	for _, cs := range pod.Status.ContainerStatuses {
		restarts += cs.RestartCount
	}
	return fmt.Sprintf("%s/restarts=%d", pod.UID, restarts)
}

// summarizeMaxBytes bounds a profile once gunzipped, for its summary: a
// heap profile of a Go process of a few GiB is a few MiB.
const summarizeMaxBytes = 32 << 20

// summarize fills rec's summary of its profile against the stored
// profile base ("" for none), or why it is missing. It holds the store's
// summary slot, so that one summary at a time holds profiles in memory
// (each at most MaxBytes, and summarizeMaxBytes once gunzipped), and it
// fails safe: the profile stays stored whatever the summary makes of it.
func (p Profile) summarize(ctx context.Context, rec *Record, base string) {
	release, err := p.Store.acquireSummary(ctx)
	if err != nil {
		rec.Summary, rec.Missing = nil, err.Error()
		return
	}
	defer release()
	data, err := p.Store.readProfile(rec.Profile, p.MaxBytes)
	if err != nil {
		rec.Summary, rec.Missing = nil, "the stored profile cannot be read: "+err.Error()
		return
	}
	var baseData []byte
	if base != "" {
		if baseData, err = p.Store.readProfile(base, p.MaxBytes); err != nil {
			rec.Summary, rec.Missing = nil, "base: the stored profile cannot be read: "+err.Error()
			return
		}
	}
	s, err := summary.Summarize(data, baseData, summary.Options{MaxBytes: summarizeMaxBytes})
	if err != nil {
		rec.Summary, rec.Missing = nil, err.Error()
		return
	}
	rec.Summary, rec.Missing = s, ""
}

// secondProfile is the heap profile growth took after GrowthAfter.
type secondProfile struct {
	Record
	size int64
}

// growth summarizes the heap profile rec against a base: the
// newest stored heap profile of the same process between minBaseAge and
// maxBaseAge old, without waiting; else a second heap profile taken
// GrowthAfter later, which it stores and returns with its record (the
// growth is in that record); else none, rec saying why. It returns the
// interval between the two profiles.
func (p Profile) growth(ctx context.Context, subject string, rec *Record, fetch func(context.Context, string) (io.ReadCloser, error)) (*secondProfile, string) {
	if base := p.Store.findBase(subject, rec); base != nil {
		rec.Base = base.Profile
		p.summarize(ctx, rec, base.Profile)
		if rec.Summary != nil {
			return nil, rec.TakenAt.Sub(base.TakenAt).Round(time.Second).String()
		}
		// A base that does not subtract (another binary, pruned
		// meanwhile): the profile's own summary, and why there is no
		// growth.
		why := rec.Missing
		rec.Base = ""
		p.summarize(ctx, rec, "")
		if rec.Summary != nil {
			rec.NoGrowth = "the stored base " + base.Profile + " cannot be compared: " + why
		}
		return nil, ""
	}
	p.summarize(ctx, rec, "")
	if rec.Summary == nil {
		return nil, ""
	}
	noBase := "no earlier heap profile of this process is stored"
	if rec.Process == "" {
		noBase = "no stored profile can be the base (the process is not known: no pod to read)"
	}
	if p.GrowthAfter == 0 {
		rec.NoGrowth = noBase + ", and growthAfter is 0"
		return nil, ""
	}
	need := p.GrowthAfter + p.Timeout + GrowthReserve
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < need {
			// Fails safe: a second profile that the deadline would cut
			// would also leave no time for a restart after it.
			rec.NoGrowth = fmt.Sprintf("%s, and the delivery's deadline leaves %s, under growthAfter %s + timeout %s + %s for the rest of the entry", noBase, left.Round(time.Second), p.GrowthAfter, p.Timeout, GrowthReserve)
			return nil, ""
		}
	}
	wait := p.wait
	if wait == nil {
		wait = sleep
	}
	if err := wait(ctx, p.GrowthAfter); err != nil {
		rec.NoGrowth = "waiting for the second heap profile: " + err.Error()
		return nil, ""
	}
	at := rec.TakenAt.Add(p.GrowthAfter)
	name, size, err := p.fetchOne(ctx, p.Store, []string{subject, "heap"}, at, func(ctx context.Context) (io.ReadCloser, error) { return fetch(ctx, "heap") })
	if err != nil {
		rec.NoGrowth = fmt.Sprintf("the second heap profile, %s later: %v", p.GrowthAfter, err)
		return nil, ""
	}
	second := &secondProfile{Record: Record{Profile: name, Kind: "heap", Process: rec.Process, TakenAt: at, Base: rec.Profile}, size: size}
	p.summarize(ctx, &second.Record, rec.Profile)
	if second.Summary == nil {
		second.Base = ""
	}
	return second, p.GrowthAfter.String()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
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
