#!/usr/bin/env bash
# Installs what the tests need that Go modules do not provide: redis-server
# (bench's Redis baseline tests start their own private server; nothing here
# starts or depends on a system Redis service) and promtool, from Debian's
# prometheus package (make check-monitoring checks the alert rules with it;
# no Prometheus server is run), and curl (the e2e tests of the HTTP APIs,
# native and Tencent-compatible, call them as a user or a shell script
# would). Idempotent and silent when everything is present.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "deps.sh: need root or sudo to install: ${need[*]}" >&2
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: no apt-get; install by hand: ${need[*]}" >&2
	exit 1
fi

install() {
	${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${need[@]}"
}
echo "deps.sh: installing ${need[*]}"
if ! install; then
	# Package lists missing or stale (fresh machines): refresh and retry.
	${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
	install
fi
command -v redis-server >/dev/null 2>&1 || { echo "deps.sh: redis-server still not on PATH" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "deps.sh: curl still not on PATH" >&2; exit 1; }
