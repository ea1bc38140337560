#!/usr/bin/env bash
# A throw-away Samba 4 Active Directory domain controller for tests, in a
# private folder, listening only on 127.0.0.1 (LDAP 389, LDAPS 636, and the
# global catalog 3268/3269, ports fixed by Samba).
#
#   scripts/samba.sh start DIR   install what is missing (apt-get), stop the samba
#                                of a previous run in DIR, wipe DIR, provision a
#                                fresh domain, start samba, seed it, write DIR/env
#   scripts/samba.sh stop DIR    stop the samba started in DIR (ok if not running)
#   scripts/samba.sh env DIR     print DIR/env
#
# DIR/env holds shell KEY=value lines (no export; values quoted when needed)
# that internal/sambatest reads (point $SAMBA_ENV_FILE at it):
#   SAMBA_LDAPS_URL SAMBA_LDAP_URL SAMBA_CA_FILE SAMBA_BASE_DN SAMBA_REALM
#   SAMBA_DOMAIN SAMBA_ADMIN_DN SAMBA_ADMIN_PASSWORD SAMBA_BIND_DN
#   SAMBA_BIND_PASSWORD SAMBA_RW_BIND_DN SAMBA_RW_BIND_PASSWORD
#   SAMBA_SEED_PASSWORD SAMBA_PID
# The Administrator and service-account passwords are random per run.
#
# Seeded data (keep in sync with the constants in internal/sambatest):
#   realm CORP.EXAMPLE.COM, NetBIOS domain CORP, base DN DC=corp,DC=example,DC=com
#   CN=svc-resetbot,CN=Users,<base>   read-only service account (plain Domain User),
#                                     password SAMBA_BIND_PASSWORD
#   CN=svc-resetbot-rw,CN=Users,<base> the same, plus the rights the README delegates for
#                                     FORCE_CHANGE_AT_LOGON and unlock: write pwdLastSet and
#                                     write lockoutTime on users under OU=CORP (not
#                                     userAccountControl: REPORT_DISABLES is off by default)
#                                     (password SAMBA_RW_BIND_PASSWORD)
#   OU=CORP,<base>                    the customer OU (as in AWS Managed AD)
#     OU=Users,OU=CORP,<base>         the ordinary users:
#       mmanager   CN=Maria Manager   mail mmanager@corp.example.com
#       alice      CN=Alice Smith     mail alice@corp.example.com, manager mmanager
#       bob        CN=Bob Jones       mail bob@corp.example.com,   manager mmanager
#       carol                         mail carol@corp.example.com, no manager
#       dave                          mail dave@corp.example.com,  manager dmanager
#       dmanager   disabled (514)     mail dmanager@corp.example.com
#       disabled1  disabled (514)     mail disabled1@corp.example.com
#       dadmin     direct member of Domain Admins, mail dadmin@corp.example.com
#       nested1    member of "Tier0 Ops" only,     mail nested1@corp.example.com
#       twin1      mail shared@corp.example.com
#       twin2      mail shared@corp.example.com
#       upnonly    no mail; userPrincipalName upnonly@corp.example.com
#     CN=Tier0 Ops,OU=CORP,<base>     global security group, member of Domain Admins
#     OU=Computers,OU=CORP,<base>
#       ws01$      CN=ws01, computer account, mail ws01@corp.example.com
#   OU=Elsewhere,<base>               outside the customer OU:
#       outsider                      mail outsider@corp.example.com
# Every seeded user (not svc-resetbot) has the password Seed-Passw0rd-1
# (SAMBA_SEED_PASSWORD), userPrincipalName <name>@corp.example.com, and is
# enabled (512) unless said otherwise. Users with a display name have it as
# their CN; the others have CN=<name>.
set -euo pipefail

REALM=CORP.EXAMPLE.COM
DNS_DOMAIN=corp.example.com
NETBIOS=CORP
BASE_DN=DC=corp,DC=example,DC=com
ADMIN_DN="CN=Administrator,CN=Users,$BASE_DN"
SVC_NAME=svc-resetbot
SVC_DN="CN=$SVC_NAME,CN=Users,$BASE_DN"
RW_NAME=svc-resetbot-rw
RW_DN="CN=$RW_NAME,CN=Users,$BASE_DN"
SEED_PASSWORD=Seed-Passw0rd-1
LDAPS_URL=ldaps://127.0.0.1:636
LDAP_URL=ldap://127.0.0.1:389
PACKAGES=(samba-ad-dc samba-ad-provision ldap-utils openssl)

die() { echo "samba.sh: $*" >&2; exit 1; }
log() { echo "samba.sh: $*" >&2; }

usage() {
  echo "usage: $0 start|stop|env DIR" >&2
  exit 2
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages installs the Debian packages that are not installed yet.
ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${PACKAGES[@]}" >/dev/null
}

# random_password prints a fresh password that meets the AD complexity rules
# and needs no shell quoting.
random_password() {
  local r
  r=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9')
  printf 'Rb7-%s' "${r:0:20}"
}

# quote prints $1 as is when it is plain, else single-quoted, the way the
# bot's .env files are read (internal/dotenv, Docker Compose's rules: an
# embedded quote is \').
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]*$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\\\'}"
  fi
}

# utf16_b64 prints the base64 of the UTF-16LE encoding of "$1" in double
# quotes: the unicodePwd value.
utf16_b64() {
  printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0
}

# samba_pid_ok tells whether $1 is a running (not zombie) samba process.
samba_pid_ok() {
  local pid=$1 stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # "PID (comm) STATE ...": comm is "samba" (setproctitle changes only the
  # command line, to "samba: root process").
  [[ $stat == "$pid (samba) "* ]] || return 1
  [[ ${stat#"$pid (samba) "} != Z* ]]
}

stop_dir() {
  local dir=$1 pid=""
  if [ -f "$dir/samba.pid" ]; then
    pid=$(cat "$dir/samba.pid" 2>/dev/null || true)
  elif [ -f "$dir/env" ]; then
    pid=$(sed -n 's/^SAMBA_PID=//p' "$dir/env")
  fi
  if [ -z "$pid" ] || ! samba_pid_ok "$pid"; then
    rm -f "$dir/samba.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 50); do
    samba_pid_ok "$pid" || break
    sleep 0.1
  done
  if samba_pid_ok "$pid"; then
    log "samba $pid did not stop in 5 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 20); do
      samba_pid_ok "$pid" || break
      sleep 0.1
    done
  fi
  rm -f "$dir/samba.pid"
  log "stopped samba $pid"
}

# port_in_use tells whether something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

check_ports() {
  local port busy=()
  for port in 389 636 3268 3269; do
    port_in_use "$port" && busy+=("$port")
  done
  [ ${#busy[@]} -eq 0 ] && return 0
  if command -v ss >/dev/null; then
    ss -ltnp 2>/dev/null | grep -E ':(389|636|3268|3269)\b' >&2 || true
  fi
  die "port(s) ${busy[*]} on 127.0.0.1 already taken by something else (another Samba or LDAP server?); stop it first"
}

# ldap_admin runs an OpenLDAP client (ldapmodify, ldapsearch) as Administrator
# over LDAPS.
ldap_admin() {
  local cmd=$1
  shift
  LDAPTLS_CACERT="$DIR/tls/ca.pem" LDAPTLS_REQCERT=demand \
    "$cmd" -H "$LDAPS_URL" -x -D "$ADMIN_DN" -y "$DIR/admin.pw" -o nettimeout=5 "$@"
}

make_tls() {
  local t="$DIR/tls"
  mkdir -p "$t"
  (
    cd "$t"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 3650 -subj "/CN=resetbot test CA $$" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    cat >server.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
    # -CAcreateserial picks a random positive serial.
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -days 3650 -extfile server.ext -out server.pem 2>/dev/null
    chmod 600 ca.key server.key
    rm -f server.csr server.ext
  )
}

# edit_smb_conf rewrites [global] of smb.conf: drops the keys we set and puts
# ours right after the [global] line.
edit_smb_conf() {
  local conf="$DIR/etc/smb.conf" settings
  settings=$(cat <<EOF
	interfaces = 127.0.0.1
	bind interfaces only = yes
	server services = ldap
	ldap server require strong auth = no
	old password allowed period = 0
	log file = $DIR/log/samba.%m.log
	pid directory = $DIR/run
	ncalrpc dir = $DIR/run/ncalrpc
	winbindd socket directory = $DIR/run/winbindd
	ntp signd socket directory = $DIR/run/ntp_signd
	tls enabled = yes
	tls keyfile = $DIR/tls/server.key
	tls certfile = $DIR/tls/server.pem
	tls cafile = $DIR/tls/ca.pem
EOF
)
  mkdir -p "$DIR/log" "$DIR/run"
  SETTINGS=$settings awk '
    function key(line) { sub(/^[ \t]*/, "", line); sub(/[ \t]*=.*/, "", line); return tolower(line) }
    BEGIN {
      n = split(ENVIRON["SETTINGS"], lines, "\n")
      for (i = 1; i <= n; i++) drop[key(lines[i])] = 1
    }
    /^[ \t]*\[/ { inglobal = ($0 ~ /^[ \t]*\[global\]/); print; if (inglobal) print ENVIRON["SETTINGS"]; next }
    inglobal && ($0 ~ /=/) && (key($0) in drop) { next }
    { print }
  ' "$conf" >"$conf.new"
  mv "$conf.new" "$conf"
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + 30))
  while :; do
    if ! samba_pid_ok "$pid"; then
      tail -n 40 "$DIR/samba.log" >&2 || true
      die "samba exited during startup (log: $DIR/samba.log)"
    fi
    if ldap_admin ldapsearch -b "" -s base dn >/dev/null 2>&1; then
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 40 "$DIR/samba.log" >&2 || true
      die "LDAPS on 127.0.0.1:636 did not accept a bind within 30 s (log: $DIR/samba.log)"
    fi
    sleep 0.2
  done
}

# user_ldif prints an LDIF add record for a user.
#   user_ldif NAME CN OU MAIL UPN UAC [MANAGER_DN [GIVEN SURNAME]]
user_ldif() {
  local name=$1 cn=$2 ou=$3 mail=$4 upn=$5 uac=$6 manager=${7:-} given=${8:-} sn=${9:-}
  echo "dn: CN=$cn,$ou"
  echo "changetype: add"
  echo "objectClass: top"
  echo "objectClass: person"
  echo "objectClass: organizationalPerson"
  echo "objectClass: user"
  echo "sAMAccountName: $name"
  echo "cn: $cn"
  echo "displayName: $cn"
  [ -n "$given" ] && echo "givenName: $given"
  [ -n "$sn" ] && echo "sn: $sn"
  [ -n "$mail" ] && echo "mail: $mail"
  [ -n "$upn" ] && echo "userPrincipalName: $upn"
  [ -n "$manager" ] && echo "manager: $manager"
  echo "unicodePwd:: $SEED_PWD_B64"
  echo "userAccountControl: $uac"
  echo
}

seed() {
  local corp="OU=CORP,$BASE_DN" users="OU=Users,OU=CORP,$BASE_DN"
  local computers="OU=Computers,OU=CORP,$BASE_DN" elsewhere="OU=Elsewhere,$BASE_DN"
  local d=$DNS_DOMAIN
  SEED_PWD_B64=$(utf16_b64 "$SEED_PASSWORD")
  {
    local ou
    for ou in "$corp" "$users" "$computers" "$elsewhere"; do
      printf 'dn: %s\nchangetype: add\nobjectClass: organizationalUnit\n\n' "$ou"
    done

    # The service account: a plain Domain User with a random password.
    echo "dn: $SVC_DN"
    echo "changetype: add"
    echo "objectClass: user"
    echo "sAMAccountName: $SVC_NAME"
    echo "userPrincipalName: $SVC_NAME@$d"
    echo "description: resetbot read-only service account"
    echo "unicodePwd:: $(utf16_b64 "$BIND_PASSWORD")"
    echo "userAccountControl: 512"
    echo
    echo "dn: $RW_DN"
    echo "changetype: add"
    echo "objectClass: user"
    echo "sAMAccountName: $RW_NAME"
    echo "userPrincipalName: $RW_NAME@$d"
    echo "description: resetbot service account that may write pwdLastSet and lockoutTime"
    echo "unicodePwd:: $(utf16_b64 "$RW_PASSWORD")"
    echo "userAccountControl: 512"
    echo

    # Managers first: manager is a DN link and must point at an existing entry.
    user_ldif mmanager "Maria Manager" "$users" "mmanager@$d" "mmanager@$d" 512 "" Maria Manager
    user_ldif dmanager dmanager "$users" "dmanager@$d" "dmanager@$d" 514
    user_ldif alice "Alice Smith" "$users" "alice@$d" "alice@$d" 512 "CN=Maria Manager,$users" Alice Smith
    user_ldif bob "Bob Jones" "$users" "bob@$d" "bob@$d" 512 "CN=Maria Manager,$users" Bob Jones
    user_ldif carol carol "$users" "carol@$d" "carol@$d" 512
    user_ldif dave dave "$users" "dave@$d" "dave@$d" 512 "CN=dmanager,$users"
    user_ldif disabled1 disabled1 "$users" "disabled1@$d" "disabled1@$d" 514
    user_ldif dadmin dadmin "$users" "dadmin@$d" "dadmin@$d" 512
    user_ldif nested1 nested1 "$users" "nested1@$d" "nested1@$d" 512
    user_ldif twin1 twin1 "$users" "shared@$d" "twin1@$d" 512
    user_ldif twin2 twin2 "$users" "shared@$d" "twin2@$d" 512
    user_ldif upnonly upnonly "$users" "" "upnonly@$d" 512
    user_ldif outsider outsider "$elsewhere" "outsider@$d" "outsider@$d" 512

    # A workstation trust account (4096) with a mail address.
    echo "dn: CN=ws01,$computers"
    echo "changetype: add"
    echo "objectClass: computer"
    echo "sAMAccountName: ws01\$"
    echo "mail: ws01@$d"
    echo "unicodePwd:: $SEED_PWD_B64"
    echo "userAccountControl: 4096"
    echo

    # Tier0 Ops: a global security group (the default groupType) in Domain Admins.
    echo "dn: CN=Tier0 Ops,$corp"
    echo "changetype: add"
    echo "objectClass: group"
    echo "sAMAccountName: Tier0 Ops"
    echo "member: CN=nested1,$users"
    echo

    echo "dn: CN=Domain Admins,CN=Users,$BASE_DN"
    echo "changetype: modify"
    echo "add: member"
    echo "member: CN=dadmin,$users"
    echo "member: CN=Tier0 Ops,$corp"
    echo "-"
    echo
  } >"$DIR/seed.ldif"
  if ! ldap_admin ldapmodify -f "$DIR/seed.ldif" >"$DIR/seed.log" 2>&1; then
    cat "$DIR/seed.log" >&2
    die "seeding failed (LDIF: $DIR/seed.ldif)"
  fi
  delegate_rw
}

# delegate_rw gives svc-resetbot-rw the right to write pwdLastSet (attribute
# bf967a0a-...; FORCE_CHANGE_AT_LOGON) and lockoutTime (attribute
# 28630ebf-...; unlock) on user objects (class bf967aba-...) under OU=CORP,
# as the README tells operators to do.
delegate_rw() {
  local sid attr
  sid=$(samba-tool user show "$RW_NAME" --attributes=objectSid -s "$DIR/etc/smb.conf" 2>/dev/null | awk '/^objectSid:/{print $2}')
  [ -n "$sid" ] || die "could not read the SID of $RW_NAME"
  : >"$DIR/dsacl.log"
  for attr in bf967a0a-0de6-11d0-a285-00aa003049e2 28630ebf-41d5-11d1-a9c1-0000f80367c1; do
    if ! samba-tool dsacl set --objectdn="OU=CORP,$BASE_DN" \
      --sddl="(OA;CI;WP;$attr;bf967aba-0de6-11d0-a285-00aa003049e2;$sid)" \
      -s "$DIR/etc/smb.conf" >>"$DIR/dsacl.log" 2>&1; then
      cat "$DIR/dsacl.log" >&2
      die "could not delegate the attribute $attr to $RW_NAME"
    fi
  done
}

write_env() {
  local pid=$1
  {
    echo "# Samba AD started by scripts/samba.sh start $(quote "$DIR") at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "SAMBA_LDAPS_URL=$(quote "$LDAPS_URL")"
    echo "SAMBA_LDAP_URL=$(quote "$LDAP_URL")"
    echo "SAMBA_CA_FILE=$(quote "$DIR/tls/ca.pem")"
    echo "SAMBA_BASE_DN=$(quote "$BASE_DN")"
    echo "SAMBA_REALM=$(quote "$REALM")"
    echo "SAMBA_DOMAIN=$(quote "$NETBIOS")"
    echo "SAMBA_ADMIN_DN=$(quote "$ADMIN_DN")"
    echo "SAMBA_ADMIN_PASSWORD=$(quote "$ADMIN_PASSWORD")"
    echo "SAMBA_BIND_DN=$(quote "$SVC_DN")"
    echo "SAMBA_BIND_PASSWORD=$(quote "$BIND_PASSWORD")"
    echo "SAMBA_RW_BIND_DN=$(quote "$RW_DN")"
    echo "SAMBA_RW_BIND_PASSWORD=$(quote "$RW_PASSWORD")"
    echo "SAMBA_SEED_PASSWORD=$(quote "$SEED_PASSWORD")"
    echo "SAMBA_PID=$pid"
  } >"$DIR/env.new"
  chmod 600 "$DIR/env.new"
  mv "$DIR/env.new" "$DIR/env"
}

start() {
  ensure_packages
  command -v samba >/dev/null || die "samba not found after installing ${PACKAGES[*]}"

  if [ -e "$DIR" ]; then
    [ -d "$DIR" ] || die "$DIR exists and is not a directory"
    stop_dir "$DIR"
    # Refuse to wipe a folder that does not look like ours.
    if [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/env" ] && [ ! -e "$DIR/etc/smb.conf" ] \
      && [ ! -e "$DIR/samba.log" ] && [ ! -e "$DIR/.samba-sh" ]; then
      die "$DIR is not empty and was not made by samba.sh; refusing to wipe it"
    fi
  fi
  check_ports

  rm -rf "$DIR"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)
  touch "$DIR/.samba-sh"

  ADMIN_PASSWORD=$(random_password)
  BIND_PASSWORD=$(random_password)
  RW_PASSWORD=$(random_password)
  (umask 077 && printf '%s' "$ADMIN_PASSWORD" >"$DIR/admin.pw")

  log "provisioning $REALM into $DIR"
  if ! samba-tool domain provision --realm="$REALM" --domain="$NETBIOS" --server-role=dc \
    --dns-backend=NONE --use-rfc2307 --host-name=dc1 --adminpass="$ADMIN_PASSWORD" \
    --targetdir="$DIR" --option='interfaces=127.0.0.1' --option='bind interfaces only=yes' \
    >"$DIR/provision.log" 2>&1; then
    tail -n 40 "$DIR/provision.log" >&2
    die "samba-tool domain provision failed (log: $DIR/provision.log)"
  fi
  edit_smb_conf
  make_tls

  log "starting samba"
  # setsid: its own session, so a Ctrl-C in the caller's terminal does not
  # reach it. The inner shell writes its own PID, which exec keeps for samba.
  setsid bash -c 'echo $$ >"$1"; exec samba -s "$2" -F --no-process-group --debug-stdout -M single' \
    samba-start "$DIR/samba.pid" "$DIR/etc/smb.conf" </dev/null >"$DIR/samba.log" 2>&1 &
  local pid="" i
  for i in $(seq 50); do
    pid=$(cat "$DIR/samba.pid" 2>/dev/null || true)
    [ -n "$pid" ] && break
    sleep 0.05
  done
  [ -n "$pid" ] || die "samba did not write $DIR/samba.pid"
  wait_ready "$pid"

  log "seeding"
  seed
  write_env "$pid"
  log "ready: samba pid $pid, LDAPS $LDAPS_URL, env $DIR/env"
}

[ $# -eq 2 ] || usage
CMD=$1
DIR=$2
[ -n "$DIR" ] || usage
case "$DIR" in
  / | /tmp | /tmp/ | "$HOME" | "$HOME/") die "refusing to use $DIR as the Samba folder" ;;
esac

case "$CMD" in
  start) start ;;
  stop)
    if [ -d "$DIR" ]; then stop_dir "$DIR"; fi
    ;;
  env)
    [ -f "$DIR/env" ] || die "no $DIR/env; run $0 start $DIR first"
    cat "$DIR/env"
    ;;
  *) usage ;;
esac
