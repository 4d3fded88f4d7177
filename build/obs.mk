# Observability test dependencies (included from the Makefile).
# Debian's prometheus, prometheus-pushgateway and chromium back the end-to-end
# tests of metrics, --push and the HTML report; they are installed only under
# CI=true or when asked (OBS_DEPS=1), so `make test` on a laptop never runs apt.

.PHONY: test-deps
test-deps: ## install prometheus, pushgateway, chromium for e2e tests (CI=true or OBS_DEPS=1)
	@if [ "$${CI:-}" = true ] || [ "$(OBS_DEPS)" = 1 ]; then \
	  sh scripts/install-prom.sh; \
	else \
	  echo "test-deps: skipped (CI=true or OBS_DEPS=1 installs prometheus, pushgateway, chromium)"; \
	fi

.PHONY: obs-up
obs-up: ## prometheus + pushgateway on loopback to watch a run (--metrics-addr 127.0.0.1:9464)
	sh scripts/prom-dev.sh
