#!/bin/sh
# Starts Debian's prometheus and prometheus-pushgateway on loopback for
# watching a run by hand, with data in a temporary directory removed on exit
# (Ctrl-C stops both):
#
#   scripts/prom-dev.sh &
#   telechaos run --metrics-addr 127.0.0.1:9464 --push http://127.0.0.1:9091
#
# Prometheus (http://127.0.0.1:9090) scrapes the run every second and the
# Pushgateway (honor_labels, so run_id and scenario stay). Import
# dashboards/telechaos.json into a Grafana pointed at it.
set -eu
RUN_ADDR=${RUN_ADDR:-127.0.0.1:9464}
PROM_ADDR=${PROM_ADDR:-127.0.0.1:9090}
PG_ADDR=${PG_ADDR:-127.0.0.1:9091}
for b in prometheus prometheus-pushgateway; do
	command -v $b >/dev/null 2>&1 || { echo "prom-dev: $b missing; run scripts/install-prom.sh" >&2; exit 1; }
done
dir=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
cat > "$dir/prometheus.yml" <<CFG
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: telechaos-live
    static_configs: [{targets: ["$RUN_ADDR"]}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: ["$PG_ADDR"]}]
CFG
prometheus-pushgateway --web.listen-address="$PG_ADDR" >"$dir/pushgateway.log" 2>&1 &
pids="$pids $!"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
	--web.listen-address="$PROM_ADDR" >"$dir/prometheus.log" 2>&1 &
pids="$pids $!"
echo "prom-dev: prometheus http://$PROM_ADDR, pushgateway http://$PG_ADDR, scraping $RUN_ADDR (logs in $dir)"
wait
