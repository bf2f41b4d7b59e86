/**
 * `deliver()` options: one table (option, Postfix parameter, default, meaning), their
 * validation, and the resolved form the rest of the code uses. Invalid values reject with
 * `MailwireError` `EOPTION` before any I/O; an unknown option *name* is only a warning
 * (API.md "errors"), as an unused parameter is to Postfix.
 */
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { normalizeAddress } from './routing/mx-order.js';
import { MailwireError } from './errors.js';
import type { DeliveryEvent } from './events.js';
import type { DnsResolver } from './routing/resolver.js';
import { KNOWN_TCP_PORTS, resolvePort } from './destination/known-tcp-ports.js';

/** Per-stage limits in milliseconds; each applies per reply awaited (PROTO-29). 0 = no limit. */
export interface Timeouts {
  /** `smtp_connect_timeout` 30 s; LMTP `lmtp_connect_timeout` 0 (the OS limit). */
  connect: number;
  /** `smtp_helo_timeout` / `lmtp_lhlo_timeout` 300 s: greeting and EHLO/HELO/LHLO. */
  helo: number;
  /** `smtp_mail_timeout` 300 s. */
  mail: number;
  /** `smtp_rcpt_timeout` 300 s. */
  rcpt: number;
  /** `smtp_data_init_timeout` 120 s: DATA and its 354. */
  dataInit: number;
  /** `smtp_data_xfer_timeout` 180 s: the body, with no progress. */
  dataXfer: number;
  /** `smtp_data_done_timeout` 600 s: "." (or BDAT LAST) and its reply. */
  dataDone: number;
  /** `smtp_quit_timeout` 300 s. */
  quit: number;
  /** `smtp_rset_timeout` 20 s. */
  rset: number;
  /** `smtp_starttls_timeout` 300 s: STARTTLS reply and the TLS handshake. */
  starttls: number;
  /** `smtp_xforward_timeout` 300 s: the replies to XFORWARD. */
  xforward: number;
}

export type { TlsLevel, TlsPolicy } from './tls/tls-policy.js';
import type { TlsLevel, TlsPolicy } from './tls/tls-policy.js';
import { Pool } from './pool/pool.js';
import { clampSessionTimeout, defaultTlsSessionStore, type TlsSessionStore } from './tls/session-cache.js';
import type { SaslCredentials } from './sasl/credentials.js';
import type { SaslOptions, SecurityOption } from './sasl/choose.js';
import type { AuthCacheStore } from './sasl/auth-cache.js';
import type { DeliveryStatusFilter } from './results/ledger.js';
import type { BodyCheck, DeliveryFlags, HeaderCheck, RewriteAddress, Xforward } from './content/hooks.js';

export interface DeliverOptions {
  /** `smtp` (default) or `lmtp`. */
  protocol?: 'smtp' | 'lmtp';
  /** `smtp_helo_name` / `lmtp_lhlo_name`: default `os.hostname()`. */
  heloName?: string;
  /** `smtp_tcp_port` / `lmtp_tcp_port`: 25 / 24; a number or a service name. */
  port?: number | string;
  /** `known_tcp_ports`, merged over lmtp=24, smtp=25, smtps=submissions=465, submission=587. */
  knownTcpPorts?: Record<string, number>;
  /** `smtp_dns_support_level`. */
  dnsSupportLevel?: 'disabled' | 'enabled' | 'dnssec';
  /** DNS; default: the system resolver. */
  resolver?: DnsResolver;
  /** TLS policy, or a function of the next hop (smtp_tls_policy_maps). Default level `may` (Postfix 3.11+). */
  tls?: TlsPolicy | ((nexthop: string) => TlsPolicy);
  /** `smtp_tls_session_cache_database`: where resumable TLS sessions are kept; `false` turns it off. Default: in memory. */
  tlsSessionCache?: TlsSessionStore | false;
  /** `smtp_tls_session_cache_timeout` (3600 s), in milliseconds. */
  tlsSessionCacheTimeout?: number;
  /**
   * SASL credentials (smtp_sasl_password_maps), fixed or looked up per server: the function gets
   * the sender, the next hop as written, the server's host name and port. No credentials: no AUTH.
   */
  auth?: SaslCredentials | ((ctx: { sender: string; nexthop: string; host: string; port: number }) => SaslCredentials | undefined | Promise<SaslCredentials | undefined>);
  /** SASL tuning (smtp_sasl_*). */
  sasl?: SaslOptions & {
    /** smtp_sasl_auth_soft_bounce (true): a 5xx AUTH failure defers. */
    authSoftBounce?: boolean;
    /** smtp_sasl_auth_cache_name: remember 535s (default none). */
    authCache?: AuthCacheStore;
    /** smtp_sasl_auth_cache_time (90 days), in milliseconds. */
    authCacheTtl?: number;
    /** smtp_send_dummy_mail_auth (false): `AUTH=<>` on MAIL FROM. */
    sendDummyMailAuth?: boolean;
  };
  /** A connection cache shared by deliver() calls (`new Pool()`); default none: connect, deliver, QUIT. */
  pool?: Pool;
  timeouts?: Partial<Timeouts>;
  signal?: AbortSignal;
  /** Postfix flag X: this hop is final delivery (`delivered` for LMTP servers without DSN). */
  final?: boolean;
  /**
   * Pipeline transactions on one connection: the next message's MAIL, RCPT and DATA/BDAT follow
   * the previous end of data before its reply (with PIPELINING). Default true.
   */
  transactionPipelining?: boolean;
  /** Postfix `default_destination_recipient_limit` (50): recipients per transaction (POOL-13). */
  recipientLimit?: number;
  /** Transcript and progress events; credentials are redacted. */
  onEvent?: (e: DeliveryEvent) => void;
  /** `smtp_always_send_ehlo` (true). */
  alwaysSendEhlo?: boolean;
  /** `smtp_never_send_ehlo` (false). */
  neverSendEhlo?: boolean;
  /** `smtp_skip_quit_response` (true) / `lmtp_skip_quit_response` (false). */
  skipQuitResponse?: boolean;
  /** `smtp_discard_ehlo_keywords` / `smtp_discard_ehlo_keyword_address_maps` (by server IP). */
  discardEhloKeywords?: string[] | ((address: string) => string[] | undefined);
  /** `smtp_line_length_limit` (998; 0 = no limit). */
  lineLengthLimit?: number;
  /** `smtp_quote_rfc821_envelope` (true). */
  quoteRfc821Envelope?: boolean;
  /** `smtp_skip_5xx_greeting` (true). */
  skip5xxGreeting?: boolean;
  /** `soft_bounce` (false). */
  softBounce?: boolean;
  /** `smtp_reply_filter`: rewrite each reply line before it is parsed. */
  replyFilter?: (line: string) => string;
  /** `smtp_mx_address_limit` (5; 0 = no limit): addresses tried per next hop. */
  mxAddressLimit?: number;
  /** `smtp_mx_session_limit` (2; 0 = no limit): sessions that finished the handshake, per next hop. */
  mxSessionLimit?: number;
  /** `smtp_randomize_addresses` (true). */
  randomizeAddresses?: boolean;
  /** `smtp_balance_inet_protocols` (true). */
  balanceInetProtocols?: boolean;
  /** `smtp_address_preference` (any). */
  addressPreference?: 'any' | 'ipv4' | 'ipv6';
  /** `inet_protocols` (all). */
  inetProtocols?: 'all' | 'ipv4' | 'ipv6';
  /** `smtp_host_lookup` (dns). */
  hostLookup?: 'dns' | 'native' | Array<'dns' | 'native'>;
  /** `disable_dns_lookups` (false): same as `dnsSupportLevel: 'disabled'`. */
  disableDnsLookups?: boolean;
  /** `smtp_defer_if_no_mx_address_found` (false). */
  deferIfNoMxAddressFound?: boolean;
  /** `ignore_mx_lookup_error` (false). */
  ignoreMxLookupError?: boolean;
  /**
   * `inet_interfaces` / `proxy_interfaces`: our own addresses, for Postfix's loop detection
   * (SMTP, port 25). Default none (a library is not the MX); `'auto'` = this host's interfaces.
   */
  myAddresses?: string[] | 'auto';
  /** `smtp_fallback_relay` / `lmtp_fallback_relay`: next hops tried after the destination. */
  fallbackRelay?: string | string[];
  /** DEST-15: `'relayhost'` when the destination is the relayhost (a hard error there is 4.3.5). */
  role?: 'direct' | 'relayhost';
  /** Random numbers in [0, 1) for address shuffling (tests). Default Math.random. */
  random?: () => number;
  /** mailwire: use CHUNKING (BDAT) when the server offers it (true). */
  chunking?: boolean;
  /** mailwire: BDAT chunk size for a message of unknown length (65536). */
  bdatChunkSize?: number;
  /** `line_length_limit` for reply lines (2048). */
  replyLineLimit?: number;
  /** mailwire: most lines in one server reply (256). */
  maxReplyLines?: number;
  /** `smtp_bind_address`: local IPv4 address for outgoing connections. */
  bindAddress?: string;
  /** `smtp_bind_address6`: local IPv6 address for outgoing connections. */
  bindAddress6?: string;
  /** `smtp_bind_address_enforce` (false): defer (4.4.0) instead of connecting unbound. */
  bindAddressEnforce?: boolean;
  /**
   * `smtp_delivery_status_filter` (DSN-10): rewrite the status and text of each final result;
   * the class must stay (2 to 2, 4/5 to 4/5) and the text must not be empty.
   */
  deliveryStatusFilter?: DeliveryStatusFilter;
  /** `flags=DOR`: Delivered-To, X-Original-To and Return-Path headers (DSN-5 .. DSN-7). */
  flags?: DeliveryFlags;
  /** `smtp_send_xforward_command`: send these attributes when the server announces XFORWARD. */
  xforward?: Xforward;
  /** Not `disable_mime_output_conversion` (true): 8-bit MIME to quoted-printable for servers without 8BITMIME. */
  mimeOutputConversion?: boolean;
  /** `mime_boundary_length_limit` (2048). */
  mimeBoundaryLengthLimit?: number;
  /** `mime_nesting_limit` (100). */
  mimeNestingLimit?: number;
  /** `header_size_limit` (102400): longest header the content hooks parse. */
  headerSizeLimit?: number;
  /** `smtp_generic_maps` as a function: rewrite envelope and header addresses (see `genericMap()`). */
  rewriteAddress?: RewriteAddress;
  /** `smtp_header_checks` and the MIME and nested variants: one call per header (ctx.part tells which). */
  headerCheck?: HeaderCheck;
  /** `smtp_body_checks`: one call per body line. */
  bodyCheck?: BodyCheck;
}

export interface ResolvedOptions {
  protocol: 'smtp' | 'lmtp';
  heloName: string;
  port: number;
  knownTcpPorts: Record<string, number>;
  dnsSupportLevel: 'disabled' | 'enabled' | 'dnssec';
  resolver: DnsResolver | undefined;
  tls: (nexthop: string) => TlsPolicy;
  auth: ((ctx: { sender: string; nexthop: string; host: string; port: number }) => Promise<SaslCredentials | undefined>) | undefined;
  sasl: SaslOptions;
  authSoftBounce: boolean;
  authCache: AuthCacheStore | undefined;
  authCacheTtl: number;
  sendDummyMailAuth: boolean;
  tlsSessionCache: TlsSessionStore | undefined;
  pool: Pool | undefined;
  transactionPipelining: boolean;
  recipientLimit: number;
  tlsSessionCacheTimeout: number;
  timeouts: Timeouts;
  signal: AbortSignal | undefined;
  final: boolean;
  onEvent: (e: DeliveryEvent) => void;
  alwaysSendEhlo: boolean;
  neverSendEhlo: boolean;
  skipQuitResponse: boolean;
  discardEhloKeywords: (address: string) => string[];
  lineLengthLimit: number;
  quoteRfc821Envelope: boolean;
  skip5xxGreeting: boolean;
  softBounce: boolean;
  replyFilter: ((line: string) => string) | undefined;
  mxAddressLimit: number;
  mxSessionLimit: number;
  randomizeAddresses: boolean;
  balanceInetProtocols: boolean;
  addressPreference: 'any' | 'ipv4' | 'ipv6';
  inetProtocols: 'all' | 'ipv4' | 'ipv6';
  hostLookup: Array<'dns' | 'native'>;
  deferIfNoMxAddressFound: boolean;
  ignoreMxLookupError: boolean;
  myAddresses: Set<string>;
  fallbackRelay: string[];
  role: 'direct' | 'relayhost';
  random: (() => number) | undefined;
  chunking: boolean;
  bdatChunkSize: number;
  replyLineLimit: number;
  maxReplyLines: number;
  bindAddress: string | undefined;
  bindAddress6: string | undefined;
  bindAddressEnforce: boolean;
  deliveryStatusFilter: DeliveryStatusFilter | undefined;
  flags: DeliveryFlags;
  xforward: Xforward | undefined;
  mimeOutputConversion: boolean;
  mimeBoundaryLengthLimit: number;
  mimeNestingLimit: number;
  headerSizeLimit: number;
  rewriteAddress: RewriteAddress | undefined;
  headerCheck: HeaderCheck | undefined;
  bodyCheck: BodyCheck | undefined;
}

/** One row per option: the README's options table is generated from this. */
export interface OptionRow {
  name: keyof DeliverOptions;
  postfix: string;
  default: string;
  meaning: string;
}

export const OPTION_TABLE: readonly OptionRow[] = [
  { name: 'protocol', postfix: 'smtp(8) / lmtp(8)', default: "'smtp'", meaning: "'smtp' or 'lmtp'" },
  { name: 'heloName', postfix: 'smtp_helo_name, lmtp_lhlo_name', default: 'os.hostname()', meaning: 'name sent in EHLO/HELO/LHLO' },
  { name: 'port', postfix: 'smtp_tcp_port, lmtp_tcp_port', default: '25 / 24', meaning: 'default port; number or service name' },
  { name: 'knownTcpPorts', postfix: 'known_tcp_ports', default: 'lmtp=24 smtp=25 smtps=submissions=465 submission=587', meaning: 'service names' },
  { name: 'dnsSupportLevel', postfix: 'smtp_dns_support_level', default: "'enabled'", meaning: 'DNS use (DANE needs dnssec)' },
  { name: 'resolver', postfix: '(resolver)', default: 'system resolver', meaning: 'DNS resolver (resolveMx, resolve4, resolve6)' },
  { name: 'tls', postfix: 'smtp_tls_security_level, smtp_tls_policy_maps', default: "{ level: 'may' }", meaning: 'TLS policy (levels none … secure, DANE, MTA-STS), or a function of the next hop' },
  { name: 'tlsSessionCache', postfix: 'smtp_tls_session_cache_database', default: 'in memory', meaning: 'TLS session resumption store; false turns it off' },
  { name: 'tlsSessionCacheTimeout', postfix: 'smtp_tls_session_cache_timeout', default: '3600000', meaning: 'how long a TLS session may be resumed (ms)' },
  { name: 'timeouts', postfix: 'smtp_*_timeout', default: 'connect 30s (LMTP 0), helo/mail/rcpt/quit/starttls/xforward 300s, dataInit 120s, dataXfer 180s, dataDone 600s, rset 20s', meaning: 'per reply awaited, milliseconds' },
  { name: 'signal', postfix: '-', default: 'none', meaning: 'AbortSignal: unfinished recipients become delayed 4.4.7' },
  { name: 'final', postfix: 'flags=X', default: 'false', meaning: "LMTP success is 'delivered' when the server lacks DSN" },
  { name: 'onEvent', postfix: '(logging)', default: 'none', meaning: 'transcript and progress events' },
  { name: 'alwaysSendEhlo', postfix: 'smtp_always_send_ehlo', default: 'true', meaning: 'EHLO even without ESMTP in the greeting' },
  { name: 'neverSendEhlo', postfix: 'smtp_never_send_ehlo', default: 'false', meaning: 'always HELO' },
  { name: 'skipQuitResponse', postfix: 'smtp_skip_quit_response, lmtp_skip_quit_response', default: 'true (SMTP) / false (LMTP)', meaning: 'do not wait for the QUIT reply' },
  { name: 'discardEhloKeywords', postfix: 'smtp_discard_ehlo_keywords, ..._address_maps', default: '[]', meaning: 'EHLO keywords to ignore (list, or function of the server IP)' },
  { name: 'lineLengthLimit', postfix: 'smtp_line_length_limit', default: '998', meaning: 'longer lines are cut and continued with CRLF SPACE' },
  { name: 'quoteRfc821Envelope', postfix: 'smtp_quote_rfc821_envelope', default: 'true', meaning: 'quote local parts in MAIL FROM / RCPT TO' },
  { name: 'skip5xxGreeting', postfix: 'smtp_skip_5xx_greeting', default: 'true', meaning: 'a 5xx greeting is soft: next server, defer at the last' },
  { name: 'softBounce', postfix: 'soft_bounce', default: 'false', meaning: 'every would-be bounce is deferred' },
  { name: 'replyFilter', postfix: 'smtp_reply_filter', default: 'none', meaning: 'rewrite each reply line before parsing' },
  { name: 'mxAddressLimit', postfix: 'smtp_mx_address_limit', default: '5', meaning: 'addresses tried per next hop (0 = no limit)' },
  { name: 'mxSessionLimit', postfix: 'smtp_mx_session_limit', default: '2', meaning: 'sessions that finished the handshake, per next hop (0 = no limit)' },
  { name: 'randomizeAddresses', postfix: 'smtp_randomize_addresses', default: 'true', meaning: 'shuffle equal-preference addresses' },
  { name: 'balanceInetProtocols', postfix: 'smtp_balance_inet_protocols', default: 'true', meaning: 'keep IPv4 and IPv6 within the address limit' },
  { name: 'addressPreference', postfix: 'smtp_address_preference', default: "'any'", meaning: "family first at equal preference: 'any', 'ipv4', 'ipv6'" },
  { name: 'inetProtocols', postfix: 'inet_protocols', default: "'all'", meaning: "families looked up and used: 'all', 'ipv4', 'ipv6'" },
  { name: 'hostLookup', postfix: 'smtp_host_lookup', default: "'dns'", meaning: "'dns', 'native' (getaddrinfo) or ['dns', 'native']" },
  { name: 'disableDnsLookups', postfix: 'disable_dns_lookups', default: 'false', meaning: "no MX lookups, native address lookups (= dnsSupportLevel 'disabled')" },
  { name: 'deferIfNoMxAddressFound', postfix: 'smtp_defer_if_no_mx_address_found', default: 'false', meaning: 'defer instead of bounce when no MX host has an address' },
  { name: 'ignoreMxLookupError', postfix: 'ignore_mx_lookup_error', default: 'false', meaning: 'on MX lookup failure, look up A/AAAA instead of deferring' },
  { name: 'myAddresses', postfix: 'inet_interfaces, proxy_interfaces', default: 'none', meaning: "our addresses for loop detection (SMTP, port 25); 'auto' = this host's" },
  { name: 'fallbackRelay', postfix: 'smtp_fallback_relay, lmtp_fallback_relay', default: 'none', meaning: 'next hops tried when the destination is not found or not reachable' },
  { name: 'role', postfix: 'relayhost', default: "'direct'", meaning: "'relayhost': a hard error at the destination defers 4.3.5" },
  { name: 'random', postfix: '-', default: 'Math.random', meaning: 'random numbers for address shuffling (tests)' },
  { name: 'chunking', postfix: '(mailwire)', default: 'true', meaning: 'use BDAT when the server offers CHUNKING' },
  { name: 'bdatChunkSize', postfix: '(mailwire)', default: '65536', meaning: 'BDAT chunk size for messages of unknown length' },
  { name: 'replyLineLimit', postfix: 'line_length_limit', default: '2048', meaning: 'longest reply line kept' },
  { name: 'maxReplyLines', postfix: '(mailwire)', default: '256', meaning: 'more lines in one reply is a protocol error' },
  { name: 'bindAddress', postfix: 'smtp_bind_address', default: 'none', meaning: 'local IPv4 address for connections' },
  { name: 'bindAddress6', postfix: 'smtp_bind_address6', default: 'none', meaning: 'local IPv6 address for connections' },
  { name: 'bindAddressEnforce', postfix: 'smtp_bind_address_enforce', default: 'false', meaning: 'defer 4.4.0 when binding fails, instead of connecting unbound' },
  { name: 'auth', postfix: 'smtp_sasl_auth_enable, smtp_sasl_password_maps', default: 'none', meaning: 'SASL credentials, or a function of { sender, nexthop, host, port }' },
  { name: 'sasl', postfix: 'smtp_sasl_mechanism_filter, smtp_sasl_*security_options, smtp_sasl_auth_soft_bounce, smtp_sasl_auth_cache_*, smtp_send_dummy_mail_auth', default: 'see README', meaning: 'mechanism choice, security options, soft bounce, failure cache' },
  { name: 'pool', postfix: 'smtp_connection_cache_destinations, scache', default: 'none', meaning: 'connection cache shared by deliver() calls (new Pool())' },
  { name: 'transactionPipelining', postfix: '(mailwire)', default: 'true', meaning: 'the next transaction follows the previous end of data (with PIPELINING)' },
  { name: 'deliveryStatusFilter', postfix: 'smtp_delivery_status_filter', default: 'none', meaning: 'rewrite each final status and text (class kept)' },
  { name: 'flags', postfix: 'flags=DOR (pipe/smtp master.cf)', default: 'none', meaning: 'Delivered-To (with loop check), X-Original-To, Return-Path headers' },
  { name: 'xforward', postfix: 'smtp_send_xforward_command', default: 'none', meaning: 'original client attributes, sent when XFORWARD is announced' },
  { name: 'mimeOutputConversion', postfix: 'disable_mime_output_conversion (inverted)', default: 'true', meaning: '8-bit MIME to quoted-printable for servers without 8BITMIME' },
  { name: 'mimeBoundaryLengthLimit', postfix: 'mime_boundary_length_limit', default: '2048', meaning: 'boundary characters compared' },
  { name: 'mimeNestingLimit', postfix: 'mime_nesting_limit', default: '100', meaning: 'deeper MIME nesting fails with 5.6.0' },
  { name: 'headerSizeLimit', postfix: 'header_size_limit', default: '102400', meaning: 'longest header given to the content hooks' },
  { name: 'rewriteAddress', postfix: 'smtp_generic_maps', default: 'none', meaning: 'rewrite envelope and header addresses (genericMap() builds one)' },
  { name: 'headerCheck', postfix: 'smtp_header_checks, smtp_mime_header_checks, smtp_nested_header_checks', default: 'none', meaning: 'per-header hook: dunno, ignore, info, prepend, replace, strip, warn' },
  { name: 'bodyCheck', postfix: 'smtp_body_checks', default: 'none', meaning: 'per-body-line hook, same actions' },
  { name: 'recipientLimit', postfix: 'default_destination_recipient_limit', default: '50', meaning: 'recipients per transaction; more go in further transactions' },
];

const KNOWN = new Set<string>(OPTION_TABLE.map((r) => r.name));
const TLS_LEVELS: readonly TlsLevel[] = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure'];

let cachedHostname: string | undefined;

/** os.hostname(), read once (it is a system call). */
function localHostname(): string {
  cachedHostname ??= hostname();
  return cachedHostname;
}

function bad(message: string): never {
  throw new MailwireError('EOPTION', message);
}

function bool(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') bad(`${name} must be a boolean`);
  return v;
}

function int(v: unknown, name: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) bad(`${name} must be an integer >= ${min}`);
  return v;
}

/** Validate options and fill in Postfix's defaults. Throws `MailwireError` `EOPTION`. */
export function resolveOptions(options: DeliverOptions | undefined): ResolvedOptions {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) bad('options must be an object');
  const onEventRaw = o.onEvent;
  if (onEventRaw !== undefined && typeof onEventRaw !== 'function') bad('onEvent must be a function');
  // A listener that throws must never break a delivery.
  const onEvent = (e: DeliveryEvent): void => {
    if (!onEventRaw) return;
    try {
      onEventRaw(e);
    } catch {
      /* ignored */
    }
  };
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) onEvent({ type: 'warning', message: `unknown option "${key}" ignored` });
  }

  const protocol = o.protocol ?? 'smtp';
  if (protocol !== 'smtp' && protocol !== 'lmtp') bad(`protocol must be 'smtp' or 'lmtp'`);
  const heloName = o.heloName ?? localHostname();
  if (typeof heloName !== 'string' || heloName.length === 0 || /[\s\0]/.test(heloName)) {
    bad('heloName must be a non-empty name without white space, CR, LF or NUL (PROTO-4)');
  }
  const knownTcpPorts = { ...KNOWN_TCP_PORTS, ...(o.knownTcpPorts ?? {}) };
  for (const [k, v] of Object.entries(knownTcpPorts)) {
    if (!Number.isInteger(v) || v < 1 || v > 65535) bad(`knownTcpPorts.${k} must be a port number`);
  }
  const portSpec = o.port ?? (protocol === 'lmtp' ? 'lmtp' : 'smtp');
  if (typeof portSpec !== 'number' && typeof portSpec !== 'string') bad('port must be a number or a service name');
  const port = resolvePort(portSpec, knownTcpPorts) ?? bad(`port: unknown service or bad port "${String(portSpec)}"`);

  const dnsSupportLevel = o.disableDnsLookups === true ? 'disabled' : (o.dnsSupportLevel ?? 'enabled');
  if (!['disabled', 'enabled', 'dnssec'].includes(dnsSupportLevel)) bad(`dnsSupportLevel must be 'disabled', 'enabled' or 'dnssec'`);
  if (o.resolver !== undefined) {
    const r = o.resolver as unknown as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || typeof r.resolve4 !== 'function' || typeof r.resolve6 !== 'function' || typeof r.resolveMx !== 'function') {
      bad('resolver must implement resolveMx, resolve4 and resolve6');
    }
  }

  let tls: (nexthop: string) => TlsPolicy;
  if (o.tls === undefined) tls = () => ({ level: 'may' });
  else if (typeof o.tls === 'function') {
    const f = o.tls;
    tls = (nexthop) => checkTlsPolicy(f(nexthop));
  } else {
    const fixed = checkTlsPolicy(o.tls);
    tls = () => fixed;
  }

  const t = o.timeouts ?? {};
  if (typeof t !== 'object' || t === null) bad('timeouts must be an object');
  const timeouts: Timeouts = {
    connect: protocol === 'lmtp' ? 0 : 30_000,
    helo: 300_000,
    mail: 300_000,
    rcpt: 300_000,
    dataInit: 120_000,
    dataXfer: 180_000,
    dataDone: 600_000,
    quit: 300_000,
    rset: 20_000,
    starttls: 300_000,
    xforward: 300_000,
  };
  for (const [k, v] of Object.entries(t)) {
    if (!(k in timeouts)) {
      onEvent({ type: 'warning', message: `unknown timeout "${k}" ignored` });
      continue;
    }
    if (v === undefined) continue;
    timeouts[k as keyof Timeouts] = int(v, `timeouts.${k}`, 0);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) bad('signal must be an AbortSignal');

  let auth: ResolvedOptions['auth'];
  if (o.auth !== undefined) {
    const a = o.auth;
    if (typeof a === 'function') {
      auth = async (ctx) => checkCredentials(await a(ctx));
    } else {
      const fixed = checkCredentials(a);
      auth = async () => fixed;
    }
  }
  const sasl = o.sasl ?? {};
  if (typeof sasl !== 'object' || sasl === null) bad('sasl must be an object');
  for (const k of ['securityOptions', 'tlsSecurityOptions', 'tlsVerifiedSecurityOptions'] as const) {
    const v = sasl[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => !SECURITY_OPTIONS.includes(x)))) bad(`sasl.${k} must list ${SECURITY_OPTIONS.join(', ')}`);
  }
  const filter = sasl.mechanismFilter;
  if (filter !== undefined && typeof filter !== 'function' && (!Array.isArray(filter) || filter.some((f) => typeof f !== 'string'))) bad('sasl.mechanismFilter must be a list of names or a function');
  if (sasl.authCache !== undefined && (typeof sasl.authCache.get !== 'function' || typeof sasl.authCache.set !== 'function' || typeof sasl.authCache.delete !== 'function')) {
    bad('sasl.authCache must have get, set and delete');
  }
  if (o.pool !== undefined && !(o.pool instanceof Pool)) bad('pool must be a Pool (new Pool())');

  const discard = o.discardEhloKeywords;
  let discardEhloKeywords: (address: string) => string[];
  if (discard === undefined) discardEhloKeywords = () => [];
  else if (typeof discard === 'function') discardEhloKeywords = (a) => discard(a) ?? [];
  else if (Array.isArray(discard) && discard.every((k) => typeof k === 'string')) discardEhloKeywords = () => discard;
  else bad('discardEhloKeywords must be an array of keywords or a function');

  if (o.replyFilter !== undefined && typeof o.replyFilter !== 'function') bad('replyFilter must be a function');
  for (const [k, fam] of [['bindAddress', 4], ['bindAddress6', 6]] as const) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'string' || isIP(v) !== fam)) bad(`${k} must be an IPv${fam} address`);
  }
  const oneOf = <T extends string>(v: unknown, name: string, values: readonly T[], dflt: T): T => {
    if (v === undefined) return dflt;
    if (!values.includes(v as T)) bad(`${name} must be one of ${values.map((x) => `'${x}'`).join(', ')}`);
    return v as T;
  };
  const hostLookupRaw = o.hostLookup ?? 'dns';
  const hostLookup = Array.isArray(hostLookupRaw) ? hostLookupRaw : [hostLookupRaw];
  if (hostLookup.length === 0 || hostLookup.some((h) => h !== 'dns' && h !== 'native')) bad("hostLookup must be 'dns', 'native' or a list of them");
  let myAddresses = new Set<string>();
  if (o.myAddresses === 'auto') {
    myAddresses = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => normalizeAddress(i.address))));
  } else if (o.myAddresses !== undefined) {
    if (!Array.isArray(o.myAddresses) || o.myAddresses.some((a) => typeof a !== 'string' || isIP(a) === 0)) bad("myAddresses must be a list of IP addresses or 'auto'");
    myAddresses = new Set(o.myAddresses.map(normalizeAddress));
  }
  const fallbackRaw = o.fallbackRelay ?? [];
  const fallbackRelay = typeof fallbackRaw === 'string' ? [fallbackRaw] : fallbackRaw;
  if (!Array.isArray(fallbackRelay) || fallbackRelay.some((f) => typeof f !== 'string')) bad('fallbackRelay must be a next hop or a list of them');
  if (o.random !== undefined && typeof o.random !== 'function') bad('random must be a function returning numbers in [0, 1)');

  return {
    protocol,
    heloName,
    port,
    knownTcpPorts,
    dnsSupportLevel,
    resolver: o.resolver,
    tls,
    auth,
    sasl: {
      ...(sasl.mechanismFilter !== undefined ? { mechanismFilter: sasl.mechanismFilter } : {}),
      ...(sasl.securityOptions !== undefined ? { securityOptions: sasl.securityOptions } : {}),
      ...(sasl.tlsSecurityOptions !== undefined ? { tlsSecurityOptions: sasl.tlsSecurityOptions } : {}),
      ...(sasl.tlsVerifiedSecurityOptions !== undefined ? { tlsVerifiedSecurityOptions: sasl.tlsVerifiedSecurityOptions } : {}),
    },
    authSoftBounce: bool(sasl.authSoftBounce, 'sasl.authSoftBounce', true),
    authCache: sasl.authCache,
    authCacheTtl: int(sasl.authCacheTtl, 'sasl.authCacheTtl', 90 * 86_400_000, 1),
    sendDummyMailAuth: bool(sasl.sendDummyMailAuth, 'sasl.sendDummyMailAuth', false),
    pool: o.pool,
    transactionPipelining: bool(o.transactionPipelining, 'transactionPipelining', true),
    recipientLimit: int(o.recipientLimit, 'recipientLimit', 50, 1),
    tlsSessionCache: o.tlsSessionCache === false ? undefined : (o.tlsSessionCache ?? defaultTlsSessionStore),
    tlsSessionCacheTimeout: clampSessionTimeout(int(o.tlsSessionCacheTimeout, 'tlsSessionCacheTimeout', 3_600_000)),
    timeouts,
    signal: o.signal,
    final: bool(o.final, 'final', false),
    onEvent,
    alwaysSendEhlo: bool(o.alwaysSendEhlo, 'alwaysSendEhlo', true),
    neverSendEhlo: bool(o.neverSendEhlo, 'neverSendEhlo', false),
    skipQuitResponse: bool(o.skipQuitResponse, 'skipQuitResponse', protocol === 'smtp'),
    discardEhloKeywords,
    lineLengthLimit: int(o.lineLengthLimit, 'lineLengthLimit', 998),
    quoteRfc821Envelope: bool(o.quoteRfc821Envelope, 'quoteRfc821Envelope', true),
    skip5xxGreeting: bool(o.skip5xxGreeting, 'skip5xxGreeting', true),
    softBounce: bool(o.softBounce, 'softBounce', false),
    replyFilter: o.replyFilter,
    mxAddressLimit: int(o.mxAddressLimit, 'mxAddressLimit', 5),
    mxSessionLimit: int(o.mxSessionLimit, 'mxSessionLimit', 2),
    randomizeAddresses: bool(o.randomizeAddresses, 'randomizeAddresses', true),
    balanceInetProtocols: bool(o.balanceInetProtocols, 'balanceInetProtocols', true),
    addressPreference: oneOf(o.addressPreference, 'addressPreference', ['any', 'ipv4', 'ipv6'] as const, 'any'),
    inetProtocols: oneOf(o.inetProtocols, 'inetProtocols', ['all', 'ipv4', 'ipv6'] as const, 'all'),
    hostLookup,
    deferIfNoMxAddressFound: bool(o.deferIfNoMxAddressFound, 'deferIfNoMxAddressFound', false),
    ignoreMxLookupError: bool(o.ignoreMxLookupError, 'ignoreMxLookupError', false),
    myAddresses,
    fallbackRelay,
    role: oneOf(o.role, 'role', ['direct', 'relayhost'] as const, 'direct'),
    random: o.random,
    chunking: bool(o.chunking, 'chunking', true),
    bdatChunkSize: int(o.bdatChunkSize, 'bdatChunkSize', 65536, 1),
    replyLineLimit: int(o.replyLineLimit, 'replyLineLimit', 2048, 80),
    maxReplyLines: int(o.maxReplyLines, 'maxReplyLines', 256, 1),
    bindAddress: o.bindAddress,
    bindAddress6: o.bindAddress6,
    bindAddressEnforce: bool(o.bindAddressEnforce, 'bindAddressEnforce', false),
    deliveryStatusFilter: fn(o.deliveryStatusFilter, 'deliveryStatusFilter'),
    flags: checkFlags(o.flags),
    xforward: checkXforward(o.xforward),
    mimeOutputConversion: bool(o.mimeOutputConversion, 'mimeOutputConversion', true),
    mimeBoundaryLengthLimit: int(o.mimeBoundaryLengthLimit, 'mimeBoundaryLengthLimit', 2048, 1),
    mimeNestingLimit: int(o.mimeNestingLimit, 'mimeNestingLimit', 100, 1),
    headerSizeLimit: int(o.headerSizeLimit, 'headerSizeLimit', 102400, 1),
    rewriteAddress: fn(o.rewriteAddress, 'rewriteAddress'),
    headerCheck: fn(o.headerCheck, 'headerCheck'),
    bodyCheck: fn(o.bodyCheck, 'bodyCheck'),
  };
}

function fn<T>(v: T | undefined, name: string): T | undefined {
  if (v !== undefined && typeof v !== 'function') bad(`${name} must be a function`);
  return v;
}

function checkFlags(f: DeliveryFlags | undefined): DeliveryFlags {
  if (f === undefined) return {};
  if (typeof f !== 'object' || f === null) bad('flags must be { deliveredTo?, originalTo?, returnPath? }');
  for (const k of Object.keys(f)) {
    if (!['deliveredTo', 'originalTo', 'returnPath'].includes(k)) bad(`flags.${k}: unknown flag (deliveredTo, originalTo, returnPath)`);
    if (typeof (f as Record<string, unknown>)[k] !== 'boolean') bad(`flags.${k} must be a boolean`);
  }
  return f;
}

const XFORWARD_KEYS = ['name', 'addr', 'port', 'proto', 'helo', 'ident', 'domain'] as const;

/** XFORWARD values are sent as xtext; they must still be one line of printable text. */
function checkXforward(x: Xforward | undefined): Xforward | undefined {
  if (x === undefined) return undefined;
  if (typeof x !== 'object' || x === null) bad('xforward must be an object of attributes');
  for (const [k, v] of Object.entries(x)) {
    if (!(XFORWARD_KEYS as readonly string[]).includes(k)) bad(`xforward.${k}: unknown attribute (${XFORWARD_KEYS.join(', ')})`);
    if (v === undefined) continue;
    if (typeof v !== 'string' && !(k === 'port' && typeof v === 'number')) bad(`xforward.${k} must be a string`);
    if (/[\r\n\0]/.test(String(v))) bad(`xforward.${k} must not contain CR, LF or NUL`);
  }
  if (x.domain !== undefined && x.domain !== 'LOCAL' && x.domain !== 'REMOTE') bad(`xforward.domain must be 'LOCAL' or 'REMOTE'`);
  return x;
}

const SECURITY_OPTIONS: readonly SecurityOption[] = ['noplaintext', 'noactive', 'nodictionary', 'noanonymous', 'mutual_auth', 'forward_secrecy'];

/** Credentials must be well formed; a credential function returning undefined means: no AUTH. */
function checkCredentials(c: SaslCredentials | undefined): SaslCredentials | undefined {
  if (c === undefined) return undefined;
  if (typeof c !== 'object' || c === null || typeof c.username !== 'string') bad('auth must be { username, password? | accessToken? , authzid? }');
  for (const k of ['password', 'accessToken', 'authzid'] as const) {
    if (c[k] !== undefined && typeof c[k] !== 'string') bad(`auth.${k} must be a string`);
  }
  return c;
}

/** What can be checked without a connection; the rest (names, fingerprints) is checked per server. */
function checkTlsPolicy(p: TlsPolicy): TlsPolicy {
  if (typeof p !== 'object' || p === null) bad('tls must be a TlsPolicy object');
  const level = p.level ?? 'may';
  if (!TLS_LEVELS.includes(level)) bad(`tls.level: unknown level "${String(level)}"`);
  return { ...p, level };
}
