# followgraph. `make help` lists the targets.

GO          ?= go
BIN         := $(CURDIR)/bin
TOOLS       := $(BIN)/tools
STATICCHECK := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2
FUZZTIME    ?= 30s
BENCHTIME   ?= 1s
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)

.PHONY: help build run deps test test-short lint fuzz bench bench-memory tidy-check clean chaos chaos-scale soak check-monitoring lifecycle

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build followd, followctl and followbench into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run: build ## start a single-node followd with the embedded defaults (data in ./followd-data)
	$(BIN)/followd $(ARGS)

deps: ## install what tests need beyond Go modules (redis-server), if absent
	@./.ci/deps.sh

test: deps ## run every test with the race detector (a few minutes)
	$(GO) test -race -count=1 -timeout 20m ./...

test-short: ## the quick subset, without -race
	$(GO) test -short -count=1 ./...

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -s -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	 if [ -n "$$out" ]; then echo "gofmt -s needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lifecycle: ## the data lifecycle at scale: import a generated 5M-edge graph, export, diff, re-import, verify, remove the top user (LIFECYCLE_USERS, 250k)
	$(GO) test -tags lifecycle -count=1 -timeout 60m -v -run '^TestLifecycle$$' ./test/e2e/ -args -lifecycle-users $(LIFECYCLE_USERS)

check-monitoring: deps ## check monitoring/alerts.yml with promtool (the metric names of it and of the dashboard are checked by make test)
	promtool check rules monitoring/alerts.yml

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@./.ci/fuzz.sh $(FUZZTIME)

# Fault injection (test/chaos, docs/RELIABILITY.md): a real cluster of
# followd processes, each in its own network namespace (root), under a
# recorded workload and a seeded fault schedule.
CHAOS_SEEDS    ?= 1,2,random
CHAOS_DURATION ?= 60s
CHAOS_NODES    ?= 3
CHAOS_NETNS    ?= true
DURATION       ?= 10m
LIFECYCLE_USERS ?= 250000
CHAOS_FLAGS     = -nodes $(CHAOS_NODES) -netns=$(CHAOS_NETNS) -bin $(BIN)

chaos: build ## fault-injection runs, one per seed (CHAOS_SEEDS, CHAOS_DURATION each, CHAOS_NODES); artifacts in chaos-out/
	$(GO) test -tags chaos -count=1 -timeout 180m -v -run '^TestChaos$$' ./test/chaos/ -args -seeds '$(CHAOS_SEEDS)' -duration $(CHAOS_DURATION) $(CHAOS_FLAGS)

# The scale mode: the same suite on 64 shards holding a preloaded
# power-law graph of CHAOS_SCALE_USERS users, under a background load.
CHAOS_SCALE_USERS    ?= 100000
CHAOS_SCALE_SHARDS   ?= 64
CHAOS_SCALE_DURATION ?= 3m
CHAOS_SCALE_SEEDS    ?= 1

chaos-scale: build ## the fault suite at scale: CHAOS_SCALE_SHARDS (64) shards, a CHAOS_SCALE_USERS (100k) user graph under background load, CHAOS_SCALE_DURATION (3m), seed CHAOS_SCALE_SEEDS
	$(GO) test -tags chaos -count=1 -timeout 90m -v -run '^TestChaos$$' ./test/chaos/ -args -seeds '$(CHAOS_SCALE_SEEDS)' -duration $(CHAOS_SCALE_DURATION) $(CHAOS_FLAGS) -shards $(CHAOS_SCALE_SHARDS) -background $(CHAOS_SCALE_USERS)

soak: build ## a long run (DURATION, default 10m) under load and periodic faults; goroutines, RSS and fds must stay flat
	$(GO) test -tags chaos -count=1 -timeout 0 -v -run '^TestSoak$$' ./test/chaos/ -args -seeds 1 -duration $(DURATION) $(CHAOS_FLAGS)

bench: ## run the Go benchmarks (BENCHTIME, default 1s)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem ./...

bench-memory: ## bytes per edge at 1M users / 20M edges, ours and a naive map-of-maps
	$(GO) test ./shard/ -run '^$$' -bench 'BenchmarkMemoryPerEdge' -benchtime 1x -timeout 60m

tidy-check: ## fail if go.mod or go.sum are not tidy
	@cp go.mod /tmp/followgraph.go.mod.bak && cp go.sum /tmp/followgraph.go.sum.bak
	@$(GO) mod tidy
	@if ! cmp -s go.mod /tmp/followgraph.go.mod.bak || ! cmp -s go.sum /tmp/followgraph.go.sum.bak; then \
	   echo "go.mod/go.sum are not tidy; run go mod tidy"; \
	   cp /tmp/followgraph.go.mod.bak go.mod; cp /tmp/followgraph.go.sum.bak go.sum; exit 1; fi

clean: ## remove build outputs
	rm -rf $(BIN)

# Docker: an image FROM scratch holding static followd and followctl, and a
# three-node cluster on one host (docker-compose.yml; docs/OPERATIONS.md,
# "Running a cluster"). Nothing is pulled from a registry.

IMAGE           ?= followgraph/followd
LINUX_BIN       := $(BIN)/linux
COMPOSE_FILE    ?= docker-compose.yml
COMPOSE_PROJECT ?= followgraph
CLUSTER_WAIT    ?= 60
# Compose v2 (docker compose) if the docker CLI has it, else the v1 binary.
COMPOSE         ?= $(shell if docker compose version >/dev/null 2>&1; then echo docker compose; \
                     elif command -v docker-compose >/dev/null 2>&1; then echo docker-compose; \
                     else echo docker-compose-not-found; fi)
COMPOSE_CMD      = FOLLOWD_IMAGE=$(IMAGE) $(COMPOSE) -f $(COMPOSE_FILE) -p $(COMPOSE_PROJECT)

.PHONY: image cluster-up cluster-down cluster-status certs cluster-up-tls cluster-down-tls

# TLS: scripts/gencerts makes a CA and the compose nodes' certificates
# (their service names and 127.0.0.1 in the SANs) and client ones in
# CERTS_DIR (gitignored); docker-compose.tls.yml mounts it read-only.
CERTS_DIR     ?= $(CURDIR)/certs
CERTS_NODES   ?= -node node1=node1,127.0.0.1,localhost,172.28.0.11 -node node2=node2,127.0.0.1,localhost,172.28.0.12 -node node3=node3,127.0.0.1,localhost,172.28.0.13
CERTS_CLIENTS ?= -client admin -client reader -client prometheus
COMPOSE_TLS_CMD = FOLLOWD_IMAGE=$(IMAGE) CERTS_DIR=$(CERTS_DIR) $(COMPOSE) -f $(COMPOSE_FILE) -f docker-compose.tls.yml -p $(COMPOSE_PROJECT)
TLS_CTL_ENV     = FOLLOWCTL_TLS_CA=$(CERTS_DIR)/ca.crt FOLLOWCTL_TLS_CERT=$(CERTS_DIR)/admin.crt FOLLOWCTL_TLS_KEY=$(CERTS_DIR)/admin.key

image: ## build static followd and followctl into bin/linux/, then the image followgraph/followd:VERSION and :latest
	@mkdir -p $(LINUX_BIN)/data
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(LINUX_BIN)/followd ./cmd/followd
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(LINUX_BIN)/followctl ./cmd/followctl
	docker build -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

cluster-up: image build ## start the 3-node compose cluster (client ports 127.0.0.1:17700-17702) and wait for it
	$(COMPOSE_CMD) up -d
	@./scripts/cluster-wait.sh -t $(CLUSTER_WAIT) -c $(BIN)/followctl 127.0.0.1:17700 127.0.0.1:17701 127.0.0.1:17702 || \
	  { echo "see: $(COMPOSE_CMD) logs"; exit 1; }

cluster-down: ## stop the compose cluster and delete its data volumes
	$(COMPOSE_CMD) down -v

cluster-status: ## the compose cluster's containers and followctl status through node1
	$(COMPOSE_CMD) ps
	@$(BIN)/followctl --addr 127.0.0.1:17700 status

certs: ## a test CA, certificates for the compose nodes and clients admin, reader, prometheus, and a gossip key, in CERTS_DIR (./certs; an existing CA and key there are reused)
	$(GO) run ./scripts/gencerts -out $(CERTS_DIR) -gossip-key $(CERTS_NODES) $(CERTS_CLIENTS)
	@chmod a+r $(CERTS_DIR)/node*.key $(CERTS_DIR)/gossip.key # the containers run as nobody; test keys only

cluster-up-tls: image build ## the compose cluster with every security option (docker-compose.tls.yml): mutual TLS on client and raft ports, HTTPS, encrypted gossip; certificates from make certs
	@test -f $(CERTS_DIR)/gossip.key || $(MAKE) certs
	$(COMPOSE_TLS_CMD) up -d
	@$(TLS_CTL_ENV) ./scripts/cluster-wait.sh -t $(CLUSTER_WAIT) -c $(BIN)/followctl 127.0.0.1:17700 127.0.0.1:17701 127.0.0.1:17702 || \
	  { echo "see: $(COMPOSE_TLS_CMD) logs"; exit 1; }

cluster-down-tls: ## stop the TLS compose cluster and delete its data volumes
	$(COMPOSE_TLS_CMD) down -v
