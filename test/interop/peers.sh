#!/usr/bin/env bash
# Usage: test/interop/peers.sh start|stop|status|restart
#
# Real mail servers for mailwire's interop tests, on loopback only, every file under one
# state directory (default /tmp/mailwire-interop; nothing in /etc/postfix or /etc/dovecot is
# read or changed). Needs root, node and the Debian packages postfix, dovecot-core, dovecot-lmtpd,
# unbound, ldnsutils, openssl.
#
#   postfix  one private instance (postfix -c $DIR/postfix/etc), STARTTLS and AUTH off (except
#            on the TLS and SASL labs' listeners below):
#            $MAILWIRE_INTEROP_POSTFIX            (127.0.0.1:11025) PIPELINING SIZE 8BITMIME DSN
#                                                 SMTPUTF8 ENHANCEDSTATUSCODES CHUNKING
#            $MAILWIRE_INTEROP_POSTFIX_NOCHUNKING (127.0.0.1:11026) the same without CHUNKING
#            $MAILWIRE_INTEROP_POSTFIX_NO8BITMIME (127.0.0.1:11027) the same without 8BITMIME and
#                                                 SMTPUTF8 (SMTPUTF8 implies 8BITMIME to Postfix's
#                                                 client): 8-bit MIME must be downgraded
#            $MAILWIRE_INTEROP_POSTFIX_NOSMTPUTF8 (127.0.0.1:11028) the same with smtputf8_enable=no
#                                                 (no SMTPUTF8 in EHLO; UTF-8 addresses refused)
#            $MAILWIRE_INTEROP_POSTFIX_XFORWARD   (127.0.0.1:11029) announces XFORWARD to loopback
#                                                 clients (smtpd_authorized_xforward_hosts); its
#                                                 cleanup service (cleanup-keep) keeps Return-Path:
#                                                 headers (message_drop_headers without return-path)
#            Mail for example.test goes by virtual(8) to maildirs under $DIR/postfix/mail:
#            example.test/{alice,bob,carol}/new/, catchall/new/ (any other local part).
#            Fixed outcomes: RCPT reject-5xx@ 550 5.1.1, defer-4xx@ 450 4.2.0, reject-552@
#            552 5.2.2, defer-421@ 421 4.7.0 (then disconnect); end of data, by envelope
#            sender: data-reject@ANY 554 5.7.1, data-defer@ANY 451 4.7.1. Nothing is relayed:
#            every transport but virtual is error:, and master.cf has no smtp/lmtp client.
#            Log: $DIR/postfix/maillog (syslog names postfix-interop/chunking/smtpd,
#            postfix-interop/nochunking/smtpd, postfix-interop/no8bitmime/smtpd,
#            postfix-interop/nosmtputf8/smtpd, postfix-interop/xforward/smtpd; each disconnect line
#            counts the commands seen, e.g. "bdat=1" or "data=1").
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
#   tls      the TLS lab (test/interop/README.md "TLS lab"): a harness CA and server certificates
#            ($DIR/certs, openssl: good, wrongname, expired, selfsigned, mta-sts), and more smtpd
#            listeners in the same Postfix instance at the lab port on 127.0.0.61-83, syslog names
#            postfix-interop/tls-NAME: good, wrongname, expired, selfsigned (STARTTLS with that
#            certificate), plain (no STARTTLS), badtls (STARTTLS whose handshake always fails),
#            smtps (wrapper mode), resume (session cache), DANE, insecure and MTA-STS MX hosts.
#            The unbound below also serves tls.test, dane.test (signed with ldns-signzone; its
#            KSK's DS is the trust anchor), insecure.test and sts.test.
#   mta-sts  test/interop/mta-sts-server.mjs: Node HTTPS on 127.0.0.80:443 serving the MTA-STS
#            policies of sts.test (harness CA certificate); log $DIR/mta-sts/requests.log.
#   sasl     the SASL lab (test/interop/README.md "SASL lab"): a private Dovecot auth-only instance
#            (dovecot -c $DIR/dovecot-auth/dovecot.conf, protocols = none, passwd-file users with
#            {PLAIN} passwords, mechanisms PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256) and three
#            more smtpd listeners in the same Postfix instance at the lab port, syslog names
#            postfix-interop/sasl-NAME, that relay only for authenticated clients (smtpd_sasl_type
#            dovecot): submit 127.0.0.91 (STARTTLS, good certificate, AUTH only after STARTTLS),
#            plaintext 127.0.0.92 (no TLS, all five mechanisms), plainonly 127.0.0.93 (no TLS, PLAIN
#            only). The zone sasl.test names them. Log of the auth instance: $DIR/dovecot-auth/dovecot.log.
#   dovecot  private LMTP instance (dovecot -c $DIR/dovecot/dovecot.conf), STARTTLS off:
#            unix:$DIR/dovecot/lmtp.sock and $MAILWIRE_INTEROP_LMTP (127.0.0.1:11024).
#            alice@, bob@example.test: 250 after data (maildirs $DIR/dovecot/mail/USER/new/);
#            full@: 552 5.2.2 after data (quota 1 byte); fulltmp@: 452 4.2.2 (same, tempfail);
#            anyone else: 550 5.1.1 at RCPT. Log: $DIR/dovecot/dovecot.log.
#
# Environment (all optional): MAILWIRE_INTEROP_DIR, the six endpoints above (five Postfix, one
# LMTP) and the two DNS endpoints as 127.x.y.z:PORT, MAILWIRE_INTEROP_ROUTE_PORT. `start` writes $DIR/ports.env (KEY=VALUE lines, sourceable) with the
# endpoints and paths the tests use. start is idempotent; stop ends only the processes whose
# pid files this script's instances wrote; status prints one line per peer (exit 1 if one is down).
set -euo pipefail
umask 022   # configs and state must be readable by postfix, dovecot and nobody

DIR="${MAILWIRE_INTEROP_DIR:-/tmp/mailwire-interop}"
PF_EP="${MAILWIRE_INTEROP_POSTFIX:-127.0.0.1:11025}"
PF2_EP="${MAILWIRE_INTEROP_POSTFIX_NOCHUNKING:-127.0.0.1:11026}"
PF_NO8BIT_EP="${MAILWIRE_INTEROP_POSTFIX_NO8BITMIME:-127.0.0.1:11027}"
PF_NOUTF8_EP="${MAILWIRE_INTEROP_POSTFIX_NOSMTPUTF8:-127.0.0.1:11028}"
PF_XF_EP="${MAILWIRE_INTEROP_POSTFIX_XFORWARD:-127.0.0.1:11029}"
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
DA="$DIR/dovecot-auth"
DA_CONF="$DA/dovecot.conf"
DA_PID="$DA/run/master.pid"
DA_SOCK="$DA/run/auth-client"
DNS="$DIR/dns"
DNS_CONF="$DNS/unbound.conf"
DNS_PID="$DNS/unbound.pid"
DNS_SILENT_CONF="$DNS/unbound-silent.conf"
DNS_SILENT_PID="$DNS/unbound-silent.pid"
ROUTE_ZONE=route.test
CERTS="$DIR/certs"
MS="$DIR/mta-sts"
MS_PID="$MS/server.pid"
# The MTA-STS policy server's address is in the zone sts.test; RFC 8461 fixes the port (443).
MS_ADDR=127.0.0.80
MS_PORT=443
MS_SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mta-sts-server.mjs"

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
  command -v ldns-signzone >/dev/null && command -v ldns-keygen >/dev/null && command -v drill >/dev/null || missing+=(ldnsutils)
  command -v openssl >/dev/null || missing+=(openssl)
  (( ${#missing[@]} == 0 )) || die "missing Debian package(s): ${missing[*]} (apt-get install ${missing[*]})"
  command -v node >/dev/null || die "node is not on PATH (the MTA-STS policy server and the start checks use it)"
  local u; for u in postfix dovecot dovenull nobody; do id "$u" >/dev/null 2>&1 || die "system user $u does not exist (reinstall postfix / dovecot-core)"; done
  getent group postdrop >/dev/null || die "group postdrop does not exist (reinstall postfix)"
  [[ "$DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "MAILWIRE_INTEROP_DIR must be an absolute path of [A-Za-z0-9._/-], got '$DIR'"
  check_ep "$PF_EP"; check_ep "$PF2_EP"; check_ep "$PF_NO8BIT_EP"; check_ep "$PF_NOUTF8_EP"; check_ep "$PF_XF_EP"; check_ep "$LMTP_EP"; check_ep "$DNS_EP"; check_ep "$DNS_SILENT_EP"
  [[ "$ROUTE_PORT" =~ ^[0-9]{1,5}$ ]] && (( ROUTE_PORT > 0 && ROUTE_PORT < 65536 )) || die "MAILWIRE_INTEROP_ROUTE_PORT must be a port number, got '$ROUTE_PORT'"
  [[ "$(ep_port "$DNS_EP")" != "$(ep_port "$DNS_SILENT_EP")" ]] || die "MAILWIRE_INTEROP_DNS and MAILWIRE_INTEROP_DNS_SILENT need different ports (one unbound serves both)"
  check_traversable   # the parts that exist already; what mkdir adds is 0755 (umask 022)
  mkdir -p "$DIR"
  chmod 0755 "$DIR"
}

# ---------------------------------------------------------------- TLS lab: certificates

# The harness CA and the server certificates (openssl; ECDSA P-256 keys, SHA-256 signatures), in
# $CERTS. Each server certificate has a .chain.pem (key, leaf, CA: the order Postfix's
# smtpd_tls_chain_files wants; the CA is in the chain so that DANE-TA 2 1 1 can match it).
#   ca          "mailwire interop CA"; the tests trust it through tls.ca (MAILWIRE_INTEROP_TLS_CA)
#   good        CA-signed, valid, every name a "good" server answers for (GOOD_NAMES)
#   wrongname   CA-signed, valid, for someone-else.test only (no lab server has that name)
#   expired     CA-signed for expired.tls.test, valid 2020-01-01 .. 2021-01-01 (openssl ca backdates)
#   selfsigned  self-signed for selfsigned.tls.test (right name, no chain to the CA)
#   mta-sts     CA-signed for the MTA-STS policy hosts (STS_HOSTS), used by the HTTPS server
# Regenerated only when missing, when the names below change (certs/spec) or within 30 days of
# expiry; the DNS zones (TLSA records) and the servers follow the files.
GOOD_NAMES=(good.tls.test badtls.tls.test smtps.tls.test resume.tls.test
            mx.dane.test mxta.dane.test mxbad.dane.test mxnotlsa.dane.test mx.insecure.test
            good.sts.test bad.sts.test submit.sasl.test)
WRONG_NAME=someone-else.test
STS_DOMAINS=(sts.test testing.sts.test badcert.sts.test)

certs_spec() {
  echo "v1 ec-p256 good=${GOOD_NAMES[*]} wrong=$WRONG_NAME expired=expired.tls.test selfsigned=selfsigned.tls.test"
  echo "mta-sts=$(printf 'mta-sts.%s ' "${STS_DOMAINS[@]}")"
}

certs_current() {
  local f
  for f in ca good wrongname expired selfsigned mta-sts; do [[ -s "$CERTS/$f.crt" && -s "$CERTS/$f.key" ]] || return 1; done
  for f in good wrongname expired selfsigned; do [[ -s "$CERTS/$f.chain.pem" ]] || return 1; done
  [[ "$(cat "$CERTS/spec" 2>/dev/null)" == "$(certs_spec)" ]] || return 1
  for f in ca good wrongname selfsigned mta-sts; do openssl x509 -in "$CERTS/$f.crt" -noout -checkend $((30 * 86400)) >/dev/null || return 1; done
}

# cert_leaf NAME "DNS:a,DNS:b" [STARTDATE ENDDATE]: a CA-signed leaf (backdated when dates given).
cert_leaf() {
  local base="$CERTS/$1" san="$2" start="${3:-}" end="${4:-}" cn="${2%%,*}"
  cn="${cn#DNS:}"
  ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$base.key"
  cat > "$base.cnf" <<EOC
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
O = mailwire interop
CN = $cn
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
EOC
  ossl req -new -key "$base.key" -config "$base.cnf" -out "$base.csr"
  if [[ -n "$start" ]]; then
    # `openssl x509 -req` (OpenSSL 3.0) cannot backdate; `openssl ca` can.
    local db="$CERTS/ca-db"
    rm -rf "$db"; mkdir -p "$db"; : > "$db/index.txt"; ossl rand -hex 8 > "$db/serial"
    cat > "$db/ca.cnf" <<EOC
[ ca ]
default_ca = interop
[ interop ]
dir = $db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $CERTS/ca.crt
private_key = $CERTS/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
O = optional
CN = supplied
EOC
    ossl ca -batch -config "$db/ca.cnf" -in "$base.csr" -out "$base.crt" \
      -startdate "$start" -enddate "$end" -extfile "$base.cnf" -extensions ext -notext
    rm -rf "$db"
  else
    ossl x509 -req -in "$base.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -set_serial "0x$(ossl rand -hex 8)" \
      -days 825 -sha256 -extfile "$base.cnf" -extensions ext -out "$base.crt"
  fi
  rm -f "$base.csr" "$base.cnf"
  cat "$base.key" "$base.crt" "$CERTS/ca.crt" > "$base.chain.pem"
}

write_certs() {
  if certs_current; then return 0; fi
  say "generating the harness CA and server certificates in $CERTS"
  rm -rf "$CERTS"; mkdir -p "$CERTS"; chmod 0755 "$CERTS"
  : > "$CERTS/openssl.log"
  {
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CERTS/ca.key"
    ossl req -x509 -key "$CERTS/ca.key" -out "$CERTS/ca.crt" -days 3650 -sha256 \
      -subj "/O=mailwire interop/CN=mailwire interop CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash"
    local san n
    san=""; for n in "${GOOD_NAMES[@]}"; do san+="${san:+,}DNS:$n"; done
    cert_leaf good "$san"
    cert_leaf wrongname "DNS:$WRONG_NAME"
    cert_leaf expired "DNS:expired.tls.test" 20200101000000Z 20210101000000Z
    san=""; for n in "${STS_DOMAINS[@]}"; do san+="${san:+,}DNS:mta-sts.$n"; done
    cert_leaf mta-sts "$san"
    ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CERTS/selfsigned.key"
    ossl req -x509 -key "$CERTS/selfsigned.key" -out "$CERTS/selfsigned.crt" -days 825 -sha256 \
      -subj "/O=self/CN=selfsigned.tls.test" -addext "subjectAltName=DNS:selfsigned.tls.test" \
      -addext "basicConstraints=critical,CA:FALSE"
    cat "$CERTS/selfsigned.key" "$CERTS/selfsigned.crt" > "$CERTS/selfsigned.chain.pem"
  }
  # Keys stay root-only: Postfix reads the chain files as root before it drops privileges, and
  # the HTTPS server runs as root.
  chmod 0644 "$CERTS"/*.crt; chmod 0600 "$CERTS"/*.key "$CERTS"/*.chain.pem
  openssl verify -CAfile "$CERTS/ca.crt" "$CERTS/good.crt" "$CERTS/wrongname.crt" "$CERTS/mta-sts.crt" >/dev/null \
    || die "the generated certificates do not verify against $CERTS/ca.crt"
  certs_spec > "$CERTS/spec"
}

# ossl ARGS...: openssl with its chatter in $CERTS/openssl.log; a failure ends the script.
ossl() { openssl "$@" 2>>"$CERTS/openssl.log" || { tail -20 "$CERTS/openssl.log" >&2; die "openssl $1 failed (log: $CERTS/openssl.log)"; }; }

# TLSA association data: SHA-256 of a certificate's SubjectPublicKeyInfo (selector 1, type 1).
spki_sha256() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }


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
# The TLS lab's listeners turn STARTTLS on in master.cf (tls_master_cf). tlsmgr(8) reads the
# session cache settings from here; only the listener "resume" uses the database (the others
# set it empty). Lab only: TLS details in Received headers and the log.
smtpd_tls_session_cache_database = btree:\$data_directory/smtpd_scache
smtpd_tls_session_cache_timeout = 3600s
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = no
EOF

  cat > "$out/master.cf" <<EOF
# Generated by test/interop/peers.sh. No chroot; smtpd listeners on loopback only.
$PF_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/chunking
$PF2_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/nochunking
  -o smtpd_discard_ehlo_keywords=silent-discard,etrn,chunking
# Content lab (test/interop/content.test.ts): 8BITMIME hidden (and SMTPUTF8, which implies
# 8BITMIME to Postfix's smtp_proto.c and to mailwire); SMTPUTF8 off; XFORWARD for loopback
# clients, with a cleanup that keeps Return-Path: headers so that the stored copy shows the
# client's own (cleanup drops them by default: message_drop_headers).
$PF_NO8BIT_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/no8bitmime
  -o smtpd_discard_ehlo_keywords=silent-discard,etrn,8bitmime,smtputf8
$PF_NOUTF8_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/nosmtputf8
  -o smtputf8_enable=no
$PF_XF_EP inet n - n - - smtpd
  -o syslog_name=postfix-interop/xforward
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
  -o cleanup_service_name=cleanup-keep
cleanup-keep unix n     -       n       -       0       cleanup
  -o syslog_name=postfix-interop/keep
  -o message_drop_headers=bcc,content-length,resent-bcc
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
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
EOF
  route_master_cf >> "$out/master.cf"
  tls_master_cf >> "$out/master.cf"
  sasl_master_cf >> "$out/master.cf"
  # Routing lab tables (regexp: built in, read at process start). /^/ matches every lookup key.
  echo '/^/ 421 4.3.2 interop: this server greets 421' > "$out/route_greet421.regexp"
  echo '/^/ 451 4.3.0 interop: try MAIL again later' > "$out/route_mail451.regexp"
}

pf_running() { pid_alive "$PF_PID" master; }

# The main listeners and the content lab's (not the route, TLS and SASL labs').
pf_endpoints() { echo "$PF_EP $PF2_EP $PF_NO8BIT_EP $PF_NOUTF8_EP $PF_XF_EP"; }

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
  for ep in $(pf_endpoints) $(route_endpoints) $(route_dead_endpoints) $(tls_endpoints) $(sasl_endpoints); do
    listening "$(ep_host "$ep")" "$(ep_port "$ep")" && die "$ep is already in use by another process (not this harness's postfix)"
  done
  write_postfix
  postfix -c "$PF_CONF" start </dev/null >"$PF/start.log" 2>&1 \
    || { cat "$PF/start.log" >&2; die "postfix start failed (log: $PF/start.log, $PF/maillog)"; }
  for ep in $(pf_endpoints); do
    wait_greeting "$(ep_addr "$ep")" "$(ep_port "$ep")" 15 || die "postfix does not answer on $ep; see $PF/maillog"
  done
  wait_route_listeners
  wait_tls_listeners
  wait_sasl_listeners
  say "postfix on $PF_EP (CHUNKING) and $PF2_EP (no CHUNKING); maildirs $PF/mail, log $PF/maillog"
  say "content lab: $PF_NO8BIT_EP (no 8BITMIME, no SMTPUTF8), $PF_NOUTF8_EP (no SMTPUTF8), $PF_XF_EP (XFORWARD, Return-Path kept)"
  say "routing lab: $(route_endpoints | wc -w) smtpd listeners on port $ROUTE_PORT (127.0.0.21-48$(route_ipv6 && echo ', [::1]'))"
  say "TLS lab: $(tls_endpoints | wc -w) smtpd listeners on port $ROUTE_PORT (127.0.0.61-83), certificates in $CERTS"
  say "SASL lab: $(sasl_endpoints | wc -w) smtpd listeners on port $ROUTE_PORT (127.0.0.91-93), auth by $DA_SOCK"
}

stop_postfix() {
  if pf_running; then
    postfix -c "$PF_CONF" stop </dev/null >/dev/null 2>&1 || true
    local i; for i in $(seq 100); do pf_running || break; sleep 0.1; done
  fi
  kill_pidfile "$PF_PID" master   # fallback: master only; its children end with it
  local ep
  for ep in $(pf_endpoints) $(route_endpoints) $(tls_endpoints) $(sasl_endpoints); do
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

# ---------------------------------------------------------------- TLS lab: smtpd listeners

# One line per server: NAME ADDRESS CERT BEHAVIOR. All listen on the lab port ($ROUTE_PORT) in the
# Postfix instance above, with syslog name postfix-interop/tls-NAME and myhostname NAME.tls.test,
# and accept every example.test recipient (no recipient restrictions). The zones tls.test,
# dane.test, insecure.test and sts.test (tls_zones below) point at them. Behaviors:
#   starttls  STARTTLS offered (smtpd_tls_security_level=may) with CERT. No session cache database
#             (smtpd_tls_session_cache_database empty), but sessions still resume through tickets
#             and OpenSSL's in-process cache when the same smtpd process serves the next session
#   plain     no STARTTLS (smtpd_tls_security_level=none)
#   badtls    STARTTLS offered and answered 220, but the handshake always fails: TLS 1.3 is off and
#             the only cipher suites are eNULL ones, which no client offers unless asked to
#             (OpenSSL's DEFAULT excludes them): "no shared cipher"
#   smtps     implicit TLS (smtpd_tls_wrappermode=yes; the handshake comes before the greeting)
#   resume    like starttls, plus Postfix's session cache (main.cf's smtpd_tls_session_cache_database,
#             kept by tlsmgr for all smtpd processes): a client that offers its last session resumes it.
#             smtpd_tls_loglevel=2, so the log says "Reusing old session" when a client resumed
# Keep in sync with TLS in helpers.ts and the tables in README.md.
TLS_SERVERS=(
  "good        127.0.0.61 good        starttls"
  "wrongname   127.0.0.62 wrongname   starttls"
  "expired     127.0.0.63 expired     starttls"
  "selfsigned  127.0.0.64 selfsigned  starttls"
  "plain       127.0.0.65 -           plain"
  "badtls      127.0.0.66 good        badtls"
  "smtps       127.0.0.67 good        smtps"
  "resume      127.0.0.68 good        resume"
  "daneee      127.0.0.71 good        starttls"
  "daneta      127.0.0.72 good        starttls"
  "danebad     127.0.0.73 good        starttls"
  "insecure    127.0.0.74 good        starttls"
  "stsgood     127.0.0.81 good        starttls"
  "stsbad      127.0.0.82 good        starttls"
  "stswrong    127.0.0.83 wrongname   starttls"
)

tls_servers() { printf '%s\n' "${TLS_SERVERS[@]}"; }
tls_endpoints() { local name addr cert beh; while read -r name addr cert beh; do echo "$addr:$ROUTE_PORT"; done < <(tls_servers); }

tls_master_cf() {
  local name addr cert beh
  echo "# TLS lab (test/interop/README.md): one address per server, at the lab port."
  while read -r name addr cert beh; do
    echo "$addr:$ROUTE_PORT inet n - n - - smtpd"
    echo "  -o syslog_name=postfix-interop/tls-$name"
    echo "  -o myhostname=$name.tls.test"
    echo "  -o smtpd_recipient_restrictions="
    [[ "$cert" == - ]] || echo "  -o smtpd_tls_chain_files=$CERTS/$cert.chain.pem"
    case "$beh" in
      starttls)
        echo "  -o smtpd_tls_security_level=may"
        echo "  -o smtpd_tls_session_cache_database=" ;;
      plain)
        echo "  -o smtpd_tls_security_level=none" ;;
      badtls)
        echo "  -o smtpd_tls_security_level=may"
        echo "  -o smtpd_tls_session_cache_database="
        echo "  -o smtpd_tls_protocols=<=TLSv1.2"
        echo "  -o smtpd_tls_ciphers=null"
        echo "  -o tls_null_cipherlist=eNULL:!aNULL:@SECLEVEL=0" ;;
      smtps)
        echo "  -o smtpd_tls_wrappermode=yes"
        echo "  -o smtpd_tls_security_level=encrypt"
        echo "  -o smtpd_tls_session_cache_database=" ;;
      resume)
        echo "  -o smtpd_tls_security_level=may"   # main.cf: cache database and timeout
        echo "  -o smtpd_tls_loglevel=2" ;;
      *) die "unknown TLS server behavior $beh" ;;
    esac
  done < <(tls_servers)
}

# wait_tls_listeners: every TLS lab server greets 220 (smtps: after a TLS handshake, checked
# with openssl s_client) and offers STARTTLS or not, as its behavior says.
wait_tls_listeners() {
  local name addr cert beh i ok
  while read -r name addr cert beh; do
    ok=0
    for i in $(seq 150); do
      if [[ "$beh" == smtps ]]; then
        smtps_greets "$addr" "$ROUTE_PORT" && { ok=1; break; }
      else
        greets "$addr" "$ROUTE_PORT" 220 && { ok=1; break; }
      fi
      sleep 0.1
    done
    (( ok )) || die "TLS server $name ($addr:$ROUTE_PORT) does not greet 220; see $PF/maillog"
  done < <(tls_servers)
}

smtps_greets() {
  printf 'QUIT\r\n' | timeout 5 openssl s_client -connect "$1:$2" -quiet -ign_eof 2>/dev/null | grep -q '^220 '
}

# ---------------------------------------------------------------- SASL lab: smtpd listeners

# One line per server: NAME ADDRESS BEHAVIOR. All listen on the lab port ($ROUTE_PORT) in the Postfix
# instance above, with syslog name postfix-interop/sasl-NAME and myhostname NAME.sasl.test, and
# authenticate through the private Dovecot auth instance below (smtpd_sasl_type dovecot). They
# relay only for authenticated clients (smtpd_relay_restrictions permit_sasl_authenticated, reject:
# an anonymous RCPT gets 554 5.7.1), even to example.test, whose mail goes to the maildirs above;
# the stored copy says "(Authenticated sender: USER)" (smtpd_sasl_authenticated_header). Postfix
# logs "client=…, sasl_method=M, sasl_username=U" for an authenticated transaction, "warning: …:
# SASL M authentication failed: …" for a refused AUTH, and counts "auth=N/M" on the disconnect line.
#   submission  STARTTLS with the good certificate (submit.sasl.test is one of its names), AUTH
#               offered only after STARTTLS (smtpd_tls_auth_only), all of Dovecot's mechanisms
#   plaintext   no TLS; PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 offered in plaintext
#               (smtpd_sasl_security_options noanonymous)
#   plainonly   no TLS; only PLAIN offered (smtpd_sasl_mechanism_filter plain)
# Keep in sync with SASL in helpers.ts, sasl_zone and the tables in README.md.
SASL_SERVERS=(
  "submit     127.0.0.91 submission"
  "plaintext  127.0.0.92 plaintext"
  "plainonly  127.0.0.93 plainonly"
)
# What Dovecot offers (auth_mechanisms) and the test users (passwd-file, {PLAIN} so that Dovecot can
# do CRAM-MD5 and SCRAM, which need the plaintext or a scheme-specific hash).
SASL_MECHS="plain login cram-md5 scram-sha-1 scram-sha-256"
SASL_USERS=(
  "test@example.test:{PLAIN}testpass"
  "alice@example.test:{PLAIN}alice-pw"
  "utf8@example.test:{PLAIN}pässwörd"
)

sasl_servers() { printf '%s\n' "${SASL_SERVERS[@]}"; }
sasl_endpoints() { local name addr beh; while read -r name addr beh; do echo "$addr:$ROUTE_PORT"; done < <(sasl_servers); }

sasl_master_cf() {
  local name addr beh
  echo "# SASL lab (test/interop/README.md): authenticated relaying, Dovecot auth at $DA_SOCK."
  while read -r name addr beh; do
    echo "$addr:$ROUTE_PORT inet n - n - - smtpd"
    echo "  -o syslog_name=postfix-interop/sasl-$name"
    echo "  -o myhostname=$name.sasl.test"
    echo "  -o smtpd_sasl_auth_enable=yes"
    echo "  -o smtpd_sasl_type=dovecot"
    echo "  -o smtpd_sasl_path=$DA_SOCK"
    echo "  -o smtpd_sasl_security_options=noanonymous"
    echo "  -o smtpd_sasl_tls_security_options=noanonymous"
    echo "  -o smtpd_sasl_authenticated_header=yes"
    echo "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
    echo "  -o smtpd_recipient_restrictions="
    case "$beh" in
      submission)
        echo "  -o smtpd_tls_security_level=may"
        echo "  -o smtpd_tls_chain_files=$CERTS/good.chain.pem"
        echo "  -o smtpd_tls_session_cache_database="
        echo "  -o smtpd_tls_auth_only=yes" ;;
      plaintext)
        echo "  -o smtpd_tls_security_level=none" ;;
      plainonly)
        echo "  -o smtpd_tls_security_level=none"
        echo "  -o smtpd_sasl_mechanism_filter=plain" ;;
      *) die "unknown SASL server behavior $beh" ;;
    esac
  done < <(sasl_servers)
}

wait_sasl_listeners() {
  local name addr beh i ok
  while read -r name addr beh; do
    ok=0
    for i in $(seq 150); do greets "$addr" "$ROUTE_PORT" 220 && { ok=1; break; }; sleep 0.1; done
    (( ok )) || die "SASL server $name ($addr:$ROUTE_PORT) does not greet 220; see $PF/maillog"
  done < <(sasl_servers)
}

# sasl_zone: the names of the SASL lab's servers (unsigned, like tls.test).
sasl_zone() {
  local name addr beh
  cat <<EOZ
\$ORIGIN $SASL_ZONE.
\$TTL 300
@          SOA   ns1.$SASL_ZONE. hostmaster.$SASL_ZONE. 1 3600 900 604800 300
@          NS    ns1
ns1        A     127.0.0.1
EOZ
  while read -r name addr beh; do printf '%-10s A     %s\n' "$name" "$addr"; done < <(sasl_servers)
}

# sasl_check: what each listener offers, and one AUTH PLAIN that Dovecot accepts (node, plain
# sockets and Node's TLS; from 127.0.0.1 with the right password, so it never earns a Dovecot
# penalty; 30 s per reply, longer than a penalty someone else's wrong password from 127.0.0.1 could cause). submit: STARTTLS and no AUTH before it, the five mechanisms after it; plaintext: the
# five; plainonly: PLAIN alone; AUTH PLAIN test@example.test at plaintext: 235.
sasl_check() {
  node --input-type=module -e '
    import { connect } from "node:net";
    import { connect as tlsConnect } from "node:tls";
    import { readFileSync } from "node:fs";
    const [port, ca, mechs] = process.argv.slice(1);
    const want = mechs.toUpperCase().split(" ").sort().join(" ");
    function session(sock) {
      let buf = ""; let waiting = null;
      const feed = (d) => { buf += d; waiting?.(); };
      const attach = (s) => { s.setEncoding("utf8"); s.on("data", feed); };
      attach(sock);
      const reply = () => new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("timeout; got " + JSON.stringify(buf))), 30000);
        const check = () => {
          const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buf);
          if (!m) return;
          const end = m.index + m[0].length; const text = buf.slice(0, end); buf = buf.slice(end);
          clearTimeout(t); waiting = null; resolve(text.split("\r\n").filter(Boolean));
        };
        waiting = check; check();
      });
      return { reply, attach, send: (s, l) => s.write(l + "\r\n") };
    }
    const auth = (lines) => (lines.find((l) => /^250[- ]AUTH /i.test(l)) ?? "").slice(9).toUpperCase().split(" ").filter(Boolean).sort().join(" ");
    const fail = (what, got) => { throw new Error(what + ": " + JSON.stringify(got)); };
    async function open(addr) {
      const s = connect({ host: addr, port: Number(port) });
      await new Promise((r, j) => { s.once("connect", r); s.once("error", j); });
      const c = session(s);
      const g = await c.reply(); if (!g[0].startsWith("220")) fail(addr + " greeting", g);
      c.send(s, "EHLO check.sasl.test");
      return { s, c, ehlo: await c.reply() };
    }
    // plaintext: all five, and a login that works
    { const { s, c, ehlo } = await open("127.0.0.92");
      if (auth(ehlo) !== want) fail("127.0.0.92 AUTH", ehlo);
      c.send(s, "AUTH PLAIN " + Buffer.from("\0test@example.test\0testpass").toString("base64"));
      const r = await c.reply(); if (!r[0].startsWith("235")) fail("127.0.0.92 AUTH PLAIN test@example.test", r);
      c.send(s, "QUIT"); await c.reply(); s.destroy(); }
    // plainonly: PLAIN alone
    { const { s, c, ehlo } = await open("127.0.0.93");
      if (auth(ehlo) !== "PLAIN") fail("127.0.0.93 AUTH", ehlo);
      c.send(s, "QUIT"); await c.reply(); s.destroy(); }
    // submit: no AUTH before STARTTLS, the five after it (certificate verified for submit.sasl.test)
    { const { s, c, ehlo } = await open("127.0.0.91");
      if (auth(ehlo) !== "" || !ehlo.some((l) => /^250[- ]STARTTLS/i.test(l))) fail("127.0.0.91 EHLO before STARTTLS", ehlo);
      c.send(s, "STARTTLS"); const r = await c.reply(); if (!r[0].startsWith("220")) fail("127.0.0.91 STARTTLS", r);
      s.removeAllListeners("data");
      const t = tlsConnect({ socket: s, servername: "submit.sasl.test", ca: readFileSync(ca) });
      await new Promise((res, rej) => { t.once("secureConnect", res); t.once("error", rej); });
      c.attach(t); c.send(t, "EHLO check.sasl.test"); const e2 = await c.reply();
      if (auth(e2) !== want) fail("127.0.0.91 AUTH after STARTTLS", e2);
      c.send(t, "QUIT"); await c.reply(); t.destroy(); }
  ' "$ROUTE_PORT" "$CERTS/ca.crt" "$SASL_MECHS"
}

# ---------------------------------------------------------------- SASL lab: Dovecot auth-only instance

# A private Dovecot that serves nothing but its auth socket (protocols = none), for Postfix's
# smtpd_sasl_type = dovecot. Users: SASL_USERS. auth_failure_delay stays at Dovecot's default (2 s),
# and Dovecot's auth penalty (anvil) slows every further login from a client address after a failed
# one (2, 4, 8, then 15 s, for about 30 s): tests that send a wrong password connect from a fresh
# 127.x.y.z address (mailwire's bindAddress), so that no other login is slowed.
write_dovecot_auth_conf() {
  local out="$1"   # the files always name $DA, wherever they are written
  mkdir -p "$out"
  printf '%s\n' "${SASL_USERS[@]}" > "$out/users"
  cat > "$out/dovecot.conf" <<EOF
# Generated by test/interop/peers.sh: a private Dovecot auth-only instance for Postfix's SASL.
base_dir = $DA/run
state_dir = $DA/state
instance_name = mailwire-interop-auth
log_path = $DA/dovecot.log
protocols = none
ssl = no
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
disable_plaintext_auth = no
auth_mechanisms = $SASL_MECHS
auth_verbose = yes
auth_verbose_passwords = no
auth_debug_passwords = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DA/users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
}

da_running() { pid_alive "$DA_PID" dovecot; }

da_current() {
  local tmp rc=0 f
  tmp="$(mktemp -d)"
  write_dovecot_auth_conf "$tmp"
  for f in dovecot.conf users; do cmp -s "$tmp/$f" "$DA/$f" || rc=1; done
  rm -rf "$tmp"
  return $rc
}

start_dovecot_auth() {
  if da_running; then
    if da_current; then say "dovecot auth already running (pid $(pidfile_pid "$DA_PID"))"; return 0; fi
    say "dovecot auth runs with an older configuration or users: restarting it"
    stop_dovecot_auth
  fi
  mkdir -p "$DA/run" "$DA/state"
  chmod 0755 "$DA"
  write_dovecot_auth_conf "$DA"
  chmod 0640 "$DA/users"; chgrp dovecot "$DA/users"
  rm -f "$DA_SOCK"
  dovecot -c "$DA_CONF" </dev/null >>"$DA/dovecot.log" 2>&1 || { tail -20 "$DA/dovecot.log" >&2; die "dovecot auth failed to start; see $DA/dovecot.log"; }
  local i; for i in $(seq 100); do [[ -S "$DA_SOCK" ]] && break; sleep 0.1; done
  [[ -S "$DA_SOCK" ]] || die "no socket $DA_SOCK; see $DA/dovecot.log"
  say "dovecot auth on unix:$DA_SOCK ($SASL_MECHS; log $DA/dovecot.log)"
}

stop_dovecot_auth() {
  kill_pidfile "$DA_PID" dovecot   # the master ends its own children
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
  local z
  for z in "${DNS_ZONES[@]}"; do lab_zone "$z" > "$out/$z.zone"; done
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
  # One trust anchor: dane.test's KSK (sign_dane_zone), so answers from dane.test are validated
  # (AD); every other zone has no anchor above it and is insecure (no AD).
  module-config: "validator iterator"
  trust-anchor-file: "$DNS/dane.test.ds"
  val-log-level: 2
  aggressive-nsec: no
  # never send a query anywhere: route.test is read from a file, every other name is REFUSED
  do-not-query-address: 0.0.0.0/0
  do-not-query-address: ::0/0
  qname-minimisation: no
  trust-anchor-signaling: no
  root-key-sentinel: no
  cache-max-ttl: 60
  cache-max-negative-ttl: 5
  # unbound serves RFC 6761 "test." as a static empty zone by default: lift that, refuse
  # everything else, and pass the lab zones through to their auth-zones.
  local-zone: "test." nodefault
  local-zone: "." refuse
  local-zone: "$ROUTE_ZONE." transparent
$(for z in "${DNS_ZONES[@]}"; do echo "  local-zone: \"$z.\" transparent"; done)
remote-control:
  control-enable: no
auth-zone:
  name: "$ROUTE_ZONE."
  zonefile: "$DNS/$ROUTE_ZONE.zone"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
$(for z in "${DNS_ZONES[@]}"; do
  f="$DNS/$z.zone"; [[ "$z" == dane.test ]] && f="$DNS/$z.zone.signed"
  printf 'auth-zone:\n  name: "%s."\n  zonefile: "%s"\n  for-downstream: no\n  for-upstream: yes\n  fallback-enabled: no\n' "$z" "$f"
done)
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

# dns_check_dnssec: answers from the signed dane.test carry AD, those from insecure.test do not
# (drill, from ldnsutils, shows the header flags).
dns_check_dnssec() {
  local a i
  for i in $(seq 20); do
    a="$(drill -D -p "$(ep_port "$DNS_EP")" @"$(ep_addr "$DNS_EP")" dane.test MX 2>&1)" || true
    grep -q 'flags:.* ad[ ;]' <<<"$a" && grep -q 'rcode: NOERROR' <<<"$a" && break
    sleep 0.1
  done
  grep -q 'flags:.* ad[ ;]' <<<"$a" || { echo "$a" >&2; return 1; }
  a="$(drill -D -p "$(ep_port "$DNS_EP")" @"$(ep_addr "$DNS_EP")" insecure.test MX 2>&1)" || { echo "$a" >&2; return 1; }
  grep -q 'rcode: NOERROR' <<<"$a" && ! grep -q 'flags:.* ad[ ;]' <<<"$a" || { echo "$a" >&2; return 1; }
}

# dns_current: the running unbound's configuration and zone are what write_dns_conf writes now.
dns_current() {
  local tmp rc=0
  tmp="$(mktemp -d)"
  write_dns_conf "$tmp"
  cmp -s "$tmp/unbound.conf" "$DNS_CONF" && cmp -s "$tmp/unbound-silent.conf" "$DNS_SILENT_CONF" \
    && cmp -s "$tmp/$ROUTE_ZONE.zone" "$DNS/$ROUTE_ZONE.zone" || rc=1
  local z
  for z in "${DNS_ZONES[@]}"; do cmp -s "$tmp/$z.zone" "$DNS/$z.zone" || rc=1; done
  dane_signed_fresh || rc=1
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
  sign_dane_zone
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
  dns_check_dnssec || die "unbound on $DNS_EP does not validate dane.test (AD) or sets AD for insecure.test; see $DNS/unbound.log"
  say "unbound on $DNS_EP (zones $ROUTE_ZONE ${DNS_ZONES[*]}, files in $DNS, dane.test signed; log $DNS/unbound.log); silent unbound on $DNS_SILENT_EP"
}

stop_dns() {
  kill_pidfile "$DNS_PID" unbound
  kill_pidfile "$DNS_SILENT_PID" unbound
  local ep
  for ep in "$DNS_EP" "$DNS_SILENT_EP"; do
    wait_closed "$(ep_addr "$ep")" "$(ep_port "$ep")" 10 || say "warning: $ep still accepts connections"
  done
}

# ---------------------------------------------------------------- DNS: the TLS lab's zones

# tls.test (unsigned): one name per TLS lab server, and MX domains whose MX 10 fails a check.
# dane.test (signed with ldns-signzone; its KSK's DS is unbound's trust anchor, so answers carry
# AD): TLSA records at _PORT._tcp.HOST, PORT being the lab port. insecure.test (unsigned, no
# anchor: no AD) carries a TLSA record that must be ignored (it matches nothing). sts.test
# (unsigned): MTA-STS (RFC 8461) TXT records and policy hosts; the policies themselves are in
# sts_policies. Every address is a TLS lab server (tls_servers) or the HTTPS policy server.
TLS_ZONES=(tls.test dane.test insecure.test sts.test)
# Every zone besides route.test that the lab's unbound serves: the TLS lab's and the SASL lab's.
SASL_ZONE=sasl.test
DNS_ZONES=("${TLS_ZONES[@]}" "$SASL_ZONE")

tls_zone_tls() {
  cat <<EOZ
\$ORIGIN tls.test.
\$TTL 300
@          SOA   ns1.tls.test. hostmaster.tls.test. 1 3600 900 604800 300
@          NS    ns1
ns1        A     127.0.0.1
good       A     127.0.0.61
wrongname  A     127.0.0.62
expired    A     127.0.0.63
selfsigned A     127.0.0.64
plain      A     127.0.0.65
badtls     A     127.0.0.66
smtps      A     127.0.0.67
resume     A     127.0.0.68
; tls.test: a certificate that fails every check at MX 10, good at MX 20
@          MX    10 wrongname
@          MX    20 good
; no STARTTLS at MX 10 / a failing handshake at MX 10, good at MX 20
nostarttls MX    10 plain
nostarttls MX    20 good
handshake  MX    10 badtls
handshake  MX    20 good
EOZ
}

tls_zone_dane() {
  local good ca
  good="$(spki_sha256 "$CERTS/good.crt")"; ca="$(spki_sha256 "$CERTS/ca.crt")"
  cat <<EOZ
\$ORIGIN dane.test.
\$TTL 300
@          SOA   ns1.dane.test. hostmaster.dane.test. 1 3600 900 604800 300
@          NS    ns1
ns1        A     127.0.0.1
; dane.test: DANE-EE, the good certificate's key (no name checks)
@          MX    10 mx
mx         A     127.0.0.71
_$ROUTE_PORT._tcp.mx    TLSA 3 1 1 $good
; ta.dane.test: DANE-TA, the harness CA's key (the chain must lead to it, the name must match)
ta         MX    10 mxta
mxta       A     127.0.0.72
_$ROUTE_PORT._tcp.mxta  TLSA 2 1 1 $ca
; bad.dane.test: a TLSA record that matches nothing the server has
bad        MX    10 mxbad
mxbad      A     127.0.0.73
_$ROUTE_PORT._tcp.mxbad TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000
; badnext.dane.test: the mismatch at MX 10, DANE-EE at MX 20
badnext    MX    10 mxbad
badnext    MX    20 mx
; notlsa.dane.test: signed, but no TLSA record for the MX host (dane: may; dane-only: refused)
notlsa     MX    10 mxnotlsa
mxnotlsa   A     127.0.0.71
EOZ
}

tls_zone_insecure() {
  cat <<EOZ
\$ORIGIN insecure.test.
\$TTL 300
@          SOA   ns1.insecure.test. hostmaster.insecure.test. 1 3600 900 604800 300
@          NS    ns1
ns1        A     127.0.0.1
@          MX    10 mx
mx         A     127.0.0.74
; not DNSSEC-validated, so it must be ignored (it would match nothing)
_$ROUTE_PORT._tcp.mx    TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000
EOZ
}

# MTA-STS policy ids: a new id makes a client fetch the policy again.
STS_ID=20261125T000000
tls_zone_sts() {
  cat <<EOZ
\$ORIGIN sts.test.
\$TTL 300
@          SOA   ns1.sts.test. hostmaster.sts.test. 1 3600 900 604800 300
@          NS    ns1
ns1        A     127.0.0.1
; sts.test: enforce, mx good.sts.test; MX 10 bad.sts.test does not match the policy
_mta-sts   TXT   "v=STSv1; id=$STS_ID;"
mta-sts    A     $MS_ADDR
@          MX    10 bad
@          MX    20 good
bad        A     127.0.0.82
good       A     127.0.0.81
; testing.sts.test: mode testing; its only MX presents a certificate for another name
_mta-sts.testing TXT "v=STSv1; id=$STS_ID;"
mta-sts.testing  A   $MS_ADDR
testing    MX    10 mx.testing
mx.testing A     127.0.0.83
; badcert.sts.test: enforce; its only MX matches the policy but presents a certificate for another name
_mta-sts.badcert TXT "v=STSv1; id=$STS_ID;"
mta-sts.badcert  A   $MS_ADDR
badcert    MX    10 mx.badcert
mx.badcert A     127.0.0.83
EOZ
}

# sts_policies: JSON { "POLICY HOST": "policy text" } for the HTTPS server (CRLF line ends).
sts_policies() {
  local crlf=$'\\r\\n'
  printf '{\n'
  printf '  "mta-sts.sts.test": "version: STSv1%smode: enforce%smx: good.sts.test%smax_age: 86400%s",\n' "$crlf" "$crlf" "$crlf" "$crlf"
  printf '  "mta-sts.testing.sts.test": "version: STSv1%smode: testing%smx: mx.testing.sts.test%smax_age: 86400%s",\n' "$crlf" "$crlf" "$crlf" "$crlf"
  printf '  "mta-sts.badcert.sts.test": "version: STSv1%smode: enforce%smx: *.badcert.sts.test%smax_age: 86400%s"\n' "$crlf" "$crlf" "$crlf" "$crlf"
  printf '}\n'
}

lab_zone() {
  case "$1" in
    "$SASL_ZONE") sasl_zone ;;
    tls.test) tls_zone_tls ;;
    dane.test) tls_zone_dane ;;
    insecure.test) tls_zone_insecure ;;
    sts.test) tls_zone_sts ;;
    *) die "unknown zone $1" ;;
  esac
}

# sign_dane_zone: dane.test.zone -> dane.test.zone.signed (ECDSAP256SHA256 KSK + ZSK, kept in
# $DNS/keys/dane.test; NSEC; signatures valid from yesterday to 30 days ahead; re-signed at
# every start) and dane.test.ds, the KSK's DS record: unbound's trust anchor.
sign_dane_zone() {
  local kd="$DNS/keys/dane.test"
  mkdir -p "$kd"; chmod 0700 "$DNS/keys"
  if [[ ! -s "$kd/ksk" || ! -s "$kd/zsk" ]]; then
    (cd "$kd" && rm -f K* ksk zsk && ldns-keygen -a ECDSAP256SHA256 -k dane.test > ksk && ldns-keygen -a ECDSAP256SHA256 dane.test > zsk) \
      || die "ldns-keygen failed"
  fi
  local ksk="$kd/$(cat "$kd/ksk")" zsk="$kd/$(cat "$kd/zsk")"
  ldns-signzone -i "$(date -u -d '-1 day' +%Y%m%d%H%M%S)" -e "$(date -u -d '+30 days' +%Y%m%d%H%M%S)" \
    -f "$DNS/dane.test.zone.signed" -o dane.test. "$DNS/dane.test.zone" "$ksk" "$zsk" \
    || die "ldns-signzone failed for $DNS/dane.test.zone"
  cp "$ksk.ds" "$DNS/dane.test.ds"
}

# The signed zone is fresh: signed less than 20 days ago (its signatures run 30 days).
dane_signed_fresh() {
  [[ -s "$DNS/dane.test.zone.signed" && -s "$DNS/dane.test.ds" ]] \
    && [[ -n "$(find "$DNS/dane.test.zone.signed" -mmin -$((20 * 24 * 60)))" ]]
}

# ---------------------------------------------------------------- MTA-STS: the HTTPS policy server

# test/interop/mta-sts-server.mjs (Node's https) on $MS_ADDR:443 with certs/mta-sts.crt, serving
# sts_policies by Host header; one log line per request in $MS/requests.log. It runs a copy of
# the script ($MS/server.mjs), so that `status` can tell an outdated instance.
write_mtasts_conf() {
  local out="$1"
  mkdir -p "$out"
  sts_policies > "$out/policies.json"
  cp "$MS_SCRIPT" "$out/server.mjs"
  cat "$CERTS/spec" > "$out/certs.spec" 2>/dev/null || true
}

ms_running() { pid_alive "$MS_PID" node; }

ms_current() {
  local tmp rc=0 f
  tmp="$(mktemp -d)"
  write_mtasts_conf "$tmp"
  for f in policies.json server.mjs certs.spec; do cmp -s "$tmp/$f" "$MS/$f" || rc=1; done
  rm -rf "$tmp"
  return $rc
}

# ms_check: a policy comes back over HTTPS verified by the harness CA (node, as the tests fetch).
ms_check() {
  node --input-type=module -e '
    import { get } from "node:https";
    import { readFileSync } from "node:fs";
    const [addr, port, ca] = process.argv.slice(1);
    const body = await new Promise((resolve, reject) => {
      const req = get({ host: addr, port: Number(port), path: "/.well-known/mta-sts.txt", servername: "mta-sts.sts.test",
        headers: { host: "mta-sts.sts.test" }, ca: readFileSync(ca), timeout: 3000 }, (res) => {
        let b = ""; res.setEncoding("utf8"); res.on("data", (d) => (b += d)); res.on("end", () => resolve(res.statusCode + " " + b));
      });
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error("timeout")));
    });
    if (!body.startsWith("200 version: STSv1\r\nmode: enforce\r\n")) throw new Error("unexpected policy: " + JSON.stringify(body));
  ' "$MS_ADDR" "$MS_PORT" "$CERTS/ca.crt"
}

start_mtasts() {
  if ms_running; then
    if ms_current; then say "MTA-STS server already running (pid $(pidfile_pid "$MS_PID"))"; return 0; fi
    say "MTA-STS server runs an older script, policies or certificate: restarting it"
    stop_mtasts
  fi
  command -v node >/dev/null || die "node is not on PATH (the MTA-STS policy server is a Node script)"
  listening "$MS_ADDR" "$MS_PORT" && die "$MS_ADDR:$MS_PORT is already in use by another process (not this harness's MTA-STS server)"
  write_mtasts_conf "$MS"
  : > "$MS/requests.log"
  rm -f "$MS_PID"
  # setsid + redirected stdio: the server outlives this script and holds none of its pipes.
  setsid node "$MS/server.mjs" --listen "$MS_ADDR:$MS_PORT" --cert "$CERTS/mta-sts.crt" --key "$CERTS/mta-sts.key" \
    --policies "$MS/policies.json" --log "$MS/requests.log" --pidfile "$MS_PID" </dev/null >>"$MS/server.out" 2>&1 &
  local i
  for i in $(seq 100); do [[ -s "$MS_PID" ]] && listening "$MS_ADDR" "$MS_PORT" && break; sleep 0.1; done
  ms_running || { tail -20 "$MS/server.out" >&2; die "the MTA-STS server did not start; see $MS/server.out"; }
  ms_check || die "the MTA-STS server on $MS_ADDR:$MS_PORT does not serve the sts.test policy; see $MS/server.out"
  say "MTA-STS policy server on https://$MS_ADDR:$MS_PORT/ (log $MS/requests.log)"
}

stop_mtasts() {
  kill_pidfile "$MS_PID" node
  wait_closed "$MS_ADDR" "$MS_PORT" 10 || say "warning: $MS_ADDR:$MS_PORT still accepts connections"
}

# ---------------------------------------------------------------- commands

write_ports_env() {
  cat > "$DIR/ports.env.tmp" <<EOF
MAILWIRE_INTEROP_DIR=$DIR
MAILWIRE_INTEROP_POSTFIX=$PF_EP
MAILWIRE_INTEROP_POSTFIX_NOCHUNKING=$PF2_EP
MAILWIRE_INTEROP_POSTFIX_NO8BITMIME=$PF_NO8BIT_EP
MAILWIRE_INTEROP_POSTFIX_NOSMTPUTF8=$PF_NOUTF8_EP
MAILWIRE_INTEROP_POSTFIX_XFORWARD=$PF_XF_EP
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
MAILWIRE_INTEROP_TLS_PORT=$ROUTE_PORT
MAILWIRE_INTEROP_TLS_CA=$CERTS/ca.crt
MAILWIRE_INTEROP_TLS_CERTS=$CERTS
MAILWIRE_INTEROP_TLS_ZONES=${TLS_ZONES[*]}
MAILWIRE_INTEROP_MTA_STS=$MS_ADDR:$MS_PORT
MAILWIRE_INTEROP_MTA_STS_LOG=$MS/requests.log
MAILWIRE_INTEROP_SASL_PORT=$ROUTE_PORT
MAILWIRE_INTEROP_SASL_ZONE=$SASL_ZONE
MAILWIRE_INTEROP_SASL_AUTH_LOG=$DA/dovecot.log
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
    v="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX_NO8BITMIME=//p' "$DIR/ports.env")"; [[ -z "$v" ]] || PF_NO8BIT_EP="$v"
    v="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX_NOSMTPUTF8=//p' "$DIR/ports.env")"; [[ -z "$v" ]] || PF_NOUTF8_EP="$v"
    v="$(sed -n 's/^MAILWIRE_INTEROP_POSTFIX_XFORWARD=//p' "$DIR/ports.env")"; [[ -z "$v" ]] || PF_XF_EP="$v"
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
    echo "content  running  (postfix)  $PF_NO8BIT_EP (no 8BITMIME/SMTPUTF8)  $PF_NOUTF8_EP (no SMTPUTF8)  $PF_XF_EP (XFORWARD, Return-Path kept)"
    echo "route    running  (postfix)  $(route_endpoints | wc -w) listeners on port $ROUTE_PORT: $(route_servers | awk '{printf "%s%s=%s", (NR>1 ? " " : ""), $1, $2}')"
    echo "tls      running  (postfix)  $(tls_endpoints | wc -w) listeners on port $ROUTE_PORT: $(tls_servers | awk '{printf "%s%s=%s", (NR>1 ? " " : ""), $1, $2}')"
    echo "sasl     running  (postfix)  $(sasl_endpoints | wc -w) listeners on port $ROUTE_PORT: $(sasl_servers | awk '{printf "%s%s=%s", (NR>1 ? " " : ""), $1, $2}')"
  fi
  if certs_current; then
    echo "certs    ok       CA $CERTS/ca.crt"
  else
    echo "certs    OUTDATED or missing in $CERTS (peers.sh start makes them)"; rc=1
  fi
  if ! ms_running; then
    echo "mta-sts  stopped"; rc=1
  elif ! ms_current; then
    echo "mta-sts  running  pid $(pidfile_pid "$MS_PID")  OUTDATED script, policies or certificate (peers.sh start restarts it)"; rc=1
  else
    echo "mta-sts  running  pid $(pidfile_pid "$MS_PID")  https://$MS_ADDR:$MS_PORT/  log $MS/requests.log"
  fi
  if ! da_running; then
    echo "sasl-auth stopped"; rc=1
  elif ! da_current; then
    echo "sasl-auth running  pid $(pidfile_pid "$DA_PID")  OUTDATED configuration or users (peers.sh start restarts it)"; rc=1
  else
    echo "sasl-auth running  pid $(pidfile_pid "$DA_PID")  unix:$DA_SOCK ($(sed -n 's/^auth_mechanisms = //p' "$DA_CONF"))  log $DA/dovecot.log"
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
    echo "dns      running  pids $(pidfile_pid "$DNS_PID") $(pidfile_pid "$DNS_SILENT_PID")  $DNS_EP (zones $ROUTE_ZONE ${DNS_ZONES[*]})  silent $DNS_SILENT_EP  log $DNS/unbound.log"
  fi
  return $rc
}

start() {
  preflight
  if pf_running || dc_running || da_running || dns_running || ms_running; then
    # keep what runs, on the endpoints it was started with
    local want="$(pf_endpoints) $LMTP_EP $DNS_EP $DNS_SILENT_EP $ROUTE_PORT"
    load_running_ports
    [[ "$want" == "$(pf_endpoints) $LMTP_EP $DNS_EP $DNS_SILENT_EP $ROUTE_PORT" ]] \
      || say "warning: already running on $(pf_endpoints) $LMTP_EP $DNS_EP $DNS_SILENT_EP port $ROUTE_PORT; stop first to change endpoints"
  fi
  write_certs
  start_dns
  start_dovecot_auth
  start_postfix
  sasl_check || die "the SASL lab does not behave as expected (Postfix on 127.0.0.91-93:$ROUTE_PORT with Dovecot auth $DA_SOCK); see $PF/maillog and $DA/dovecot.log"
  start_mtasts
  start_dovecot
  write_ports_env
  say "endpoints in $DIR/ports.env"
}

stop() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  load_running_ports
  stop_dovecot
  stop_mtasts
  stop_postfix
  stop_dovecot_auth
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
