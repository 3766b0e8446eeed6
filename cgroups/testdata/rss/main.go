// Command rss measures the resident memory of the real leakguard agent
// binary scanning a generated 20,000-cgroup v2 tree, with a fake API server
// on loopback that lists the node's bound pods and holds the watch open. It
// is a measuring tool for docs/performance.md, not a test; it lives under
// testdata so that go build ./... and go test ./... leave it alone.
//
//	go build -o bin/leakguard ./cmd/leakguard && go run ./cgroups/testdata/rss -bin bin/leakguard
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/leakguard", "leakguard binary to measure")
	root := flag.String("root", "", "existing cgroup v2 root to scan instead of a generated tree")
	pods := flag.Int("pods", 3999, "pod cgroups to generate (each with -containers containers)")
	containers := flag.Int("containers", 4, "container cgroups per pod")
	bound := flag.Int("bound", 100, "pods bound to the node (listed by the fake API server)")
	duration := flag.Duration("duration", 60*time.Second, "how long to run the agent")
	interval := flag.String("interval", "1s", "the agent's --interval (short, to stress it)")
	memlimit := flag.String("gomemlimit", "", "GOMEMLIMIT for the agent; empty leaves it unset")
	scrapeEvery := flag.Duration("scrape-every", 30*time.Second, "how often to scrape /metrics, as Prometheus would")
	extra := flag.String("agent-args", "", "more agent arguments, space-separated (e.g. --remove-empty-orphans)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "leakguard-rss-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var uids []string
	for i := range *bound {
		uids = append(uids, uid(i))
	}
	if *root == "" {
		*root = filepath.Join(dir, "cgroup")
		start := time.Now()
		n := generate(*root, *pods, *containers, *bound)
		log.Printf("generated %d cgroups in %s", n, time.Since(start).Round(time.Millisecond))
	}

	api := &http.Server{Handler: fakeAPI("node-a", uids)}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go api.Serve(apiLn)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	must(os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://%s"}}]
users: [{name: u, user: {}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, apiLn.Addr())), 0o600))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"agent", "--node-name=node-a", "--cgroup-root=" + *root, "--kubeconfig=" + kubeconfig,
		"--listen-address=" + addr, "--interval=" + *interval, "--grace-period=1s", "--log-level=warn"}
	cmd := exec.Command(*bin, append(args, strings.Fields(*extra)...)...)
	cmd.Env = append(os.Environ(), "KUBE_FEATURE_WatchListClient=false")
	if *memlimit != "" {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+*memlimit)
	}
	cmd.Stderr = os.Stderr
	must(cmd.Start())
	defer cmd.Process.Kill()

	var maxRSS, maxAnon int
	deadline := time.Now().Add(*duration)
	lastScrape := time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		maxRSS = max(maxRSS, statusKB(cmd.Process.Pid, "VmRSS"))
		maxAnon = max(maxAnon, statusKB(cmd.Process.Pid, "RssAnon"))
		if time.Since(lastScrape) >= *scrapeEvery {
			scrape(addr)
			lastScrape = time.Now()
		}
	}
	metrics := scrape(addr)
	pid := cmd.Process.Pid
	fmt.Printf("VmRSS now %.1f MiB (RssAnon %.1f MiB + RssFile %.1f MiB), max sampled VmRSS %.1f MiB, max sampled RssAnon %.1f MiB, VmHWM (peak) %.1f MiB\n",
		mib(statusKB(pid, "VmRSS")), mib(statusKB(pid, "RssAnon")), mib(statusKB(pid, "RssFile")), mib(maxRSS), mib(maxAnon), mib(statusKB(pid, "VmHWM")))
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "leakguard_node_") ||
			strings.HasPrefix(l, "go_memstats_heap_inuse_bytes") || strings.HasPrefix(l, "go_memstats_sys_bytes") ||
			strings.HasPrefix(l, "go_memstats_stack_inuse_bytes") || strings.HasPrefix(l, "go_goroutines") {
			fmt.Println(l)
		}
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	api.Shutdown(context.Background())
}

func mib(kb int) float64 { return float64(kb) / 1024 }

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func uid(n int) string { return fmt.Sprintf("%08x-1111-4222-8333-%012x", n, n) }

// generate writes a v2 systemd-driver tree like the benchmark's and returns
// the number of cgroups in it.
func generate(root string, pods, containers, bound int) int {
	n := 0
	mk := func(dir string, populated bool) {
		must(os.MkdirAll(dir, 0o755))
		p := "0"
		if populated {
			p = "1"
		}
		must(os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644))
		must(os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated "+p+"\nfrozen 0\n"), 0o644))
		n++
	}
	mk(root, true)
	must(os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644))
	mk(filepath.Join(root, "kubepods.slice"), true)
	qos := []string{"", "burstable", "besteffort"}
	for _, q := range qos[1:] {
		mk(filepath.Join(root, "kubepods.slice", "kubepods-"+q+".slice"), true)
	}
	for i := range pods {
		u := strings.ReplaceAll(uid(i), "-", "_")
		var pod string
		if q := qos[i%3]; q == "" {
			pod = filepath.Join(root, "kubepods.slice", "kubepods-pod"+u+".slice")
		} else {
			pod = filepath.Join(root, "kubepods.slice", "kubepods-"+q+".slice", "kubepods-"+q+"-pod"+u+".slice")
		}
		busy := i < bound || (i-bound)%2 == 1
		mk(pod, busy)
		for c := range containers {
			mk(filepath.Join(pod, fmt.Sprintf("cri-containerd-%064x.scope", i*containers+c)), busy && c == containers-1)
		}
	}
	must(os.WriteFile(filepath.Join(root, "cgroup.stat"), []byte(fmt.Sprintf("nr_descendants %d\nnr_dying_descendants 0\n", n-1)), 0o644))
	return n
}

// fakeAPI lists the node's pods and holds every watch open until the client
// goes away.
func fakeAPI(node string, uids []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/pods" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		type meta struct {
			Name            string            `json:"name,omitempty"`
			Namespace       string            `json:"namespace,omitempty"`
			UID             string            `json:"uid,omitempty"`
			ResourceVersion string            `json:"resourceVersion,omitempty"`
			Labels          map[string]string `json:"labels,omitempty"`
		}
		type pod struct {
			Meta meta `json:"metadata"`
			Spec struct {
				NodeName   string           `json:"nodeName"`
				Containers []map[string]any `json:"containers"`
			} `json:"spec"`
		}
		list := struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Meta       meta   `json:"metadata"`
			Items      []pod  `json:"items"`
		}{Kind: "PodList", APIVersion: "v1", Meta: meta{ResourceVersion: "100"}}
		for i, u := range uids {
			p := pod{Meta: meta{Name: fmt.Sprintf("pod-%d", i), Namespace: "default", UID: u, ResourceVersion: "100",
				Labels: map[string]string{"app": "web", "pod-template-hash": "7d5c8b6f9"}}}
			p.Spec.NodeName = node
			p.Spec.Containers = []map[string]any{{"name": "app", "image": "registry.example/app:1.2.3",
				"env": []map[string]string{{"name": "A", "value": strings.Repeat("x", 512)}}}}
			list.Items = append(list.Items, p)
		}
		json.NewEncoder(w).Encode(list)
	})
}

// scrape fetches /metrics and returns it; errors return "".
func scrape(addr string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// statusKB reads one "Vm...: N kB" line of /proc/<pid>/status.
func statusKB(pid int, key string) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}
