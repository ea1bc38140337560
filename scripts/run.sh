#!/usr/bin/env bash
# Runs the bot. Configuration comes from the environment; a .env file in the
# repository root (see .env.example) is loaded first when present.
# Extra arguments go to the bot, e.g. `./scripts/run.sh doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null; then
  echo "run.sh: Go is not installed; install Go 1.26 or newer from https://go.dev/dl/" >&2
  exit 1
fi
if [ -f .env ]; then
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
fi
exec go run ./cmd/bot "$@"
