#!/usr/bin/env bash
# Runs every check and test: gofmt, go vet, go test -race ./...
# Installs (apt-get) and starts what the tests need when it is missing:
# a Redis server on 127.0.0.1:6379 (set REDIS_URL to use another Redis,
# TEST_REDIS_PORT for another port), Redis Sentinel and Cluster on random
# ports (scripts/redis-ha.sh; set REDIS_HA_ENV_FILE to use running ones), and
# a throw-away Samba AD domain controller on 127.0.0.1 (scripts/samba.sh; set
# SAMBA_ENV_FILE to use a running one), and Chromium for the playground's
# browser test. What it started it stops again when it ends.
# With CI set, tests never skip for a missing service: they fail.
# Also Mailpit SMTP servers for the notice email (scripts/mailpit.sh, built
# with go install once per machine; set MAILPIT_ENV_FILE to use running ones).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt() {
  if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi
}

if ! command -v go >/dev/null; then
  echo "test.sh: Go is not installed; install Go 1.26 or newer from https://go.dev/dl/" >&2
  exit 1
fi

# Every server this script starts, it stops again when it ends, however it
# ends; servers it found running are left alone.
redis_port="${TEST_REDIS_PORT:-6379}"
stop_services() {
  if [ -n "${redis_started:-}" ]; then
    redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
  fi
  [ -n "${samba_dir:-}" ] && scripts/samba.sh stop "$samba_dir" >/dev/null 2>&1 || true
  [ -n "${redis_ha_dir:-}" ] && scripts/redis-ha.sh stop "$redis_ha_dir" >/dev/null 2>&1 || true
}
trap stop_services EXIT

# Redis: the stores and the end-to-end tests use a real one.
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "test.sh: installing redis-server with apt-get"
  need_apt update -qq
  DEBIAN_FRONTEND=noninteractive need_apt install -y -qq redis-server >/dev/null
fi
if [ -z "${REDIS_URL:-}" ]; then
  if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    echo "test.sh: starting redis-server on 127.0.0.1:$redis_port (stopped again at the end)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
      --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/resetbot-test-redis-$redis_port.log"
    redis_started=1
    for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
fi
redis-cli -u "$REDIS_URL" ping >/dev/null

# Chromium: the playground's test drives a real browser (Debian's package).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "test.sh: installing chromium with apt-get"
  need_apt update -qq
  DEBIAN_FRONTEND=noninteractive need_apt install -y -qq chromium >/dev/null
fi

# Redis Sentinel and Redis Cluster: the store's conformance suite and a
# failover test run against real ones too.
if [ -z "${REDIS_HA_ENV_FILE:-}" ]; then
  # A folder of this run's own: two runs on one machine never share one.
  redis_ha_dir=$(mktemp -d "${TMPDIR:-/tmp}/resetbot-test-redis-ha.XXXXXX")
  echo "test.sh: starting Redis Sentinel and Cluster in $redis_ha_dir"
  scripts/redis-ha.sh start "$redis_ha_dir"
  export REDIS_HA_ENV_FILE="$redis_ha_dir/env"
fi

# Mailpit: the notice email goes to real SMTP servers (STARTTLS, smtps, one
# without TLS that must be refused, one that fails on purpose). It is built
# first when missing (once per machine, about 2 minutes), and stopped when
# this script ends, however it ends.
if [ -z "${MAILPIT_ENV_FILE:-}" ]; then
  mailpit_dir=$(mktemp -d "${TMPDIR:-/tmp}/resetbot-test-mailpit.XXXXXX")
  trap 'scripts/mailpit.sh stop "$mailpit_dir" >/dev/null 2>&1 || true; stop_services' EXIT
  echo "test.sh: starting Mailpit in $mailpit_dir"
  scripts/mailpit.sh start "$mailpit_dir"
  export MAILPIT_ENV_FILE="$mailpit_dir/env"
fi

# Samba AD: the LDAP lookups, the guards and the end-to-end resets run
# against a real domain controller.
if [ -z "${SAMBA_ENV_FILE:-}" ]; then
  samba_dir="${TMPDIR:-/tmp}/resetbot-test-samba"
  echo "test.sh: starting Samba AD in $samba_dir"
  scripts/samba.sh start "$samba_dir"
  export SAMBA_ENV_FILE="$samba_dir/env"
fi

# --check-services: start what is missing, show it, and stop it again
# without running anything (cmd/bot's TestTestScriptStopsWhatItStarted).
if [ "${1:-}" = "--check-services" ]; then
  echo "test.sh: REDIS_URL=$REDIS_URL answers $(redis-cli -u "$REDIS_URL" ping)"
  cat "$REDIS_HA_ENV_FILE"
  exit 0
fi

echo "test.sh: gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
echo "test.sh: go vet"
go vet ./...
echo "test.sh: go test -race"
go test -race -count=1 "$@" ./...
# The Helm chart: rendered with the real helm (a Go tool of its own module, so
# that helm and the Kubernetes modules stay out of the bot's go.mod; built on
# first use, a few minutes) by helm lint and helm template, and every object
# decoded strictly into the Kubernetes API types (no schema download).
echo "test.sh: the Helm chart (helm lint, helm template, strict Kubernetes types)"
(cd deploy/helm/check && go vet ./... && go test -count=1 "$@" ./...)
