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
#   route    the routing lab (test/interop/README.md "Routing lab"): more smtpd listeners in the
#            same Postfix instance, all on ONE port ($MAILWIRE_INTEROP_ROUTE_PORT, 11525) at
#            fixed loopback addresses 127.0.0.21-48 (and [::1] when lo has ::1), each with its own
#            syslog name postfix-interop/route-NAME so that the maillog tells the servers apart:
#            ok (accepts), mx421 (greets 421), mx450 (defer-4xx@ gets 450), canary (accepts, must
#            never be contacted), sess1-4 (EHLO ok, 451 to MAIL), limit1-8 (greet 421), ok6 ([::1]).
#            127.0.0.20 and 127.0.0.29 stay dead (nothing listens; checked at start).
#   dns      a private unbound on $MAILWIRE_INTEROP_DNS (127.0.0.1:11053, UDP+TCP) serving only the
#            zone route.test from $DIR/dns/route.test.zone (records: route_zone below). It never
#            recurses or forwards: "." is refused, do-not-query-address covers everything.
#            $MAILWIRE_INTEROP_DNS_SILENT (127.0.0.1:11054) is a second unbound with
#            access-control deny: it reads every query and never answers (DNS timeouts).
#            Log (every query): $DIR/dns/unbound.log.
#   dovecot  private LMTP instance (dovecot -c $DIR/dovecot/dovecot.conf), STARTTLS off:
#            unix:$DIR/dovecot/lmtp.sock and $MAILWIRE_INTEROP_LMTP (127.0.0.1:11024).
#            alice@, bob@example.test: 250 after data (maildirs $DIR/dovecot/mail/USER/new/);
#            full@: 552 5.2.2 after data (quota 1 byte); fulltmp@: 452 4.2.2 (same, tempfail);
#            anyone else: 550 5.1.1 at RCPT. Log: $DIR/dovecot/dovecot.log.
#
# Environment (all optional): MAILWIRE_INTEROP_DIR, the three endpoints above and the two DNS
# endpoints as 127.x.y.z:PORT, MAILWIRE_INTEROP_ROUTE_PORT. `start` writes $DIR/ports.env (KEY=VALUE lines, sourceable) with the
# endpoints and paths the tests use. start is idempotent; stop ends only the processes whose
# pid files this script's instances wrote; status prints one line per peer (exit 1 if one is down).
set -euo pipefail
umask 022   # configs and state must be readable by postfix, dovecot and nobody

DIR="${MAILWIRE_INTEROP_DIR:-/tmp/mailwire-interop}"
PF_EP="${MAILWIRE_INTEROP_POSTFIX:-127.0.0.1:11025}"
PF2_EP="${MAILWIRE_INTEROP_POSTFIX_NOCHUNKING:-127.0.0.1:11026}"
LMTP_EP="${MAILWIRE_INTEROP_LMTP:-127.0.0.1:11024}"
DNS_EP="${MAILWIRE_INTEROP_DNS:-127.0.0.1:11053}"
DNS_SILENT_EP="${MAILWIRE_INTEROP_DNS_SILENT:-127.0.0.1:11054}"
ROUTE_PORT="${MAILWIRE_INTEROP_ROUTE_PORT:-11525}"

PF="$DIR/postfix"
PF_CONF="$PF/etc"
PF_PID="$PF/queue/pid/master.pid"
DC="$DIR/dovecot"
DC_CONF="$DC/dovecot.conf"
DC_PID="$DC/run/master.pid"
DC_SOCK="$DC/lmtp.sock"
DNS="$DIR/dns"
DNS_CONF="$DNS/unbound.conf"
DNS_PID="$DNS/unbound.pid"
DNS_SILENT_CONF="$DNS/unbound-silent.conf"
DNS_SILENT_PID="$DNS/unbound-silent.pid"
ROUTE_ZONE=route.test

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
  command -v unbound >/dev/null && command -v unbound-checkconf >/dev/null || missing+=(unbound)
  (( ${#missing[@]} == 0 )) || die "missing Debian package(s): ${missing[*]} (apt-get install ${missing[*]})"
  local u; for u in postfix dovecot dovenull nobody; do id "$u" >/dev/null 2>&1 || die "system user $u does not exist (reinstall postfix / dovecot-core)"; done
  getent group postdrop >/dev/null || die "group postdrop does not exist (reinstall postfix)"
  [[ "$DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "MAILWIRE_INTEROP_DIR must be an absolute path of [A-Za-z0-9._/-], got '$DIR'"
  check_ep "$PF_EP"; check_ep "$PF2_EP"; check_ep "$LMTP_EP"; check_ep "$DNS_EP"; check_ep "$DNS_SILENT_EP"
  [[ "$ROUTE_PORT" =~ ^[0-9]{1,5}$ ]] && (( ROUTE_PORT > 0 && ROUTE_PORT < 65536 )) || die "MAILWIRE_INTEROP_ROUTE_PORT must be a port number, got '$ROUTE_PORT'"
  [[ "$(ep_port "$DNS_EP")" != "$(ep_port "$DNS_SILENT_EP")" ]] || die "MAILWIRE_INTEROP_DNS and MAILWIRE_INTEROP_DNS_SILENT need different ports (one unbound serves both)"
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
  write_postfix_conf "$PF_CONF"
}

# write_postfix_conf DIR: main.cf, master.cf and the tables, into DIR (the config directory, or
# a scratch copy that start_postfix compares with the running instance's).
write_postfix_conf() {
  local out="$1"   # the files always name $PF_CONF, wherever they are written
  mkdir -p "$out"

  # Per-recipient outcomes at RCPT (texthash: read at process start, no postmap needed).
  cat > "$out/recipient_access" <<'EOF'
reject-5xx@example.test   550 5.1.1 interop: mailbox does not exist
defer-4xx@example.test    450 4.2.0 interop: mailbox busy, try again later
reject-552@example.test   552 5.2.2 interop: mailbox full
defer-421@example.test    421 4.7.0 interop: closing connection on this recipient
EOF
  # Whole-message outcomes at the end of data (DATA's "." or BDAT LAST), by the envelope
  # sender's local part in any domain (check_sender_access looks up "user@" too).
  cat > "$out/data_access" <<'EOF'
data-reject@   554 5.7.1 interop: message content rejected
data-defer@    451 4.7.1 interop: try again later
EOF
  # virtual(8) maildirs (trailing /), relative to virtual_mailbox_base; @domain is the catch-all.
  cat > "$out/virtual_mailbox" <<'EOF'
alice@example.test   example.test/alice/
bob@example.test     example.test/bob/
carol@example.test   example.test/carol/
@example.test        catchall/
EOF

  cat > "$out/main.cf" <<EOF
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
inet_protocols = $(route_ipv6 && echo all || echo ipv4)
mynetworks = 127.0.0.0/8$(route_ipv6 && echo ' [::1]/128')
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

  cat > "$out/master.cf" <<EOF
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
  route_master_cf >> "$out/master.cf"
  # Routing lab tables (regexp: built in, read at process start). /^/ matches every lookup key.
  echo '/^/ 421 4.3.2 interop: this server greets 421' > "$out/route_greet421.regexp"
  echo '/^/ 451 4.3.0 interop: try MAIL again later' > "$out/route_mail451.regexp"
}

pf_running() { pid_alive "$PF_PID" master; }

# pf_current: the running instance's configuration is what write_postfix_conf writes now.
pf_current() {
  local tmp rc=0
  tmp="$(mktemp -d)"
  write_postfix_conf "$tmp"
  diff -rq "$tmp" "$PF_CONF" >/dev/null 2>&1 || rc=1
  rm -rf "$tmp"
  return $rc
}

start_postfix() {
  if pf_running; then
    # An instance started by an older checkout (say, without the routing lab's listeners) or
    # with another IPv6 setting is restarted with the configuration written now.
    if pf_current; then say "postfix already running (pid $(pidfile_pid "$PF_PID"))"; return 0; fi
    say "postfix runs with an older configuration: restarting it"
    stop_postfix
  fi
  local ep
  for ep in "$PF_EP" "$PF2_EP" $(route_endpoints) $(route_dead_endpoints); do
    listening "$(ep_host "$ep")" "$(ep_port "$ep")" && die "$ep is already in use by another process (not this harness's postfix)"
  done
  write_postfix
  postfix -c "$PF_CONF" start </dev/null >"$PF/start.log" 2>&1 \
    || { cat "$PF/start.log" >&2; die "postfix start failed (log: $PF/start.log, $PF/maillog)"; }
  for ep in "$PF_EP" "$PF2_EP"; do
    wait_greeting "$(ep_addr "$ep")" "$(ep_port "$ep")" 15 || die "postfix does not answer on $ep; see $PF/maillog"
  done
  wait_route_listeners
  say "postfix on $PF_EP (CHUNKING) and $PF2_EP (no CHUNKING); maildirs $PF/mail, log $PF/maillog"
  say "routing lab: $(route_endpoints | wc -w) smtpd listeners on port $ROUTE_PORT (127.0.0.21-48$(route_ipv6 && echo ', [::1]'))"
}

stop_postfix() {
  if pf_running; then
    postfix -c "$PF_CONF" stop </dev/null >/dev/null 2>&1 || true
    local i; for i in $(seq 100); do pf_running || break; sleep 0.1; done
  fi
  kill_pidfile "$PF_PID" master   # fallback: master only; its children end with it
  local ep
  for ep in "$PF_EP" "$PF2_EP" $(route_endpoints); do
    wait_closed "$(ep_host "$ep")" "$(ep_port "$ep")" 10 || say "warning: $ep still accepts connections"
  done
}

# ---------------------------------------------------------------- routing lab: smtpd listeners

# One line per server: NAME ADDRESS BEHAVIOR. All listen on $ROUTE_PORT, in the Postfix instance
# above, with syslog name postfix-interop/route-NAME and myhostname NAME.route.test (banner, EHLO,
# Received). Behaviors:
#   accept    no recipient restrictions (defer-4xx@ is accepted too); example.test mail is stored
#             in the maildirs like any other (relaying elsewhere is still refused)
#   rcpt450   main.cf's restrictions: defer-4xx@example.test gets 450 4.2.0 at RCPT, etc.
#   greet421  421 4.3.2 instead of the 220 greeting, then Postfix hangs up (client restriction
#             evaluated at connect: smtpd_delay_reject=no)
#   mail451   EHLO ok, then 451 4.3.0 to every MAIL FROM (sender restriction at MAIL)
# Keep in sync with ROUTE in helpers.ts and the tables in README.md.
ROUTE_SERVERS=(
  "ok      127.0.0.21 accept"
  "mx421   127.0.0.22 greet421"
  "mx450   127.0.0.23 rcpt450"
  "canary  127.0.0.24 accept"
  "sess1   127.0.0.31 mail451"
  "sess2   127.0.0.32 mail451"
  "sess3   127.0.0.33 mail451"
  "sess4   127.0.0.34 mail451"
  "limit1  127.0.0.41 greet421"
  "limit2  127.0.0.42 greet421"
  "limit3  127.0.0.43 greet421"
  "limit4  127.0.0.44 greet421"
  "limit5  127.0.0.45 greet421"
  "limit6  127.0.0.46 greet421"
  "limit7  127.0.0.47 greet421"
  "limit8  127.0.0.48 greet421"
)
# Addresses where nothing may listen (connect: Connection refused).
ROUTE_DEAD=(127.0.0.20 127.0.0.29)

# route_ipv6: the loopback interface has ::1 (then [::1]:$ROUTE_PORT is the server ok6 and
# Postfix runs with inet_protocols = all). MAILWIRE_INTEROP_ROUTE_IPV6=no turns it off.
route_ipv6() {
  [[ "${MAILWIRE_INTEROP_ROUTE_IPV6:-}" != no ]] || return 1
  grep -qE '^0{31}1 [0-9a-f]+ [0-9a-f]+ [0-9a-f]+ [0-9a-f]+ +lo$' /proc/net/if_inet6 2>/dev/null
}

route_servers() {
  printf '%s\n' "${ROUTE_SERVERS[@]}"
  if route_ipv6; then echo "ok6 ::1 accept"; fi
}

route_ep() { if [[ "$1" == *:* ]]; then echo "[$1]:$ROUTE_PORT"; else echo "$1:$ROUTE_PORT"; fi; }

route_endpoints() {
  local name addr beh
  while read -r name addr beh; do route_ep "$addr"; done < <(route_servers)
}
route_dead_endpoints() { local a; for a in "${ROUTE_DEAD[@]}"; do route_ep "$a"; done; }

route_master_cf() {
  local name addr beh
  echo "# Routing lab (test/interop/README.md): one port, one address per server."
  while read -r name addr beh; do
    echo "$(route_ep "$addr") inet n - n - - smtpd"
    echo "  -o syslog_name=postfix-interop/route-$name"
    echo "  -o myhostname=$name.route.test"
    case "$beh" in
      accept) echo "  -o smtpd_recipient_restrictions=" ;;
      rcpt450) ;;
      greet421)
        echo "  -o smtpd_delay_reject=no"
        echo "  -o smtpd_client_restrictions=check_client_access,regexp:$PF_CONF/route_greet421.regexp" ;;
      mail451)
        echo "  -o smtpd_delay_reject=no"
        echo "  -o smtpd_sender_restrictions=check_sender_access,regexp:$PF_CONF/route_mail451.regexp" ;;
      *) die "unknown route behavior $beh" ;;
    esac
  done < <(route_servers)
}

# ep_host ENDPOINT: the address without brackets ([::1]:25 -> ::1, 127.0.0.1:25 -> 127.0.0.1).
ep_host() { local a="${1%:*}"; a="${a#[}"; echo "${a%]}"; }

wait_route_listeners() {
  local name addr beh code ep
  while read -r name addr beh; do
    ep="$(route_ep "$addr")"
    code=220; [[ "$beh" == greet421 ]] && code=421
    local ok=0 i
    for i in $(seq 150); do greets "$addr" "$ROUTE_PORT" "$code" && { ok=1; break; }; sleep 0.1; done
    (( ok )) || die "route server $name ($ep) does not greet $code; see $PF/maillog"
  done < <(route_servers)
  for ep in $(route_dead_endpoints); do
    listening "$(ep_host "$ep")" "$ROUTE_PORT" && die "$ep must stay dead, but something listens there"
  done
  return 0
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

# ---------------------------------------------------------------- DNS: unbound serving route.test

# The zone (plain; see "A signed zone later" in README.md). Every address is loopback; the
# servers behind them are the route listeners above, all on $ROUTE_PORT.
route_zone() {
  cat <<EOF
\$ORIGIN route.test.
\$TTL 300
@          SOA   ns1.route.test. hostmaster.route.test. 1 3600 900 604800 300
@          NS    ns1
ns1        A     127.0.0.1
; hosts (the route listeners; dead and dead2: nothing listens)
dead       A     127.0.0.20
dead2      A     127.0.0.29
ok         A     127.0.0.21
mx421      A     127.0.0.22
mx450      A     127.0.0.23
sess1      A     127.0.0.31
sess2      A     127.0.0.32
sess3      A     127.0.0.33
sess4      A     127.0.0.34
limit1     A     127.0.0.41
limit2     A     127.0.0.42
limit3     A     127.0.0.43
limit4     A     127.0.0.44
limit5     A     127.0.0.45
limit6     A     127.0.0.46
limit7     A     127.0.0.47
limit8     A     127.0.0.48
dualhost   A     127.0.0.20
dualhost   AAAA  ::1
; domains (the cases of routing.test.ts)
failover   MX    10 dead
failover   MX    20 ok
greet421   MX    10 mx421
greet421   MX    20 ok
rcpt4xx    MX    10 mx450
rcpt4xx    MX    20 ok
nullmx     MX    0 .
nullmx     A     127.0.0.24
implicit   A     127.0.0.21
nxmx       MX    10 missing
allfail    MX    10 dead
allfail    MX    20 dead2
limit      MX    10 limit1
limit      MX    20 limit2
limit      MX    30 limit3
limit      MX    40 limit4
limit      MX    50 limit5
limit      MX    60 limit6
limit      MX    70 limit7
limit      MX    80 limit8
sesslimit  MX    10 sess1
sesslimit  MX    20 sess2
sesslimit  MX    30 sess3
sesslimit  MX    40 sess4
sessmix    MX    10 mx421
sessmix    MX    20 sess1
sessmix    MX    30 sess2
sessmix    MX    40 sess3
dual       MX    10 dualhost
; not in the zone, so NXDOMAIN: nxdomain.route.test, missing.route.test
EOF
}

# write_dns_conf DIR: unbound.conf and the zone file into DIR (they always name $DNS).
write_dns_conf() {
  local out="$1"
  mkdir -p "$out"
  route_zone > "$out/$ROUTE_ZONE.zone"
  cat > "$out/unbound.conf" <<EOF
# Generated by test/interop/peers.sh: loopback only, local zones only, never queries anyone.
server:
  interface: $(ep_addr "$DNS_EP")@$(ep_port "$DNS_EP")
  port: $(ep_port "$DNS_EP")
  access-control: 0.0.0.0/0 refuse
  access-control: 127.0.0.0/8 allow
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  username: ""
  chroot: ""
  directory: "$DNS"
  pidfile: "$DNS_PID"
  logfile: "$DNS/unbound.log"
  use-syslog: no
  verbosity: 1
  log-queries: yes
  log-replies: yes
  log-servfail: yes
  do-daemonize: yes
  # No trust anchors: every answer is insecure (no AD). A signed zone later needs only
  # trust-anchor-file lines (the validator is already in the chain).
  module-config: "validator iterator"
  # never send a query anywhere: route.test is read from a file, every other name is REFUSED
  do-not-query-address: 0.0.0.0/0
  do-not-query-address: ::0/0
  qname-minimisation: no
  trust-anchor-signaling: no
  root-key-sentinel: no
  cache-max-ttl: 60
  cache-max-negative-ttl: 5
  # unbound serves RFC 6761 "test." as a static empty zone by default: lift that, refuse
  # everything else, and pass route.test. through to its auth-zone.
  local-zone: "test." nodefault
  local-zone: "." refuse
  local-zone: "$ROUTE_ZONE." transparent
remote-control:
  control-enable: no
auth-zone:
  name: "$ROUTE_ZONE."
  zonefile: "$DNS/$ROUTE_ZONE.zone"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
EOF
  # The silent endpoint: a second unbound that reads every query and drops it (access-control
  # deny), for DNS timeouts. (One unbound cannot do both: access-control, whose built-in
  # default allows 127.0.0.0/8, overrides interface-action.)
  cat > "$out/unbound-silent.conf" <<EOF
# Generated by test/interop/peers.sh: reads DNS queries on loopback and never answers.
server:
  interface: $(ep_addr "$DNS_SILENT_EP")@$(ep_port "$DNS_SILENT_EP")
  port: $(ep_port "$DNS_SILENT_EP")
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  access-control: 0.0.0.0/0 deny
  access-control: 127.0.0.0/8 deny
  username: ""
  chroot: ""
  directory: "$DNS"
  pidfile: "$DNS_SILENT_PID"
  logfile: "$DNS/unbound-silent.log"
  use-syslog: no
  verbosity: 1
  do-daemonize: yes
  module-config: "iterator"
  do-not-query-address: 0.0.0.0/0
  do-not-query-address: ::0/0
  local-zone: "." refuse
remote-control:
  control-enable: no
EOF
}

dns_running() { pid_alive "$DNS_PID" unbound && pid_alive "$DNS_SILENT_PID" unbound; }

# dns_check: the zone answers on DNS_EP and the silent endpoint stays silent (Node's resolver;
# skipped without node).
dns_check() {
  command -v node >/dev/null || { say "warning: no node on PATH: DNS answers not checked"; return 0; }
  node --input-type=module -e '
    import { Resolver } from "node:dns/promises";
    const [ep, silent] = process.argv.slice(1);
    const r = new Resolver({ timeout: 2000, tries: 1 }); r.setServers([ep]);
    const mx = await r.resolveMx("failover.route.test");
    if (mx.length !== 2) throw new Error("failover.route.test MX: " + JSON.stringify(mx));
    const s = new Resolver({ timeout: 300, tries: 1 }); s.setServers([silent]);
    try { await s.resolve4("ok.route.test"); throw new Error(silent + " answered"); }
    catch (e) { if (e.code !== "ETIMEOUT") throw e; }
  ' "$DNS_EP" "$DNS_SILENT_EP"
}

# dns_current: the running unbound's configuration and zone are what write_dns_conf writes now.
dns_current() {
  local tmp rc=0
  tmp="$(mktemp -d)"
  write_dns_conf "$tmp"
  cmp -s "$tmp/unbound.conf" "$DNS_CONF" && cmp -s "$tmp/unbound-silent.conf" "$DNS_SILENT_CONF" \
    && cmp -s "$tmp/$ROUTE_ZONE.zone" "$DNS/$ROUTE_ZONE.zone" || rc=1
  rm -rf "$tmp"
  return $rc
}

start_dns() {
  if dns_running; then
    if dns_current; then say "unbound already running (pids $(pidfile_pid "$DNS_PID") $(pidfile_pid "$DNS_SILENT_PID"))"; return 0; fi
    say "unbound runs with an older configuration or zone: restarting it"
    stop_dns
  fi
  stop_dns   # one of the two may have been left running
  local ep
  for ep in "$DNS_EP" "$DNS_SILENT_EP"; do
    listening "$(ep_addr "$ep")" "$(ep_port "$ep")" && die "$ep is already in use by another process (not this harness's unbound)"
  done
  write_dns_conf "$DNS"
  local conf
  for conf in "$DNS_CONF" "$DNS_SILENT_CONF"; do
    unbound-checkconf "$conf" >"$DNS/checkconf.log" 2>&1 || { cat "$DNS/checkconf.log" >&2; die "unbound-checkconf $conf failed"; }
  done
  : > "$DNS/unbound.log"
  : > "$DNS/unbound-silent.log"
  unbound -c "$DNS_CONF" </dev/null >>"$DNS/unbound.log" 2>&1 || { tail -20 "$DNS/unbound.log" >&2; die "unbound failed to start; see $DNS/unbound.log"; }
  unbound -c "$DNS_SILENT_CONF" </dev/null >>"$DNS/unbound-silent.log" 2>&1 || { tail -20 "$DNS/unbound-silent.log" >&2; die "the silent unbound failed to start; see $DNS/unbound-silent.log"; }
  local i
  for ep in "$DNS_EP" "$DNS_SILENT_EP"; do
    for i in $(seq 100); do listening "$(ep_addr "$ep")" "$(ep_port "$ep")" && break; sleep 0.1; done
  done
  dns_check || die "unbound on $DNS_EP / $DNS_SILENT_EP does not behave as expected; see $DNS/unbound.log"
  say "unbound on $DNS_EP (zone $ROUTE_ZONE, file $DNS/$ROUTE_ZONE.zone, log $DNS/unbound.log); silent unbound on $DNS_SILENT_EP"
}

stop_dns() {
  kill_pidfile "$DNS_PID" unbound
  kill_pidfile "$DNS_SILENT_PID" unbound
  local ep
  for ep in "$DNS_EP" "$DNS_SILENT_EP"; do
    wait_closed "$(ep_addr "$ep")" "$(ep_port "$ep")" 10 || say "warning: $ep still accepts connections"
  done
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
MAILWIRE_INTEROP_DNS=$DNS_EP
MAILWIRE_INTEROP_DNS_SILENT=$DNS_SILENT_EP
MAILWIRE_INTEROP_DNS_LOG=$DNS/unbound.log
MAILWIRE_INTEROP_ROUTE_ZONE=$ROUTE_ZONE
MAILWIRE_INTEROP_ROUTE_PORT=$ROUTE_PORT
MAILWIRE_INTEROP_ROUTE_IPV6=$(route_ipv6 && echo yes || echo no)
EOF
  mv "$DIR/ports.env.tmp" "$DIR/ports.env"
}

# A running instance keeps the endpoints it was started with: read them back for stop/status.
load_running_ports() {
  if [[ -s "$DIR/ports.env" ]]; then
    PF_EP="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX=//p' "$DIR/ports.env")"
    PF2_EP="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX_NOCHUNKING=//p' "$DIR/ports.env")"
    LMTP_EP="$(sed -n 's/^MAILWIRE_INTEROP_LMTP=//p' "$DIR/ports.env")"
    local v
    v="$(sed -n 's/^MAILWIRE_INTEROP_DNS=//p' "$DIR/ports.env")"; [[ -z "$v" ]] || DNS_EP="$v"
    v="$(sed -n 's/^MAILWIRE_INTEROP_DNS_SILENT=//p' "$DIR/ports.env")"; [[ -z "$v" ]] || DNS_SILENT_EP="$v"
    v="$(sed -n 's/^MAILWIRE_INTEROP_ROUTE_PORT=//p' "$DIR/ports.env")"; [[ -z "$v" ]] || ROUTE_PORT="$v"
  fi
}

status() {
  load_running_ports
  local rc=0
  if ! pf_running; then
    echo "postfix  stopped"; rc=1
  elif ! pf_current; then
    echo "postfix  running  pid $(pidfile_pid "$PF_PID")  OUTDATED configuration (peers.sh start restarts it)"; rc=1
  else
    echo "postfix  running  pid $(pidfile_pid "$PF_PID")  $PF_EP (CHUNKING)  $PF2_EP (no CHUNKING)  log $PF/maillog"
    echo "route    running  (postfix)  $(route_endpoints | wc -w) listeners on port $ROUTE_PORT: $(route_servers | awk '{printf "%s%s=%s", (NR>1 ? " " : ""), $1, $2}')"
  fi
  if dc_running; then
    echo "dovecot  running  pid $(pidfile_pid "$DC_PID")  $LMTP_EP  unix:$DC_SOCK  log $DC/dovecot.log"
  else
    echo "dovecot  stopped"; rc=1
  fi
  if ! dns_running; then
    echo "dns      stopped (or only one of its two unbound processes runs)"; rc=1
  elif ! dns_current; then
    echo "dns      running  pid $(pidfile_pid "$DNS_PID")  OUTDATED configuration or zone (peers.sh start restarts it)"; rc=1
  else
    echo "dns      running  pids $(pidfile_pid "$DNS_PID") $(pidfile_pid "$DNS_SILENT_PID")  $DNS_EP (zone $ROUTE_ZONE)  silent $DNS_SILENT_EP  log $DNS/unbound.log"
  fi
  return $rc
}

start() {
  preflight
  if pf_running || dc_running || dns_running; then
    # keep what runs, on the endpoints it was started with
    local want="$PF_EP $PF2_EP $LMTP_EP $DNS_EP $DNS_SILENT_EP $ROUTE_PORT"
    load_running_ports
    [[ "$want" == "$PF_EP $PF2_EP $LMTP_EP $DNS_EP $DNS_SILENT_EP $ROUTE_PORT" ]] \
      || say "warning: already running on $PF_EP $PF2_EP $LMTP_EP $DNS_EP $DNS_SILENT_EP port $ROUTE_PORT; stop first to change endpoints"
  fi
  start_dns
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
  stop_dns
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  *) sed -n '2,2p' "$0" >&2; exit 2 ;;
esac
