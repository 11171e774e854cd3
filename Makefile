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

.PHONY: help build run deps test test-short lint fuzz bench bench-memory tidy-check clean

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

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@./.ci/fuzz.sh $(FUZZTIME)

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
