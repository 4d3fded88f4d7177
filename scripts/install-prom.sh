#!/bin/sh
# Installs what the observability end-to-end tests need, from Debian's own
# packages: prometheus and prometheus-pushgateway (cmd/telechaos
# TestPrometheusAndPushgatewayEndToEnd) and chromium (the headless screenshot
# of index.html in reports), iproute2 and nftables (internal/netnstest) and
# ca-certificates (the harness image). Does nothing for tools already there.
#
# `make test-deps` calls this under CI=true (or OBS_DEPS=1); outside CI the
# tests skip with a message when the tools are missing.
set -eu

need=""
command -v prometheus >/dev/null 2>&1 || need="$need prometheus"
command -v prometheus-pushgateway >/dev/null 2>&1 || need="$need prometheus-pushgateway"
if [ "${OBS_CHROMIUM:-1}" = 1 ]; then
	command -v chromium >/dev/null 2>&1 || need="$need chromium"
fi
# The network-namespace tests (internal/netnstest) need ip and nft; the
# harness image (make image-harness) carries the system CA bundle.
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v nft >/dev/null 2>&1 || need="$need nftables"
[ -f /etc/ssl/certs/ca-certificates.crt ] || need="$need ca-certificates"
if [ -z "$need" ]; then
	echo "install-prom: prometheus, prometheus-pushgateway, chromium, iproute2, nftables and ca-certificates already installed"
	exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "install-prom: need root or sudo to install:$need" >&2; exit 1; }
	sudo="sudo"
fi
echo "install-prom: installing$need"
$sudo apt-get update -q
# The packages' own services are not used: the tests start their own daemons
# on random loopback ports with temporary data directories.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $need
