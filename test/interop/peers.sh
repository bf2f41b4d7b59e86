#!/usr/bin/env bash
# Usage: test/interop/peers.sh start|stop|status|restart
#
# Real mail servers for mailwire's interop tests, on loopback only, every file under one
# state directory (default /tmp/mailwire-interop; nothing in /etc/postfix or /etc/dovecot is
# read or changed). Needs root and the Debian packages postfix, dovecot-core, dovecot-lmtpd.
#
#   postfix  one private instance (postfix -c $DIR/postfix/etc), STARTTLS and AUTH off:
#            $MAILWIRE_INTEROP_POSTFIX            (127.0.0.1:11025) PIPELINING SIZE 8BITMIME DSN
#                                                 SMTPUTF8 ENHANCEDSTATUSCODES CHUNKING
#            $MAILWIRE_INTEROP_POSTFIX_NOCHUNKING (127.0.0.1:11026) the same without CHUNKING
#            Mail for example.test goes by virtual(8) to maildirs under $DIR/postfix/mail:
#            example.test/{alice,bob,carol}/new/, catchall/new/ (any other local part).
#            Fixed outcomes: RCPT reject-5xx@ 550 5.1.1, defer-4xx@ 450 4.2.0, reject-552@
#            552 5.2.2, defer-421@ 421 4.7.0 (then disconnect); end of data, by envelope
#            sender: data-reject@ANY 554 5.7.1, data-defer@ANY 451 4.7.1. Nothing is relayed:
#            every transport but virtual is error:, and master.cf has no smtp/lmtp client.
#            Log: $DIR/postfix/maillog (syslog names postfix-interop/chunking/smtpd and
#            postfix-interop/nochunking/smtpd; each disconnect line counts the commands seen,
#            e.g. "bdat=1" or "data=1").
#   dovecot  private LMTP instance (dovecot -c $DIR/dovecot/dovecot.conf), STARTTLS off:
#            unix:$DIR/dovecot/lmtp.sock and $MAILWIRE_INTEROP_LMTP (127.0.0.1:11024).
#            alice@, bob@example.test: 250 after data (maildirs $DIR/dovecot/mail/USER/new/);
#            full@: 552 5.2.2 after data (quota 1 byte); fulltmp@: 452 4.2.2 (same, tempfail);
#            anyone else: 550 5.1.1 at RCPT. Log: $DIR/dovecot/dovecot.log.
#
# Environment (all optional): MAILWIRE_INTEROP_DIR, and the three endpoints above as
# 127.x.y.z:PORT. `start` writes $DIR/ports.env (KEY=VALUE lines, sourceable) with the
# endpoints and paths the tests use. start is idempotent; stop ends only the processes whose
# pid files this script's instances wrote; status prints one line per peer (exit 1 if one is down).
set -euo pipefail
umask 022   # configs and state must be readable by postfix, dovecot and nobody

DIR="${MAILWIRE_INTEROP_DIR:-/tmp/mailwire-interop}"
PF_EP="${MAILWIRE_INTEROP_POSTFIX:-127.0.0.1:11025}"
PF2_EP="${MAILWIRE_INTEROP_POSTFIX_NOCHUNKING:-127.0.0.1:11026}"
LMTP_EP="${MAILWIRE_INTEROP_LMTP:-127.0.0.1:11024}"

PF="$DIR/postfix"
PF_CONF="$PF/etc"
PF_PID="$PF/queue/pid/master.pid"
DC="$DIR/dovecot"
DC_CONF="$DC/dovecot.conf"
DC_PID="$DC/run/master.pid"
DC_SOCK="$DC/lmtp.sock"

die() { echo "peers.sh: $*" >&2; exit 1; }
say() { echo "[peers] $*" >&2; }

# Endpoints are IPv4 loopback only: 127.x.y.z:PORT.
check_ep() {
  [[ "$1" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}:([0-9]{1,5})$ ]] && (( BASH_REMATCH[1] > 0 && BASH_REMATCH[1] < 65536 )) \
    || die "endpoint must be a loopback 127.x.y.z:PORT, got '$1'"
}
ep_addr() { echo "${1%:*}"; }
ep_port() { echo "${1##*:}"; }

# live PID COMM: the process exists, is not a zombie, and is the program we started.
live() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$st" && "$st" != Z && "$st" != X ]] || return 1
  [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]]
}
pidfile_pid() { [[ -s "$1" ]] && tr -dc 0-9 < "$1"; }
pid_alive() { local p; p="$(pidfile_pid "$1")" && [[ -n "$p" ]] && live "$p" "$2"; }

# kill_pidfile FILE COMM: TERM, up to 5 s, then KILL; only that PID and only while it is COMM.
kill_pidfile() {
  local pid i
  pid="$(pidfile_pid "$1")" || return 0
  if [[ -n "$pid" ]] && live "$pid" "$2"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do live "$pid" "$2" || break; sleep 0.1; done
    if live "$pid" "$2"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$1"
}

# listening ADDR PORT: a TCP connect succeeds (bash /dev/tcp; no ss/netstat needed).
listening() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# greets ADDR PORT CODE: the server's first reply line starts with CODE (e.g. 220); sends QUIT.
greets() {
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    IFS= read -r line <&3 || exit 1
    printf "QUIT\r\n" >&3
    [[ "$line" == "$3"* ]]' _ "$1" "$2" "$3" 2>/dev/null
}

wait_greeting() {  # wait_greeting ADDR PORT SECONDS
  local i
  for i in $(seq $(( $3 * 10 ))); do greets "$1" "$2" 220 && return 0; sleep 0.1; done
  return 1
}
wait_closed() {  # wait_closed ADDR PORT SECONDS
  local i
  for i in $(seq $(( $3 * 10 ))); do listening "$1" "$2" || return 0; sleep 0.1; done
  return 1
}

# The state directory must be reachable by the users postfix, dovecot and nobody.
check_traversable() {
  local d="$DIR"
  while [[ -n "$d" && "$d" != / ]]; do
    if [[ -e "$d" ]]; then
      local mode; mode="$(stat -c %A "$d")"
      [[ "${mode:9:1}" == x || "${mode:9:1}" == t ]] \
        || die "$d is not traversable by other users (mode $mode); postfix/dovecot/nobody need it. Set MAILWIRE_INTEROP_DIR to a path under /tmp."
    fi
    d="$(dirname "$d")"
  done
}

preflight() {
  [[ $EUID -eq 0 ]] || die "must run as root (Postfix and Dovecot drop privileges themselves)"
  local missing=()
  command -v postfix >/dev/null || missing+=(postfix)
  command -v dovecot >/dev/null || missing+=(dovecot-core)
  [[ -x /usr/lib/dovecot/lmtp ]] || missing+=(dovecot-lmtpd)
  (( ${#missing[@]} == 0 )) || die "missing Debian package(s): ${missing[*]} (apt-get install ${missing[*]})"
  local u; for u in postfix dovecot dovenull nobody; do id "$u" >/dev/null 2>&1 || die "system user $u does not exist (reinstall postfix / dovecot-core)"; done
  getent group postdrop >/dev/null || die "group postdrop does not exist (reinstall postfix)"
  [[ "$DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "MAILWIRE_INTEROP_DIR must be an absolute path of [A-Za-z0-9._/-], got '$DIR'"
  check_ep "$PF_EP"; check_ep "$PF2_EP"; check_ep "$LMTP_EP"
  check_traversable   # the parts that exist already; what mkdir adds is 0755 (umask 022)
  mkdir -p "$DIR"
  chmod 0755 "$DIR"
}

# ---------------------------------------------------------------- Postfix

write_postfix() {
  mkdir -p "$PF_CONF" "$PF/queue" "$PF/data" "$PF/mail"
  chown postfix "$PF/data"
  chown 65534:65534 "$PF/mail"
  chmod 0755 "$PF" "$PF/mail"

  # Per-recipient outcomes at RCPT (texthash: read at process start, no postmap needed).
  cat > "$PF_CONF/recipient_access" <<'EOF'
reject-5xx@example.test   550 5.1.1 interop: mailbox does not exist
defer-4xx@example.test    450 4.2.0 interop: mailbox busy, try again later
reject-552@example.test   552 5.2.2 interop: mailbox full
defer-421@example.test    421 4.7.0 interop: closing connection on this recipient
EOF
  # Whole-message outcomes at the end of data (DATA's "." or BDAT LAST), by the envelope
  # sender's local part in any domain (check_sender_access looks up "user@" too).
  cat > "$PF_CONF/data_access" <<'EOF'
data-reject@   554 5.7.1 interop: message content rejected
data-defer@    451 4.7.1 interop: try again later
EOF
  # virtual(8) maildirs (trailing /), relative to virtual_mailbox_base; @domain is the catch-all.
  cat > "$PF_CONF/virtual_mailbox" <<'EOF'
alice@example.test   example.test/alice/
bob@example.test     example.test/bob/
carol@example.test   example.test/carol/
@example.test        catchall/
EOF

  cat > "$PF_CONF/main.cf" <<EOF
# Generated by test/interop/peers.sh. Private instance: postfix -c $PF_CONF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-interop
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
myhostname = pf.interop.test
mydomain = interop.test
myorigin = \$myhostname
mydestination =
inet_interfaces = $(ep_addr "$PF_EP")
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP mailwire-interop
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = yes
message_size_limit = 104857600
virtual_mailbox_limit = 0
mailbox_size_limit = 0
in_flow_delay = 0
# Nothing leaves this instance: no relaying, no local delivery, no SMTP client in master.cf.
default_transport = error:5.7.1 interop: no relaying from this instance
relay_transport = error:5.7.1 interop: no relaying from this instance
local_transport = error:5.1.1 interop: no local delivery
local_recipient_maps =
relay_domains =
smtp_dns_support_level = disabled
virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$PF_CONF/virtual_mailbox
virtual_mailbox_base = $PF/mail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_transport = virtual
smtpd_helo_required = no
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$PF_CONF/recipient_access
smtpd_end_of_data_restrictions = check_sender_access texthash:$PF_CONF/data_access
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 1000
disable_vrfy_command = yes
smtpd_discard_ehlo_keywords = silent-discard, etrn
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = no
EOF

  cat > "$PF_CONF/master.cf" <<EOF
# Generated by test/interop/peers.sh. No chroot; smtpd listeners on loopback only.
$PF_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/chunking
$PF2_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/nochunking
  -o smtpd_discard_ehlo_keywords=silent-discard,etrn,chunking
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

pf_running() { pid_alive "$PF_PID" master; }

start_postfix() {
  if pf_running; then say "postfix already running (pid $(pidfile_pid "$PF_PID"))"; return 0; fi
  local ep
  for ep in "$PF_EP" "$PF2_EP"; do
    listening "$(ep_addr "$ep")" "$(ep_port "$ep")" && die "$ep is already in use by another process (not this harness's postfix)"
  done
  write_postfix
  postfix -c "$PF_CONF" start </dev/null >"$PF/start.log" 2>&1 \
    || { cat "$PF/start.log" >&2; die "postfix start failed (log: $PF/start.log, $PF/maillog)"; }
  for ep in "$PF_EP" "$PF2_EP"; do
    wait_greeting "$(ep_addr "$ep")" "$(ep_port "$ep")" 15 || die "postfix does not answer on $ep; see $PF/maillog"
  done
  say "postfix on $PF_EP (CHUNKING) and $PF2_EP (no CHUNKING); maildirs $PF/mail, log $PF/maillog"
}

stop_postfix() {
  if pf_running; then
    postfix -c "$PF_CONF" stop </dev/null >/dev/null 2>&1 || true
    local i; for i in $(seq 100); do pf_running || break; sleep 0.1; done
  fi
  kill_pidfile "$PF_PID" master   # fallback: master only; its children end with it
  local ep
  for ep in "$PF_EP" "$PF2_EP"; do
    wait_closed "$(ep_addr "$ep")" "$(ep_port "$ep")" 10 || say "warning: $ep still accepts connections"
  done
}

# ---------------------------------------------------------------- Dovecot LMTP

write_dovecot() {
  mkdir -p "$DC/run" "$DC/state" "$DC/mail"
  chown 65534:65534 "$DC/mail"
  chmod 0755 "$DC" "$DC/mail"
  cat > "$DC/users" <<EOF
alice@example.test::65534:65534::$DC/mail/alice::
bob@example.test::65534:65534::$DC/mail/bob::
full@example.test::65534:65534::$DC/mail/full::userdb_quota_rule=*:storage=1B
fulltmp@example.test::65534:65534::$DC/mail/fulltmp::userdb_quota_rule=*:storage=1B userdb_quota_full_tempfail=yes
EOF
  chmod 0644 "$DC/users"
  cat > "$DC_CONF" <<EOF
# Generated by test/interop/peers.sh: a private Dovecot instance serving LMTP only, no TLS.
base_dir = $DC/run
state_dir = $DC/state
instance_name = mailwire-interop
log_path = $DC/dovecot.log
protocols = lmtp
listen = $(ep_addr "$LMTP_EP")
hostname = lmtp.interop.test
postmaster_address = postmaster@example.test
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
ssl = no
mail_location = maildir:~
first_valid_uid = 1
mail_plugins = quota
lmtp_rcpt_check_quota = no
lmtp_save_to_detail_mailbox = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC/users
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=100M
  quota_full_tempfail = no
}
service lmtp {
  unix_listener $DC_SOCK {
    mode = 0666
  }
  inet_listener lmtp {
    address = $(ep_addr "$LMTP_EP")
    port = $(ep_port "$LMTP_EP")
  }
}
protocol lmtp {
  mail_plugins = \$mail_plugins
}
EOF
}

dc_running() { pid_alive "$DC_PID" dovecot; }

start_dovecot() {
  if dc_running; then say "dovecot already running (pid $(pidfile_pid "$DC_PID"))"; return 0; fi
  listening "$(ep_addr "$LMTP_EP")" "$(ep_port "$LMTP_EP")" && die "$LMTP_EP is already in use by another process (not this harness's dovecot)"
  write_dovecot
  dovecot -c "$DC_CONF" </dev/null >>"$DC/dovecot.log" 2>&1 || { tail -20 "$DC/dovecot.log" >&2; die "dovecot failed to start; see $DC/dovecot.log"; }
  wait_greeting "$(ep_addr "$LMTP_EP")" "$(ep_port "$LMTP_EP")" 15 || die "dovecot lmtp does not answer on $LMTP_EP; see $DC/dovecot.log"
  local i; for i in $(seq 50); do [[ -S "$DC_SOCK" ]] && break; sleep 0.1; done
  [[ -S "$DC_SOCK" ]] || die "no socket $DC_SOCK; see $DC/dovecot.log"
  say "dovecot lmtp on $LMTP_EP and unix:$DC_SOCK; maildirs $DC/mail, log $DC/dovecot.log"
}

stop_dovecot() {
  kill_pidfile "$DC_PID" dovecot   # the master ends its own children
  wait_closed "$(ep_addr "$LMTP_EP")" "$(ep_port "$LMTP_EP")" 10 || say "warning: $LMTP_EP still accepts connections"
}

# ---------------------------------------------------------------- commands

write_ports_env() {
  cat > "$DIR/ports.env.tmp" <<EOF
MAILWIRE_INTEROP_DIR=$DIR
MAILWIRE_INTEROP_POSTFIX=$PF_EP
MAILWIRE_INTEROP_POSTFIX_NOCHUNKING=$PF2_EP
MAILWIRE_INTEROP_POSTFIX_MAILDIRS=$PF/mail
MAILWIRE_INTEROP_POSTFIX_LOG=$PF/maillog
MAILWIRE_INTEROP_LMTP=$LMTP_EP
MAILWIRE_INTEROP_LMTP_SOCKET=$DC_SOCK
MAILWIRE_INTEROP_LMTP_MAILDIRS=$DC/mail
EOF
  mv "$DIR/ports.env.tmp" "$DIR/ports.env"
}

# A running instance keeps the endpoints it was started with: read them back for stop/status.
load_running_ports() {
  if [[ -s "$DIR/ports.env" ]]; then
    PF_EP="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX=//p' "$DIR/ports.env")"
    PF2_EP="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX_NOCHUNKING=//p' "$DIR/ports.env")"
    LMTP_EP="$(sed -n 's/^MAILWIRE_INTEROP_LMTP=//p' "$DIR/ports.env")"
  fi
}

status() {
  load_running_ports
  local rc=0
  if pf_running; then
    echo "postfix  running  pid $(pidfile_pid "$PF_PID")  $PF_EP (CHUNKING)  $PF2_EP (no CHUNKING)  log $PF/maillog"
  else
    echo "postfix  stopped"; rc=1
  fi
  if dc_running; then
    echo "dovecot  running  pid $(pidfile_pid "$DC_PID")  $LMTP_EP  unix:$DC_SOCK  log $DC/dovecot.log"
  else
    echo "dovecot  stopped"; rc=1
  fi
  return $rc
}

start() {
  preflight
  if pf_running || dc_running; then
    # keep what runs, on the endpoints it was started with
    local want="$PF_EP $PF2_EP $LMTP_EP"
    load_running_ports
    [[ "$want" == "$PF_EP $PF2_EP $LMTP_EP" ]] || say "warning: already running on $PF_EP $PF2_EP $LMTP_EP; stop first to change endpoints"
  fi
  start_postfix
  start_dovecot
  write_ports_env
  say "endpoints in $DIR/ports.env"
}

stop() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  load_running_ports
  stop_dovecot
  stop_postfix
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) sed -n '2,2p' "$0" >&2; exit 2 ;;
esac
