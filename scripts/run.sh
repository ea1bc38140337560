#!/usr/bin/env bash
# Runs the bot: `go run ./cmd/bot`. Configuration comes from the environment
# and from the .env file in the repository root (see .env.example), which the
# bot reads itself, the way Docker Compose does: no shell is involved, so
# values with spaces, ;, = or commas need no quoting, and a variable set in
# the environment wins over the file. BOT_ENV_FILE names another file.
# Extra arguments go to the bot, e.g. `./scripts/run.sh doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null; then
  echo "run.sh: Go is not installed; install Go 1.26 or newer from https://go.dev/dl/" >&2
  exit 1
fi
if [ -z "${BOT_ENV_FILE:-}" ] && [ -f .env ]; then
  export BOT_ENV_FILE="$PWD/.env"
fi
exec go run ./cmd/bot "$@"
