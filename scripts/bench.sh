#!/usr/bin/env bash
# Runs the load benchmark of docs/performance.md: the Monday-morning
# scenarios, each under several variations of the Slack model
# (BenchmarkLoadModels), and 10,000 open requests (BenchmarkOpenRequests).
# It prints each run's tables, then a summary with the spread over the
# models. Needs Redis (127.0.0.1:6379, or REDIS_URL) and, for the managers
# scenario, the Samba AD of the tests (SAMBA_ENV_FILE; scripts/samba.sh
# start /tmp/resetbot-samba starts one). Extra arguments go to go test
# after the package (e.g. -load.timeout=4m).
#
#   ./scripts/bench.sh | tee bench.txt
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -run '^$' -bench 'LoadModels|OpenRequests' -benchtime 1x -timeout 120m ./cmd/bot "$@"
