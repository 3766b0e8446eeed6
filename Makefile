# leakguard: build, generate, verify and test.
#
# make test      Go tests, the e2e tests against a real kube-apiserver and
#                etcd, generated files up to date, promtool checks and unit
#                tests of the rules, the shared memory-trace suite, and the
#                fleet tests on VictoriaMetrics.
# make e2e       the e2e tests alone (builds kube-apiserver and etcd once, see
#                hack/e2e-binaries.sh).
# make e2e-node  the real-node tests (test/e2e/node): a kubelet, containerd,
#                controller manager, scheduler and kube-state-metrics on
#                loopback, as root (builds them once, see
#                hack/node-binaries.sh), and the alert chain's scenarios on
#                it (about 4.5 minutes; part of make test).
# make generate  rewrite every generated file under deploy/, the Helm chart
#                deploy/helm/leakguard included.
# make chart-test the Helm chart with the Helm library (deploy/helm/test, a
#                module of its own): lint, templates, the default render
#                against kustomize's, a server-side dry-run on the lab's
#                kube-apiserver (part of make test).
# make bench     benchmarks, long fuzzing, the receiver's load run and the
#                agent's memory run (not part of make test).
# make bench-recommend  leakguard recommend's method against KRR and the
#                VPA recommender on a synthetic population (not part of
#                make test).
# make demo      the whole alert chain on loopback with a leak, printed as a
#                timeline; Ctrl-C stops it (test/e2e/demo). On the real node
#                where the host can run it (as make e2e-node: root, a
#                writable memory cgroup, no other containerd or kubelet;
#                the node's binaries built on first use, about 8 minutes),
#                the synthetic lab otherwise; its first line says which and
#                why. LEAKGUARD_DEMO_LAB=synthetic or =node forces one (node
#                fails, saying why, where the host cannot run it); about 5
#                minutes on the real node, 1.5 on the synthetic lab.
# make image     the container image $(IMAGE):$(VERSION), with docker,
#                podman or buildah (ENGINE=... to choose).
# make rules-cost the rule file's evaluation cost in the real Prometheus
#                against kube-prometheus's working-set rule, at 300
#                containers (about 4 minutes); fails above 4.5 times.
# make fleet     the fleet tests (test/fleet): the rules and the routing on
#                VictoriaMetrics + vmalert (and the trace suite through
#                vmalert's replay) and on Thanos (two Prometheus with
#                sidecars, Query, Ruler) with a real Alertmanager (about 2
#                minutes; part of make test).
# make fleet-thanos the Thanos test alone (builds thanos once, about 4
#                minutes on 2 cores, see hack/fleet-binaries.sh).

GO       ?= go
PROMTOOL ?= promtool
PROMETHEUS ?= prometheus
# Sizes of the synthetic cluster make bench-rules measures the rule file at.
RULECOST_SIZES ?= 1000 10000 50000
SHARED   ?= $(abspath ../shared)
BIN      ?= bin/leakguard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE    ?= ghcr.io/leakguard/leakguard
# make test runs each fuzz target for a fixed number of executions (about
# what 10 s gives on 2 cores): Go 1.26's coordinator can fail a duration-bound
# run with a bare "context deadline exceeded" under load (golang/go#75804).
# make bench fuzzes by duration, longer.
FUZZCOUNT ?= 20000x
BENCH_FUZZTIME ?= 2m
FUZZ_TARGETS := server:FuzzDecodeMessage server:FuzzHandler remediate:FuzzParsePolicy cgroups:FuzzParsePodDir

RULES_FILE := deploy/prometheus/rules.yaml
PROMRULE   := deploy/kubernetes/prometheusrule.yaml

.PHONY: chart-test bench-recommend bench-detection all build image generate verify test go-test e2e e2e-node fleet fleet-thanos rules-check rules-test rules-cost traces lint bench bench-rules bench-receiver bench-agent clean dashboards-check demo

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/leakguard

# The image that deploy/ names (its kustomizations' images: newTag): build
# a release with make image VERSION=v0.1.0. The Dockerfile cross-compiles
# for TARGETOS/TARGETARCH; docker buildx build --platform builds several.
image:
	hack/image.sh $(IMAGE) $(VERSION)

generate:
	$(GO) run ./cmd/leakguard generate --out-dir deploy --chart-from deploy
	hack/policy-copy.sh deploy

# verify regenerates into a scratch directory and compares it with deploy/,
# then renders deploy/'s kustomizations and checks them without a cluster
# (deploy/deploy_test.go; make e2e dry-runs them on a real kube-apiserver),
# with the main module's kustomize and with the one kubectl 1.32 bundles
# (the module test/kustomize-v5.5).
verify:
	hack/verify-generated.sh
	$(GO) test -count=1 ./deploy/

test: go-test e2e e2e-node chart-test verify rules-check rules-test traces dashboards-check rules-cost fleet

go-test: dashboards/schema/node_modules
	$(GO) vet ./...
	cd test/kustomize-v5.5 && $(GO) vet .
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -e '/test/e2e' -e '/test/fleet')
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "$(GO) test -run '^$$' -fuzz '^$${t#*:}$$' -fuzztime $(FUZZCOUNT) ./$${t%%:*}/"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZCOUNT) -fuzzminimizetime 100x ./$${t%%:*}/; \
	done

# The e2e tests need kube-apiserver and etcd (built from source into a cache
# on the first run, about 6 minutes and 1 minute); with
# LEAKGUARD_E2E=1 they fail rather than skip when either is missing. The
# real node's tests (test/e2e/node) are make e2e-node's.
e2e:
	@bin=$$(hack/e2e-binaries.sh) && pkgs=$$($(GO) list ./test/e2e/... | grep -v '/test/e2e/node$$') && \
	  echo "LEAKGUARD_E2E=1 LEAKGUARD_E2E_BIN=$$bin $(GO) test -count=1 -timeout 10m <./test/e2e/... but ./test/e2e/node>" && \
	  LEAKGUARD_E2E=1 LEAKGUARD_E2E_BIN="$$bin" $(GO) test -count=1 -timeout 10m $$pkgs

# The chart's tests (deploy/helm/test, its own module with helm.sh/helm/v4);
# the dry-run needs kube-apiserver and etcd, as make e2e.
chart-test:
	@bin=$$(hack/e2e-binaries.sh) && cd deploy/helm/test && \
	  $(GO) vet ./... && \
	  echo "(cd deploy/helm/test && LEAKGUARD_E2E=1 LEAKGUARD_E2E_BIN=$$bin $(GO) test -count=1 -timeout 10m ./...)" && \
	  LEAKGUARD_E2E=1 LEAKGUARD_E2E_BIN="$$bin" $(GO) test -count=1 -timeout 10m ./...

# The real-node tests need root, a writable memory cgroup, Debian's
# containerd and runc (.ci/run installs them), no other containerd on
# /run/containerd/containerd.sock, prometheus and prometheus-alertmanager,
# and the kubelet, kube-controller-manager, kube-scheduler and
# kube-state-metrics that hack/node-binaries.sh builds from source once
# (about 8 minutes on 2 cores with kube-apiserver's caches warm). With
# LEAKGUARD_E2E=1, as here, a host that cannot run a kubelet fails them,
# saying why; LEAKGUARD_E2E_NODE=1 instead runs them where the host can and
# skips them, saying why, where it cannot; with neither they skip.
e2e-node:
	@bin=$$(hack/node-binaries.sh) && \
	  echo "LEAKGUARD_E2E=1 LEAKGUARD_E2E_BIN=$$bin $(GO) test -count=1 -timeout 15m -v ./test/e2e/node/" && \
	  LEAKGUARD_E2E=1 LEAKGUARD_E2E_BIN="$$bin" $(GO) test -count=1 -timeout 15m -v ./test/e2e/node/ && \
	  echo "LEAKGUARD_E2E=1 LEAKGUARD_E2E_NODE=1 LEAKGUARD_E2E_BIN=$$bin $(GO) test -count=1 -timeout 15m -v -run '^TestDemoOnRealNode$$' ./test/e2e/demo/" && \
	  LEAKGUARD_E2E=1 LEAKGUARD_E2E_NODE=1 LEAKGUARD_E2E_BIN="$$bin" $(GO) test -count=1 -timeout 15m -v -run '^TestDemoOnRealNode$$' ./test/e2e/demo/

# The fleet tests need victoria-metrics and vmalert (Debian's victoria-metrics
# package), thanos (hack/fleet-binaries.sh builds it from source once),
# kube-apiserver and etcd (hack/e2e-binaries.sh, for the Thanos test's
# leakguard serve per cluster), prometheus, promtool and
# prometheus-alertmanager; with
# LEAKGUARD_FLEET=1 they fail rather than skip when one is missing.
fleet:
	@bin=$$(hack/fleet-binaries.sh) && kube=$$(hack/e2e-binaries.sh) && \
	  echo "LEAKGUARD_FLEET=1 LEAKGUARD_FLEET_BIN=$$bin LEAKGUARD_E2E_BIN=$$kube $(GO) test -count=1 -timeout 10m ./test/fleet/..." && \
	  LEAKGUARD_FLEET=1 LEAKGUARD_FLEET_BIN="$$bin" LEAKGUARD_E2E_BIN="$$kube" $(GO) test -count=1 -timeout 10m ./test/fleet/...

# The Thanos test alone: thanos (built and cached by hack/fleet-binaries.sh),
# kube-apiserver and etcd for each cluster's leakguard serve
# (hack/e2e-binaries.sh), prometheus, promtool and prometheus-alertmanager;
# no VictoriaMetrics.
fleet-thanos:
	@bin=$$(LINK_VM=0 hack/fleet-binaries.sh) && kube=$$(hack/e2e-binaries.sh) && \
	  echo "LEAKGUARD_FLEET=1 LEAKGUARD_FLEET_BIN=$$bin LEAKGUARD_E2E_BIN=$$kube $(GO) test -count=1 -timeout 5m -run 'Thanos|RemoteWrite|ActiveSince' ./test/fleet/" && \
	  LEAKGUARD_FLEET=1 LEAKGUARD_FLEET_BIN="$$bin" LEAKGUARD_E2E_BIN="$$kube" $(GO) test -count=1 -timeout 5m -run 'Thanos|RemoteWrite|ActiveSince' ./test/fleet/

# The demo installs or builds what is missing itself (Debian packages when
# run as root, kube-apiserver through hack/e2e-binaries.sh, and for the
# real node containerd and runc, and the kubelet, kube-controller-manager,
# kube-scheduler and kube-state-metrics through hack/node-binaries.sh),
# with progress. Its lab: LEAKGUARD_DEMO_LAB=auto (the default: the real
# node where lab.CheckNodeHost allows it, the synthetic lab otherwise),
# synthetic or node; DEMO_FLAGS=--lab=... says the same.
# DEMO_FLAGS=--exit-after-scenario stops once the scenario has played out.
# Quiet, so that the demo's first line, the lab it runs, is the first line.
demo:
	@$(GO) build -o bin/leakguard-demo ./test/e2e/demo
	@bin/leakguard-demo $(DEMO_FLAGS)

# promtool check rules on the plain rule file and on the PrometheusRule's spec.
rules-check:
	$(PROMTOOL) check rules $(RULES_FILE)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(GO) run ./tools/promrule-spec $(PROMRULE) > "$$tmp/spec.yaml" && \
	  echo "$(PROMTOOL) check rules <spec of $(PROMRULE)>" && \
	  $(PROMTOOL) check rules "$$tmp/spec.yaml"

# Every committed dashboard type-checks against Grafana's schema (the pinned
# @grafana/schema; run 'npm ci' in dashboards/schema first, as .ci/run does).
dashboards-check: dashboards/schema/node_modules
	dashboards/schema/check.sh deploy/grafana/*.json

dashboards/schema/node_modules: dashboards/schema/package-lock.json
	cd dashboards/schema && npm ci --no-audit --no-fund
	@touch $@

rules-test:
	$(PROMTOOL) test rules rules/testdata/*.test.yaml

# The rule file's amortized evaluation cost (each group's evaluation time
# over its interval, summed) as a ratio to kube-prometheus's working-set
# rule, both measured in the same Prometheus 2.42 over a backfilled
# 300-container cluster (tools/rulecost, docs/performance.md); fails above
# 4.5 (the file measures 2.7 on a quiet machine, 3.6 on a loaded one, at
# this size). A ratio, never an absolute time.
rules-cost:
	LEAKGUARD_RULECOST=1 PROMTOOL=$(PROMTOOL) PROMETHEUS=$(PROMETHEUS) \
	  $(GO) test -count=1 -timeout 15m -run '^TestRuleCost$$' -v ./tools/rulecost/

traces:
	$(SHARED)/traces/run.sh $(RULES_FILE)

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Detection and lead times on the shared traces, beside the rules of the
# commit before the three trends and two usual rules (docs/performance.md).
bench-detection:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  git show dff8c7b:deploy/prometheus/rules.yaml > "$$tmp/before.yaml" && \
	  $(GO) run ./tools/detection -cases $(SHARED)/traces/cases \
	    increase=tools/detection/reference/increase-usage.yaml \
	    predict_linear=tools/detection/reference/predict-linear.yaml \
	    before="$$tmp/before.yaml" leakguard=$(RULES_FILE) && \
	  hack/fast-leak-sweep.py $(RULES_FILE) && \
	  hack/from-start-sweep.py $(RULES_FILE)

# leakguard recommend's method against KRR's simple and simple-oom and the
# VPA recommender's memory logic, on a synthetic population with known
# ground truth (docs/performance.md; seconds, deterministic).
bench-recommend:
	$(GO) run ./tools/benchrecommend

bench: bench-detection
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@set -e; for t in $(FUZZ_TARGETS); do \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(BENCH_FUZZTIME) ./$${t%%:*}/; \
	done
	hack/rules-bench.sh 1000 180
	$(MAKE) bench-receiver bench-agent bench-rules

# The receiver's load run against the decode-only reference (about 3
# minutes; loopback only, bounded in requests and time).
bench-receiver:
	$(GO) run ./tools/loadgen

# The node agent's resident memory, the agent's own program and the whole
# binary, scanning a generated 20,000-cgroup tree (fixture on tmpfs, which
# like cgroupfs has nothing to read back from disk).
bench-agent:
	$(GO) build -o bin/leakguard-agent ./cmd/leakguard-agent
	$(GO) build -o $(BIN) ./cmd/leakguard
	TMPDIR=/dev/shm $(GO) run ./cgroups/testdata/rss -bin bin/leakguard-agent -duration 200s -interval 60s -scrape-every 30s
	TMPDIR=/dev/shm $(GO) run ./cgroups/testdata/rss -bin bin/leakguard-agent -duration 60s -interval 1s -scrape-every 1s
	TMPDIR=/dev/shm $(GO) run ./cgroups/testdata/rss -bin $(BIN) -duration 60s -interval 1s -scrape-every 1s

# The rule-cost table of docs/performance.md: the rule file in the real
# Prometheus at each size. The raw series are written as TSDB blocks by
# tools/tsdbblocks (its own module: Prometheus 2.42's tsdb package), which
# takes seconds where promtool's OpenMetrics backfill took half an hour at
# 10,000 containers; the recorded series are still backfilled by promtool.
# From 50,000 containers on, two rounds of two evaluations, so that the
# measurement ends within Prometheus's 5-minute lookback.
bench-rules:
	cd tools/tsdbblocks && $(GO) build -o ../../bin/tsdbblocks .
	@set -e; for n in $(RULECOST_SIZES); do \
	  few=; [ $$n -lt 50000 ] || few="-rounds 2 -evals 2"; \
	  echo "$(GO) run ./tools/rulecost -containers $$n -blocks bin/tsdbblocks $$few -rules $(RULES_FILE)"; \
	  $(GO) run ./tools/rulecost -containers $$n -blocks bin/tsdbblocks $$few -rules $(RULES_FILE) -prometheus $(PROMETHEUS) -promtool $(PROMTOOL); \
	done

clean:
	rm -rf bin
