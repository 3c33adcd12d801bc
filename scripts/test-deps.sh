#!/usr/bin/env bash
# What the test suite needs from the OS, installed when missing (Debian/Ubuntu, as root):
# mosquitto and its clients, openssl (test certificates), PostgreSQL (the PostgreSQL
# store's tests start a private server), haproxy (the TCP front of the cluster tests),
# Node.js, npm and Chromium (the web console's browser test and the AsyncAPI parser).
# Elsewhere it names what to install and fails.
set -euo pipefail

need=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_rr >/dev/null || need+=(mosquitto-clients)
command -v openssl >/dev/null || need+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/chromium ] || [ -n "${MQTTPUSH_CHROMIUM:-}" ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "mqttpush: installing what the tests need: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "mqttpush: the tests need ${need[*]}: install them (Debian/Ubuntu: sudo apt-get install ${need[*]}) and run 'make test' again" >&2
  exit 1
fi
