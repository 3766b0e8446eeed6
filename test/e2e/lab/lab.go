// Package lab runs a real etcd and kube-apiserver on loopback for the
// end-to-end tests: RBAC authorization on, serving certificates and a
// service account signing key generated for each lab, an admin client
// certificate in system:masters, and service account tokens from the
// TokenRequest API. By default there is no kubelet, controller manager or
// scheduler: the objects a test needs (a Deployment's ReplicaSet and pods, a
// Node) are created as the admin, and nothing reconciles them. With
// Options.RealNode the lab adds a real node (RealNode): containerd and runc, a
// kubelet, kube-controller-manager, kube-scheduler and kube-state-metrics,
// where the host allows (CheckNodeHost).
//
// The binaries come from hack/e2e-binaries.sh (FindBinaries), the real
// node's from hack/node-binaries.sh.
package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configure Start.
type Options struct {
	// BinDir holds the kube-apiserver and etcd executables.
	BinDir string
	// StartTimeout bounds the start of each process until it answers
	// ready; 0 means 90 s.
	StartTimeout time.Duration
	// Profiling serves /debug/pprof on the kube-apiserver (its default;
	// the lab turns it off, as CIS 1.2.21 recommends, unless set).
	Profiling bool
	// PodNetwork starts Lab.Pods and the kube-apiserver behind it, so
	// that pods/proxy reaches the handlers a test registers for its pods'
	// IPs (see PodNetwork).
	PodNetwork bool
	// RealNode adds the real node (Lab.RealNode) once the API server is
	// ready. Start refuses, with an error wrapping ErrNodeUnsupported,
	// where the host cannot run it (CheckNodeHost), before it starts
	// anything. The lab changes the host then: see RealNode.
	RealNode bool
	// RepoRoot is the repository, from which the real node's images are
	// built (RealNode only).
	RepoRoot string
	// ObjectCountPoll, when set, is how often the kube-apiserver counts
	// the objects of each resource in etcd for its metrics
	// (apiserver_resource_objects; --etcd-count-metric-poll-period,
	// a minute by default).
	ObjectCountPoll time.Duration
}

// Lab is a running etcd and kube-apiserver.
type Lab struct {
	dir       string
	pki       *pki
	etcd      *process
	apiserver *process
	host      string

	// Pods is the pod network (Options.PodNetwork), nil without it.
	Pods *PodNetwork
	// RealNode is the real node (Options.RealNode), nil without it.
	RealNode *RealNode
	// Admin is a client in system:masters: it may do anything.
	Admin kubernetes.Interface
	// AdminConfig is Admin's configuration.
	AdminConfig *rest.Config
}

// startAttempts bounds the starts of one process that exits before it is
// ready: a port found free can be taken by another process before the
// child binds it. A process that runs and does not get ready is not
// started again.
const startAttempts = 3

// Start starts etcd and kube-apiserver and returns once the API server
// answers /readyz and has created the default namespace. On error nothing
// is left running.
func Start(ctx context.Context, o Options) (_ *Lab, err error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 90 * time.Second
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, bin)); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	if o.RealNode {
		// Refuse before anything runs or changes (fail closed): a host
		// that cannot run a kubelet is left as it was.
		if err := CheckNodeHost(o.BinDir); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "leakguard-e2e-")
	if err != nil {
		return nil, err
	}
	l := &Lab{dir: dir}
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if l.pki, err = newPKI(dir); err != nil {
		return nil, fmt.Errorf("lab: keys: %w", err)
	}
	if o.PodNetwork {
		if l.Pods, err = StartPodNetwork(); err != nil {
			return nil, fmt.Errorf("lab: pod network: %w", err)
		}
	}

	var etcdURL string
	for attempt := 1; ; attempt++ {
		etcdURL, err = l.startEtcd(ctx, o)
		if !errors.Is(err, errExited) || attempt == startAttempts {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = l.startAPIServer(ctx, o, etcdURL)
		if !errors.Is(err, errExited) || attempt == startAttempts {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if o.RealNode {
		if err := l.startNode(ctx, o); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Lab) startEtcd(ctx context.Context, o Options) (string, error) {
	clientURL := "http://" + freeAddr()
	peerURL := "http://" + freeAddr()
	if l.etcd != nil {
		_ = l.etcd.stop()
	}
	dataDir := filepath.Join(l.dir, "etcd")
	if err := os.RemoveAll(dataDir); err != nil {
		return "", err
	}
	var env []string
	if runtime.GOARCH != "amd64" {
		// etcd refuses to start on an architecture it does not support
		// (3.7: amd64, arm64, ppc64le, s390x) unless told that the user
		// knows; a lab is no production cluster.
		env = append(env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	}
	p, err := startProcess("etcd", filepath.Join(l.dir, "etcd.log"), env, filepath.Join(o.BinDir, "etcd"),
		"--name=lab",
		"--data-dir="+dataDir,
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=lab="+peerURL,
		"--initial-cluster-state=new",
		// The lab's data is thrown away: waiting for fsync on a disk
		// shared with Prometheus and other labs only slows every write.
		"--unsafe-no-fsync",
	)
	if err != nil {
		return "", err
	}
	l.etcd = p
	err = waitFor(ctx, o.StartTimeout, p, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientURL+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd /health: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("lab: etcd at %s not healthy: %w", clientURL, err)
	}
	return clientURL, nil
}

func (l *Lab) startAPIServer(ctx context.Context, o Options, etcdURL string) error {
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	if l.apiserver != nil {
		_ = l.apiserver.stop()
	}
	// The API server's proxy transport honours HTTP_PROXY (loopback
	// addresses, etcd's among them, are never proxied): the pod network.
	var env []string
	if l.Pods != nil {
		env = []string{"HTTP_PROXY=" + l.Pods.ProxyURL(), "http_proxy=" + l.Pods.ProxyURL(), "NO_PROXY=", "no_proxy="}
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		// Each lab has its own etcd; a prefix keeps a mistake from
		// reading another cluster's keys all the same.
		"--etcd-prefix=/leakguard-e2e",
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + port,
		"--tls-cert-file=" + l.pki.servingCertFile,
		"--tls-private-key-file=" + l.pki.servingKeyFile,
		"--client-ca-file=" + l.pki.caFile,
		"--authorization-mode=Node,RBAC",
		"--anonymous-auth=false",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + l.pki.saPublicFile,
		"--service-account-signing-key-file=" + l.pki.saPrivateFile,
		"--api-audiences=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/24",
		// Nothing else runs on loopback to be an endpoint of the
		// kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--profiling=" + strconv.FormatBool(o.Profiling),
	}
	if o.ObjectCountPoll > 0 {
		args = append(args, "--etcd-count-metric-poll-period="+o.ObjectCountPoll.String())
	}
	if o.RealNode {
		// logs, exec, port-forward and the nodes/proxy subresource reach
		// the kubelet with a certificate it checks against the lab's CA;
		// the kubelet's serving certificate is the lab's too.
		certFile, keyFile, err := l.kubeletClientFiles()
		if err != nil {
			return err
		}
		args = append(args,
			"--kubelet-client-certificate="+certFile,
			"--kubelet-client-key="+keyFile,
			"--kubelet-certificate-authority="+l.pki.caFile,
		)
	}
	p, err := startProcess("kube-apiserver", filepath.Join(l.dir, "kube-apiserver.log"), env, filepath.Join(o.BinDir, "kube-apiserver"), args...)
	if err != nil {
		return err
	}
	l.apiserver = p
	l.host = "https://" + addr
	l.AdminConfig = &rest.Config{
		Host: l.host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   l.pki.caPEM,
			CertData: l.pki.adminCertPEM,
			KeyData:  l.pki.adminKeyPEM,
		},
		QPS:     200,
		Burst:   400,
		Timeout: 30 * time.Second,
	}
	admin, err := kubernetes.NewForConfig(l.AdminConfig)
	if err != nil {
		return err
	}
	l.Admin = admin
	err = waitFor(ctx, o.StartTimeout, p, func(ctx context.Context) error {
		body, err := admin.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("/readyz: %w: %s", err, body)
		}
		// The bootstrap controller creates the default namespace shortly
		// after the server is ready; Events of cluster-scoped objects go
		// there.
		_, err = admin.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("lab: kube-apiserver at %s not ready: %w", l.host, err)
	}
	return nil
}

// waitFor polls ready every 100 ms until it succeeds, p exits or timeout
// passes, and returns the last error.
func waitFor(ctx context.Context, timeout time.Duration, p *process, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if err := p.running(); err != nil {
			return err
		}
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w\n%s", timeout, last, p.tail(40))
		case <-tick.C:
		}
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		// No loopback at all: the start fails with a clear error.
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// Host returns the API server's URL.
func (l *Lab) Host() string { return l.host }

// Logs returns the tail of the processes' logs (etcd's, kube-apiserver's
// and the real node's), for a failure message.
func (l *Lab) Logs() string {
	var parts []string
	procs := []*process{l.etcd, l.apiserver}
	if l.RealNode != nil {
		procs = append(procs, l.RealNode.processes()...)
	}
	for _, p := range procs {
		if p != nil {
			parts = append(parts, p.tail(30))
		}
	}
	return strings.Join(parts, "\n")
}

// Close stops the real node (and puts back what it changed on the host,
// see RealNode), then kube-apiserver, then etcd, and removes the lab's
// directory (certificates, keys, etcd's data, logs).
func (l *Lab) Close() error {
	var errs []error
	if l.RealNode != nil {
		errs = append(errs, l.RealNode.close())
	}
	for _, p := range []*process{l.apiserver, l.etcd} {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	if l.Pods != nil {
		errs = append(errs, l.Pods.Close())
	}
	errs = append(errs, os.RemoveAll(l.dir))
	return errors.Join(errs...)
}

// ServiceAccountConfig returns a client configuration that authenticates
// as the service account namespace/name with a token from the TokenRequest
// API, the way a pod's projected token does. It carries no client
// certificate: the API server sees only the service account.
func (l *Lab) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	expiry := int64(3600)
	tr, err := l.Admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for service account %s/%s: %w", namespace, name, err)
	}
	return &rest.Config{
		Host:            l.host,
		TLSClientConfig: rest.TLSClientConfig{CAData: l.pki.caPEM},
		BearerToken:     tr.Status.Token,
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
	}, nil
}

// EnsureDefaultServiceAccount creates the default service account of
// namespace, which the ServiceAccount admission plugin requires of every
// pod there; in a full cluster the controller manager creates it.
func (l *Lab) EnsureDefaultServiceAccount(ctx context.Context, namespace string) error {
	_, err := l.Admin.CoreV1().ServiceAccounts(namespace).Create(ctx, &serviceAccountDefault, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// New starts a lab for one test and stops it, removing everything it
// wrote, when the test and its subtests end, passed or failed
// (t.Cleanup). A lab that does not start fails the test.
func New(t testing.TB, o Options) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start the lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("stop the lab: %v", err)
		}
	})
	return l
}
