package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodNetwork stands in for the cluster's pod network, which the lab does
// not have: a loopback HTTP forward proxy that the kube-apiserver is
// started behind (HTTP_PROXY in its environment, Options.PodNetwork).
// The API server refuses to proxy to a loopback pod IP (pods/proxy wants
// a global unicast address), so a pod gets an address of 10.244.0.0/16
// (its status.podIP, AttachPod), and the API server's pods/proxy request
// for http://<pod IP>:<port>/... goes to this proxy, which answers it with
// the handler attached to that pod and port. Nothing listens anywhere but
// on 127.0.0.1, and the proxy reaches nothing but its handlers.
//
// The proxied request does not carry the pod IP (Go's transport writes
// the Host of the client's request, the API server's, into the request
// line): the proxy knows the pod by the X-Forwarded-Uri that the API
// server's proxy adds, /api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/...
type PodNetwork struct {
	srv  *http.Server
	addr string

	mu     sync.Mutex
	routes map[string]http.Handler
	next   int
}

// StartPodNetwork listens on a free loopback port.
func StartPodNetwork() (*PodNetwork, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &PodNetwork{addr: ln.Addr().String(), routes: map[string]http.Handler{}}
	n.srv = &http.Server{Handler: n, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = n.srv.Serve(ln) }()
	return n, nil
}

// ProxyURL is the proxy's URL, for HTTP_PROXY.
func (n *PodNetwork) ProxyURL() string { return "http://" + n.addr }

// nextIP returns an unused pod IP of 10.244.0.0/16.
func (n *PodNetwork) nextIP() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	return fmt.Sprintf("10.244.%d.%d", n.next/250, n.next%250+1)
}

func routeKey(namespace, pod, port string) string { return namespace + "/" + pod + ":" + port }

// handle serves h for namespace/pod on port.
func (n *PodNetwork) handle(namespace, pod string, port int, h http.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.routes[routeKey(namespace, pod, strconv.Itoa(port))] = h
}

// ServeHTTP answers a proxied pods/proxy request with the handler of its
// pod and port, or 502 as a network without that endpoint would.
func (n *PodNetwork) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect || r.URL.Host == "" {
		http.Error(w, "lab pod network: only plain-HTTP proxy requests", http.StatusMethodNotAllowed)
		return
	}
	// /api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/...
	parts := strings.SplitN(strings.TrimPrefix(r.Header.Get("X-Forwarded-Uri"), "/"), "/", 7)
	var h http.Handler
	endpoint := r.Header.Get("X-Forwarded-Uri")
	if len(parts) >= 6 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods" && parts[5] != "" {
		pod, port, _ := strings.Cut(parts[5], ":")
		endpoint = routeKey(parts[3], pod, port)
		n.mu.Lock()
		h = n.routes[endpoint]
		n.mu.Unlock()
	}
	if h == nil {
		http.Error(w, "lab pod network: nothing serves "+endpoint, http.StatusBadGateway)
		return
	}
	// The handler sees the request as the pod would: a path, no scheme.
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host = "", ""
	r2.RequestURI = r2.URL.RequestURI()
	h.ServeHTTP(w, r2)
}

// Close stops the proxy.
func (n *PodNetwork) Close() error {
	if err := n.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// PprofHandler serves net/http/pprof under /debug/pprof/, of this
// process: what a Go program's pprof endpoint serves.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	return mux
}

// AttachPod gives the existing pod namespace/name an IP of the pod
// network (status.podIP, phase Running, written as the admin through the
// status subresource, as a kubelet would) and serves h at that IP and
// port. It returns the IP.
func (l *Lab) AttachPod(ctx context.Context, namespace, name string, port int, h http.Handler) (string, error) {
	if l.Pods == nil {
		return "", errors.New("lab: no pod network (Options.PodNetwork)")
	}
	pods := l.Admin.CoreV1().Pods(namespace)
	p, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	ip := l.Pods.nextIP()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = ip
	p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	if _, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return "", fmt.Errorf("lab: status of pod %s/%s: %w", namespace, name, err)
	}
	l.Pods.handle(namespace, name, port, h)
	return ip, nil
}
