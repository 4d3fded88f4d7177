# Performance suite (issue 8). Included from the Makefile:
#   -include build/bench.mk
# and the Makefile's `bench` target becomes: bench: bench-suite
BENCH_OUT   ?= bench-out/bench.json
BENCH_ARGS  ?=

.PHONY: bench-tools
bench-tools: ## install the comparison tools (k6, vegeta from the Go proxy; wrk from Debian)
	@command -v k6 >/dev/null || test -x "$$($(GO) env GOPATH)/bin/k6" || GOFLAGS= $(GO) install go.k6.io/k6@v1.8.1
	@command -v vegeta >/dev/null || test -x "$$($(GO) env GOPATH)/bin/vegeta" || GOFLAGS= $(GO) install github.com/tsenart/vegeta/v12@v12.13.0
	@command -v wrk >/dev/null || apt-get -o DPkg::Lock::Timeout=120 install -y wrk || echo "wrk: not installed (the suite reports its figure as null)"

.PHONY: bench-go
bench-go: ## Go benchmarks of the hot paths (watermark, oracle, metrics, replay parsing) with allocations
	$(GO) test -run '^$$' -bench . -benchmem -count 5 -timeout 30m ./models/... ./harness/oracle/... ./internal/bench/... ./harness/driver/...

.PHONY: bench-suite
bench-suite: bench-tools ## the full suite: telechaos bench, JSON in $(BENCH_OUT) and a table
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/telechaos ./cmd/telechaos
	./bin/telechaos bench --out $(BENCH_OUT) $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: ## the suite in under 5 minutes (tools installed beforehand)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/telechaos ./cmd/telechaos
	./bin/telechaos bench --quick --out $(BENCH_OUT) $(BENCH_ARGS)
