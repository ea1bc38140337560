#!/usr/bin/env bash
# Installs, starts and stops the Mailpit SMTP servers the notice email tests
# send to (package mailnotice, internal/mailpittest):
#
#   scripts/mailpit.sh install      builds Mailpit with `go install` into the tools directory when missing
#   scripts/mailpit.sh start DIR    a throw-away CA and server certificate, and four Mailpit servers
#   scripts/mailpit.sh stop DIR     stops every server started in DIR, by PID
#
# Mailpit (github.com/axllent/mailpit, version MAILPIT_VERSION below) is a
# test tool only: it is not in go.mod. It is built once per machine into
# $RESETBOT_TOOLS_DIR (default ~/.cache/resetbot/tools), about 2 minutes.
#
# The servers listen on 127.0.0.1 only, on random free ports in
# 20000-29999, each with its HTTP API, keep their messages in DIR and run
# until stopped:
#
#   starttls  STARTTLS required, authentication required (DIR/auth)
#   tls       TLS from the first byte (smtps), authentication required
#   plain     no TLS at all, and AUTH offered in plain text: the bot must refuse it
#   chaos     STARTTLS required, no authentication, Mailpit's chaos on (tests make it answer 4xx/5xx)
#
# The certificate is for IP 127.0.0.1 and the name mailpit.test (not
# localhost: a test reaches it as localhost to see a wrong name refused),
# signed by DIR/ca.pem. DIR/env then holds, one NAME=value a line (give its
# path to the Go tests as MAILPIT_ENV_FILE):
#
#   MAILPIT_SMTP_URL, MAILPIT_SMTP_API     smtp://127.0.0.1:P (starttls), http://127.0.0.1:H
#   MAILPIT_SMTPS_URL, MAILPIT_SMTPS_API   smtps://127.0.0.1:P (tls)
#   MAILPIT_PLAIN_URL, MAILPIT_PLAIN_API   smtp://127.0.0.1:P (plain)
#   MAILPIT_CHAOS_URL, MAILPIT_CHAOS_API   smtp://127.0.0.1:P (chaos)
#   MAILPIT_CA_FILE, MAILPIT_USERNAME, MAILPIT_PASSWORD
set -euo pipefail

MAILPIT_VERSION=v1.33.1
WAIT_SECONDS=30
NAMES="starttls tls plain chaos"

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "mailpit.sh: $*" >&2
  exit 1
}

need_apt() {
  if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi
}

tools_dir() { echo "${RESETBOT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/resetbot/tools}"; }
binary() { echo "$(tools_dir)/mailpit-$MAILPIT_VERSION/mailpit"; }

install() {
  local bin dir tmp
  bin=$(binary)
  if [ -x "$bin" ]; then
    echo "$bin"
    return
  fi
  command -v go >/dev/null || die "Go is not installed"
  dir=$(dirname "$bin")
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.install.XXXXXX")
  echo "mailpit.sh: building Mailpit $MAILPIT_VERSION into $dir (once per machine, about 2 minutes)" >&2
  # Outside the repository: Mailpit's own go.mod decides its dependencies.
  if ! (cd "$tmp" && GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/axllent/mailpit@$MAILPIT_VERSION") >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2
    rm -rf "$tmp"
    die "go install github.com/axllent/mailpit@$MAILPIT_VERSION failed"
  fi
  mv "$tmp/mailpit" "$bin"
  rm -rf "$tmp"
  echo "$bin"
}

# port_free PORT: nothing listens on PORT (on any address).
port_free() {
  if command -v ss >/dev/null; then
    [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
  else
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 1; fi
  fi
}

PICKED=" "
PORT=
# pick_port: sets PORT to a random free port in 20000-29999 not picked
# before by this run.
pick_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 10000))
    case "$PICKED" in *" $p "*) continue ;; esac
    if port_free "$p"; then
      PICKED="$PICKED$p "
      PORT=$p
      return
    fi
  done
  die "no free port found in 20000-29999"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_running PID: the process runs (not a zombie).
pid_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# alive NAME: the process of DIR/NAME.pid runs and is Mailpit.
alive() {
  local pidfile="$DIR/$1.pid" pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  pid_running "$pid" && grep -q '^mailpit' "/proc/$pid/comm" 2>/dev/null
}

# certificates: a CA and a server certificate it signs, made once per DIR.
certificates() {
  [ -s "$DIR/ca.pem" ] && [ -s "$DIR/server.pem" ] && [ -s "$DIR/server.key" ] && return
  if ! command -v openssl >/dev/null; then
    echo "mailpit.sh: installing openssl with apt-get" >&2
    need_apt update -qq
    DEBIAN_FRONTEND=noninteractive need_apt install -y -qq openssl >/dev/null
  fi
  (
    cd "$DIR"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
      -subj "/CN=resetbot mailpit test CA" -keyout ca.key -out ca.pem \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=mailpit.test" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:mailpit.test\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
      -extfile server.ext -out server.pem
    rm -f server.csr server.ext ca.srl
  ) >"$DIR/openssl.log" 2>&1 || {
    cat "$DIR/openssl.log" >&2
    die "openssl failed"
  }
}

# credentials: the SMTP user of the starttls and tls servers.
credentials() {
  if [ ! -s "$DIR/password" ]; then
    (umask 077 && openssl rand -hex 16 >"$DIR/password")
  fi
  (umask 077 && echo "resetbot:$(openssl passwd -apr1 "$(cat "$DIR/password")")" >"$DIR/auth")
}

# start_one NAME FLAGS...: one Mailpit with its SMTP and HTTP ports; sets
# SMTP_PORT and HTTP_PORT.
SMTP_PORT=
HTTP_PORT=
start_one() {
  local name=$1 bin
  shift
  bin=$(binary)
  pick_port; SMTP_PORT=$PORT
  pick_port; HTTP_PORT=$PORT
  rm -f "$DIR/$name.pid" "$DIR/$name.db"*
  setsid "$bin" --disable-version-check --smtp-disable-rdns \
    --database "$DIR/$name.db" --max 10000 --listen "127.0.0.1:$HTTP_PORT" --smtp "127.0.0.1:$SMTP_PORT" \
    "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  for _ in $(seq $((WAIT_SECONDS * 10))); do
    if listening "$SMTP_PORT" && listening "$HTTP_PORT"; then return; fi
    alive "$name" || break
    sleep 0.1
  done
  echo "== $DIR/$name.log" >&2
  tail -n 20 "$DIR/$name.log" >&2
  die "Mailpit $name did not start on ports $SMTP_PORT and $HTTP_PORT"
}

start_all() {
  local n all=1
  for n in $NAMES; do alive "$n" || all=; done
  if [ -n "$all" ] && [ -s "$DIR/env" ]; then
    echo "mailpit.sh: the servers in $DIR are already running" >&2
    return
  fi
  stop_all
  [ -x "$(binary)" ] || install >/dev/null
  certificates
  credentials
  local tls=(--smtp-tls-cert "$DIR/server.pem" --smtp-tls-key "$DIR/server.key")
  local env=""
  start_one starttls "${tls[@]}" --smtp-require-starttls --smtp-auth-file "$DIR/auth"
  env+="MAILPIT_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT"$'\n'"MAILPIT_SMTP_API=http://127.0.0.1:$HTTP_PORT"$'\n'
  start_one tls "${tls[@]}" --smtp-require-tls --smtp-auth-file "$DIR/auth"
  env+="MAILPIT_SMTPS_URL=smtps://127.0.0.1:$SMTP_PORT"$'\n'"MAILPIT_SMTPS_API=http://127.0.0.1:$HTTP_PORT"$'\n'
  start_one plain --smtp-auth-accept-any --smtp-auth-allow-insecure
  env+="MAILPIT_PLAIN_URL=smtp://127.0.0.1:$SMTP_PORT"$'\n'"MAILPIT_PLAIN_API=http://127.0.0.1:$HTTP_PORT"$'\n'
  start_one chaos "${tls[@]}" --smtp-require-starttls --enable-chaos
  env+="MAILPIT_CHAOS_URL=smtp://127.0.0.1:$SMTP_PORT"$'\n'"MAILPIT_CHAOS_API=http://127.0.0.1:$HTTP_PORT"$'\n'
  env+="MAILPIT_CA_FILE=$DIR/ca.pem"$'\n'"MAILPIT_USERNAME=resetbot"$'\n'"MAILPIT_PASSWORD=$(cat "$DIR/password")"$'\n'
  (umask 077 && printf '%s' "$env" >"$DIR/env.tmp")
  mv "$DIR/env.tmp" "$DIR/env"
}

# stop_all stops every server of DIR (TERM, then KILL after 5 s).
stop_all() {
  local n pid
  for n in $NAMES; do
    if alive "$n"; then
      pid=$(cat "$DIR/$n.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        pid_running "$pid" || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$n.pid"
  done
  rm -f "$DIR/env"
}

case "${1:-}" in
install)
  [ $# -eq 1 ] || usage
  install
  ;;
start | stop)
  [ $# -eq 2 ] || usage
  if [ -z "$2" ] || [ "$2" = / ]; then die "DIR must be a directory other than /"; fi
  mkdir -p "$2"
  DIR=$(cd "$2" && pwd)
  if [ "$1" = start ]; then
    started=$SECONDS
    start_all
    echo "mailpit.sh: ready in $((SECONDS - started))s; settings in $DIR/env" >&2
  else
    stop_all
  fi
  ;;
*) usage ;;
esac
