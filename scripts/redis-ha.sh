#!/usr/bin/env bash
# Starts and stops local Redis deployments for the store's tests, with all
# their files (config, logs, PID files, data) under DIR:
#
#   scripts/redis-ha.sh start DIR            both of the below
#   scripts/redis-ha.sh start-sentinel DIR   a primary, 1 replica, 3 Sentinels (quorum 2), master "mymaster"
#   scripts/redis-ha.sh start-cluster DIR    a 3-node Redis Cluster (3 masters, no replicas)
#   scripts/redis-ha.sh stop DIR             stops every server started in DIR, by PID
#
# Servers listen on 127.0.0.1 only, on random free ports in 20000-22699
# (and their cluster bus port, +10000, below 32768 where Linux's ephemeral
# ports begin, so that no outgoing connection takes one meanwhile), keep nothing on disk
# (--save "" --appendonly no) and run until stopped. Start returns once the
# Sentinels agree on the primary and see each other and the replica, and
# every cluster node reports cluster_state:ok. A part that is already
# running in DIR is left as it is, so start is idempotent.
#
# DIR/env then holds, one NAME=value a line (source it, or give its path to
# the Go tests as REDIS_HA_ENV_FILE):
#
#   REDIS_SENTINEL_URL=redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/mymaster
#   REDIS_HA_PRIMARY_PORT, REDIS_HA_PRIMARY_PID_FILE, REDIS_HA_REPLICA_PORT, REDIS_HA_SENTINEL_PORTS
#   REDIS_CLUSTER_URL=redis+cluster://127.0.0.1:C1,127.0.0.1:C2,127.0.0.1:C3
#   REDIS_HA_CLUSTER_PORTS
#
# Needs redis-server and redis-cli (Debian's redis-server package; installed
# with apt-get when missing). Sentinels run as redis-server --sentinel.
set -euo pipefail

MASTER=mymaster
WAIT_SECONDS=30

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "redis-ha.sh: $*" >&2
  exit 1
}

need_apt() {
  if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "redis-ha.sh: installing redis-server with apt-get" >&2
    need_apt update -qq
    DEBIAN_FRONTEND=noninteractive need_apt install -y -qq redis-server >/dev/null
  fi
}

cli() { # cli PORT ARGS...
  local port=$1
  shift
  redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
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
# pick_port: sets PORT to a random free port in 20000-22699 whose +10000
# (the cluster bus) is free too, not picked before by this run. Both stay
# below 32768, the start of the ephemeral range that outgoing connections
# take their local ports from.
pick_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 2700))
    case "$PICKED" in *" $p "*) continue ;; esac
    if port_free "$p" && port_free $((p + 10000)); then
      PICKED="$PICKED$p "
      PORT=$p
      return
    fi
  done
  die "no free port found in 20000-22699"
}

# pid_running PID: the process runs (an exited one may linger as a zombie
# until PID 1 reaps it, for seconds in some containers).
pid_running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# alive NAME: the process of DIR/NAME.pid runs and is a redis-server.
alive() {
  local pidfile="$DIR/$1.pid" pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  pid_running "$pid" && grep -q '^redis-' "/proc/$pid/comm" 2>/dev/null
}

# wait_for WHAT CMD...: runs CMD until it succeeds, for WAIT_SECONDS at most.
wait_for() {
  local what=$1
  shift
  for _ in $(seq $((WAIT_SECONDS * 10))); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  echo "redis-ha.sh: timed out waiting for $what; logs in $DIR:" >&2
  for log in "$DIR"/*.log; do
    [ -e "$log" ] || continue
    echo "== $log" >&2
    tail -n 5 "$log" >&2
  done
  exit 1
}

# start_server NAME PORT ARGS...: a redis-server daemon with its files in DIR.
start_server() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$DIR/$name"
  rm -f "$DIR/$name.pid"
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --pidfile "$DIR/$name.pid" --logfile "$DIR/$name.log" --dir "$DIR/$name" \
    --save "" --appendonly no --repl-diskless-sync-delay 0 "$@" >/dev/null
  wait_for "$name on port $port" pong "$port"
}

pong() { [ "$(cli "$1" ping)" = PONG ]; }

# start_sentinel NAME PORT PRIMARY_PORT
start_sentinel() {
  local name=$1 port=$2 primary=$3
  mkdir -p "$DIR/$name"
  rm -f "$DIR/$name.pid"
  cat >"$DIR/$name.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $DIR/$name.pid
logfile $DIR/$name.log
dir $DIR/$name
sentinel monitor $MASTER 127.0.0.1 $primary 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
EOF
  redis-server "$DIR/$name.conf" --sentinel >/dev/null
  wait_for "$name on port $port" pong "$port"
}

# sentinel_ready PORT PRIMARY_PORT: this Sentinel names the primary, sees
# the replica, and counts enough Sentinels for quorum and failover.
sentinel_ready() {
  local info
  [ "$(cli "$1" sentinel get-master-addr-by-name "$MASTER" | tr '\n' ' ')" = "127.0.0.1 $2 " ] || return 1
  info=$(cli "$1" sentinel master "$MASTER" | paste - -)
  grep -q $'^num-slaves\t1$' <<<"$info" || return 1
  grep -q $'^num-other-sentinels\t2$' <<<"$info" || return 1
  cli "$1" sentinel ckquorum "$MASTER" | grep -q '^OK 3 usable'
}

replica_synced() { cli "$1" info replication | grep -q '^master_link_status:up'; }

running() { # running NAME...: all of them run
  for n in "$@"; do alive "$n" || return 1; done
}

start_sentinel_set() {
  if running primary replica sentinel-1 sentinel-2 sentinel-3 && [ -s "$DIR/sentinel.env" ]; then
    echo "redis-ha.sh: the Sentinel set in $DIR is already running" >&2
    return
  fi
  stop_names sentinel-1 sentinel-2 sentinel-3 replica primary
  local primary replica s1 s2 s3
  pick_port; primary=$PORT
  pick_port; replica=$PORT
  pick_port; s1=$PORT
  pick_port; s2=$PORT
  pick_port; s3=$PORT
  start_server primary "$primary"
  start_server replica "$replica" --replicaof 127.0.0.1 "$primary"
  wait_for "the replica to sync" replica_synced "$replica"
  start_sentinel sentinel-1 "$s1" "$primary"
  start_sentinel sentinel-2 "$s2" "$primary"
  start_sentinel sentinel-3 "$s3" "$primary"
  for p in "$s1" "$s2" "$s3"; do
    wait_for "Sentinel $p to agree on the primary" sentinel_ready "$p" "$primary"
  done
  cat >"$DIR/sentinel.env" <<EOF
REDIS_SENTINEL_URL=redis+sentinel://127.0.0.1:$s1,127.0.0.1:$s2,127.0.0.1:$s3/$MASTER
REDIS_HA_PRIMARY_PORT=$primary
REDIS_HA_PRIMARY_PID_FILE=$DIR/primary.pid
REDIS_HA_REPLICA_PORT=$replica
REDIS_HA_SENTINEL_PORTS=$s1,$s2,$s3
EOF
}

cluster_ok() { # cluster_ok PORT...
  for p in "$@"; do
    local info
    info=$(cli "$p" cluster info) || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q '^cluster_slots_ok:16384' <<<"$info" || return 1
    grep -q '^cluster_known_nodes:3' <<<"$info" || return 1
  done
}

start_cluster() {
  if running cluster-1 cluster-2 cluster-3 && [ -s "$DIR/cluster.env" ]; then
    echo "redis-ha.sh: the cluster in $DIR is already running" >&2
    return
  fi
  stop_names cluster-1 cluster-2 cluster-3
  local ports=() addrs=() i
  for i in 1 2 3; do
    pick_port
    ports+=("$PORT")
  done
  for i in 1 2 3; do
    rm -f "$DIR/cluster-$i/nodes.conf"
    start_server "cluster-$i" "${ports[$((i - 1))]}" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000
    addrs+=("127.0.0.1:${ports[$((i - 1))]}")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
    >"$DIR/cluster-create.log" 2>&1 || {
    cat "$DIR/cluster-create.log" >&2
    die "redis-cli --cluster create failed"
  }
  wait_for "cluster_state:ok on every node" cluster_ok "${ports[@]}"
  local list
  list=$(IFS=,; echo "${addrs[*]}")
  cat >"$DIR/cluster.env" <<EOF
REDIS_CLUSTER_URL=redis+cluster://$list
REDIS_HA_CLUSTER_PORTS=$(IFS=,; echo "${ports[*]}")
EOF
}

write_env() {
  cat "$DIR"/sentinel.env "$DIR"/cluster.env 2>/dev/null >"$DIR/env.tmp" || true
  mv "$DIR/env.tmp" "$DIR/env"
}

# stop_names NAME...: stops those servers of DIR, one after the other (TERM,
# then KILL after 5 s).
stop_names() {
  local n pid
  for n in "$@"; do
    if alive "$n"; then
      pid=$(cat "$DIR/$n.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        pid_running "$pid" || break
        sleep 0.05
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$n.pid"
  done
}

# stop_all stops every server of DIR: Sentinels first (so that they start
# no failover), replicas before the primary (which would otherwise wait for
# them to catch up before it exits).
stop_all() {
  local names=() f
  for f in "$DIR"/sentinel-*.pid "$DIR"/replica.pid "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    f=$(basename "$f" .pid)
    case " ${names[*]-} " in *" $f "*) ;; *) names+=("$f") ;; esac
  done
  stop_names ${names[@]+"${names[@]}"}
  rm -f "$DIR/env" "$DIR/sentinel.env" "$DIR/cluster.env"
}

[ $# -eq 2 ] || usage
cmd=$1
if [ -z "$2" ] || [ "$2" = / ]; then die "DIR must be a directory other than /"; fi
mkdir -p "$2"
DIR=$(cd "$2" && pwd)

case "$cmd" in
start | start-sentinel | start-cluster)
  ensure_redis
  started=$SECONDS
  case "$cmd" in
  start) start_sentinel_set; start_cluster ;;
  start-sentinel) start_sentinel_set ;;
  start-cluster) start_cluster ;;
  esac
  write_env
  echo "redis-ha.sh: ready in $((SECONDS - started))s; settings in $DIR/env" >&2
  ;;
stop) stop_all ;;
*) usage ;;
esac
