# telechaos: property/chaos harness and load simulator for telehealth video systems.
# `make help` lists the targets.

GO       ?= go
PKGS     ?= ./...
# make test must stay well under CI's limit; the slowest packages run media calls.
TEST_TIMEOUT ?= 25m
# make test-short is the developer loop: a few minutes at most, even loaded.
SHORT_TIMEOUT ?= 10m
RUN_ARGS ?=

export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := 127.0.0.1

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## download Go modules (the only thing make test needs besides Go and Docker)
	$(GO) mod download

.PHONY: run
run: ## run the default scenario (smoke) against the embedded clinic
	$(GO) run ./cmd/telechaos run $(RUN_ARGS)

.PHONY: clinic
clinic: ## start the reference clinic on 127.0.0.1:8088 (data in ./clinic-data)
	$(GO) run ./cmd/clinic --data ./clinic-data --addr 127.0.0.1:8088

.PHONY: test
test: deps test-deps ## run every test (Docker tests skip without an engine unless CI=true)
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

.PHONY: test-short
test-short: ## fast tier for the developer loop: go test -short (media calls, Docker, property runs skip; make test runs them)
	$(GO) test -short -count=1 -timeout $(SHORT_TIMEOUT) $(PKGS)

.PHONY: race
race: ## run the tests of the pure and concurrent packages under the race detector
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./models/... ./harness/oracle/... ./harness/drivertest/... ./clinic/bugs/... ./scenarios/...

.PHONY: bench
bench: bench-suite ## the performance suite (telechaos bench): figures, JSON and a table

.PHONY: fuzz
fuzz: ## run each fuzz target briefly (FUZZTIME=30s)
	@for p in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "== $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$p || exit 1; \
	  done; done

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: build
build: ## build both binaries into ./bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

-include build/image.mk
-include build/obs.mk
-include build/bench.mk
