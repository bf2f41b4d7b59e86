/**
 * Options of the test server. Defaults follow Postfix's smtpd(8) where one exists (the Postfix
 * parameter is named in each comment), otherwise smtp-sink(1).
 */
import type { Fault } from './faults.js';
import type { ReceivedTransaction } from './recorded.js';

/** Which EHLO/LHLO keywords to announce (RFC 5321 §4.1.1.1). Defaults in brackets. */
export interface ExtensionOptions {
  /** PIPELINING, RFC 2920 [true]. */
  pipelining?: boolean;
  /** CHUNKING (BDAT), RFC 3030 [true]. */
  chunking?: boolean;
  /** 8BITMIME, RFC 6152 [true]. */
  eightBitMime?: boolean;
  /** SMTPUTF8, RFC 6531 [true]. */
  smtputf8?: boolean;
  /** DSN, RFC 3461 [true]. */
  dsn?: boolean;
  /** ENHANCEDSTATUSCODES, RFC 2034 [true]. When false, default replies carry no x.y.z code. */
  enhancedStatusCodes?: boolean;
  /**
   * SIZE, RFC 1870 [false]. A number n announces `SIZE n` (0 announces bare `SIZE`, no limit);
   * MAIL SIZE= above n gets 552 5.3.4, and so does a message above n at end of data.
   */
  size?: number | false;
  /** STARTTLS, RFC 3207 [false]. Needs {@link TestServerOptions.tls} to actually work. */
  starttls?: boolean;
  /** AUTH mechanisms to announce, RFC 4954 [false]. */
  auth?: string[] | false;
  /** XFORWARD attributes to announce; XFORWARD is accepted only when set [false]. */
  xforward?: string[] | false;
  /** Raw keyword lines appended as-is after the others [[]]. */
  extra?: string[];
}

/** Passed to the scripting callbacks. */
export interface ScriptContext {
  /** Index of the session (connection). */
  session: number;
  /** Index of the transaction within the session. */
  transaction: number;
  /** For `onRcpt`: 0-based index of this RCPT within the transaction. */
  rcptIndex?: number;
  /** Addresses accepted so far in this transaction. */
  accepted: string[];
}

/** One AUTH exchange, as given to {@link TestServerOptions.onAuth}. */
export interface AuthAttempt {
  mechanism: string;
  /** Authentication identity (for XOAUTH2/OAUTHBEARER the `user`/`a=` value). */
  username: string;
  /** PLAIN and LOGIN: the password. XOAUTH2 and OAUTHBEARER: the bearer token. */
  password?: string;
  /** Authorization identity, if one was given. */
  authzid?: string;
  /**
   * For CRAM-MD5 and SCRAM: whether the proof matched the password in
   * {@link TestServerOptions.users}. For PLAIN/LOGIN: whether the password matched `users`.
   * Undefined when there is no `users` table or no entry for this user.
   */
  verified?: boolean;
}

export interface TestServerOptions {
  /**
   * `'lmtp'`: LHLO instead of EHLO/HELO (which get 500), one reply per accepted recipient after
   * the end of data (RFC 2033 §4.2), also after BDAT LAST. Default `'smtp'`.
   */
  protocol?: 'smtp' | 'lmtp';
  /** Bind address; must be loopback (127.0.0.0/8 or ::1). Default `'127.0.0.1'`. */
  host?: string;
  /** TCP port. Default 0 (ephemeral). */
  port?: number;
  /** Listen on this unix socket instead of TCP (a stale socket file is removed first). */
  path?: string;
  /** Used in the greeting and the first EHLO line. Default `'mx.test.invalid'` (Postfix myhostname). */
  hostname?: string;
  /**
   * The whole greeting reply (multi-line with `\n`). Default `220 <hostname> ESMTP mailwire-testing`,
   * LMTP `220 <hostname> LMTP ready`. A 5xx greeting makes every later command but QUIT get 503
   * (RFC 5321 §3.1); a 421 greeting closes.
   */
  greeting?: string;
  /** false: EHLO is answered 502 5.5.2, a HELO-only server like `smtp-sink -e`. Default true. */
  ehlo?: boolean;
  extensions?: ExtensionOptions;
  /** `'bare-last-line'` ends the EHLO reply with a bare `250 ` line (smtp-sink's quirk). */
  ehloStyle?: 'normal' | 'bare-last-line';
  /**
   * Postfix `reject_unauth_pipelining`. Default true: when PIPELINING was not announced and a
   * command is followed by unread input, that command is answered
   * `503 5.5.0 <VERB>: Improper use of SMTP command pipelining`.
   */
  rejectUnauthPipelining?: boolean;
  /** Reply to MAIL instead of `250 2.1.0 Ok`; undefined keeps the default. */
  onMail?: (from: string, params: string[], ctx: ScriptContext) => string | undefined;
  /** Reply to RCPT instead of `250 2.1.5 Ok`; undefined keeps the default. */
  onRcpt?: (address: string, params: string[], ctx: ScriptContext) => string | undefined;
  /**
   * End-of-data reply. SMTP: one reply (default `250 2.0.0 Ok: queued as <id>`). LMTP: an array
   * is one reply per accepted recipient in RCPT order (missing entries get the default
   * `250 2.0.0 <addr> Ok`); a single string applies to all. Not called when the server
   * rejects the content itself (size limit, pipelining violation).
   */
  onData?: (tx: ReceivedTransaction, ctx: ScriptContext) => string | string[] | undefined;
  /**
   * Decide an AUTH exchange: true = 235, false = 535, a string = that reply, undefined = the
   * default (check {@link users} if given, else accept anyone).
   */
  onAuth?: (attempt: AuthAttempt, ctx: ScriptContext) => boolean | string | undefined;
  /** SASL users (name → password). CRAM-MD5 and SCRAM need an entry to succeed. */
  users?: Record<string, string>;
  /** Do not announce or accept AUTH before STARTTLS (Postfix `smtpd_tls_auth_only`). Default false. */
  tlsAuthOnly?: boolean;
  /** Scripted misbehavior; the first matching fault with uses left applies (see {@link Fault}). */
  faults?: Fault[];
  /** Keep only the size and a SHA-256 of each received message, not its octets. */
  discardData?: boolean;
  /**
   * Keep at most this many octets of one message; a longer message is still received, sized,
   * hashed and answered, but its `data` is left out (memory stays bounded whatever a client
   * sends). Default 512 MiB. A SIZE limit, when announced, is a lower cap.
   */
  maxKeptData?: number;
  /** Postfix `smtpd_recipient_limit`: further RCPTs get `452 4.5.3 Error: too many recipients`. Default 1000. */
  maxRecipients?: number;
  /**
   * Postfix `smtpd_hard_error_limit`: after this many errors without a delivered message the
   * server sends `421 4.7.0 <hostname> Error: too many errors` and closes. Default 20; 0 = no limit.
   */
  hardErrorLimit?: number;
  /**
   * Postfix `smtpd_junk_command_limit`: NOOP, RSET and VRFY beyond this many (without a delivered
   * message) each count as an error. Default 100; 0 = no limit.
   */
  junkCommandLimit?: number;
  /**
   * Postfix `smtpd_timeout`, in ms: an idle client gets `421 4.4.2 <hostname> Error: timeout
   * exceeded` and is disconnected. Default 300000; 0 = never.
   */
  idleTimeout?: number;
  /** Longest command line, CRLF included; longer lines get `500 5.5.0 Error: line too long`. Default 4096. */
  maxLineLength?: number;
  /** Longest AUTH command or SASL response line (Postfix `smtpd_sasl_response_limit`). Default 12288. */
  maxAuthLineLength?: number;
  /** At most this many transcript lines per session; later lines are dropped. Default 10000. */
  transcriptLimit?: number;
  /**
   * Server certificate and key (PEM), needed for STARTTLS and wrapper mode. On STARTTLS the server
   * replies `220 2.0.0 Ready to start TLS`, discards pipelined plaintext (RFC 3207 §4.2,
   * CVE-2011-0411) and forgets the EHLO. `requestCert` asks for a client certificate
   * (recorded, never verified).
   */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
  /** Implicit TLS from the first octet (Postfix `smtpd_tls_wrappermode`, port 465). Needs `tls`. */
  wrapperMode?: boolean;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  protocol: 'smtp' | 'lmtp';
  hostname: string;
  greeting: string;
  ehlo: boolean;
  extensions: Required<Omit<ExtensionOptions, 'auth' | 'xforward' | 'size'>> & {
    size: number | false;
    auth: string[] | false;
    xforward: string[] | false;
  };
  ehloStyle: 'normal' | 'bare-last-line';
  rejectUnauthPipelining: boolean;
  onMail: TestServerOptions['onMail'];
  onRcpt: TestServerOptions['onRcpt'];
  onData: TestServerOptions['onData'];
  onAuth: TestServerOptions['onAuth'];
  users: Record<string, string> | undefined;
  tlsAuthOnly: boolean;
  discardData: boolean;
  maxKeptData: number;
  maxRecipients: number;
  hardErrorLimit: number;
  junkCommandLimit: number;
  idleTimeout: number;
  maxLineLength: number;
  maxAuthLineLength: number;
  transcriptLimit: number;
  wrapperMode: boolean;
}

/** Fill in the defaults; the listener options (host, port, path, tls) are handled by the server. */
export function resolveOptions(o: TestServerOptions): ResolvedOptions {
  const protocol = o.protocol ?? 'smtp';
  if (protocol !== 'smtp' && protocol !== 'lmtp') {
    throw new TypeError(`mailwire/testing: protocol must be 'smtp' or 'lmtp', not ${JSON.stringify(protocol)}`);
  }
  const hostname = o.hostname ?? 'mx.test.invalid';
  if (/[\s\0]/.test(hostname) || hostname === '') {
    throw new TypeError(`mailwire/testing: bad hostname ${JSON.stringify(hostname)}`);
  }
  const e = o.extensions ?? {};
  const lineLimit = positive('maxLineLength', o.maxLineLength, 4096);
  return {
    protocol,
    hostname,
    greeting: o.greeting ?? (protocol === 'lmtp' ? `220 ${hostname} LMTP ready` : `220 ${hostname} ESMTP mailwire-testing`),
    ehlo: o.ehlo ?? true,
    extensions: {
      pipelining: e.pipelining ?? true,
      chunking: e.chunking ?? true,
      eightBitMime: e.eightBitMime ?? true,
      smtputf8: e.smtputf8 ?? true,
      dsn: e.dsn ?? true,
      enhancedStatusCodes: e.enhancedStatusCodes ?? true,
      size: e.size === undefined || e.size === false ? false : nonNegative('extensions.size', e.size),
      starttls: e.starttls ?? false,
      auth: e.auth === undefined || e.auth === false ? false : e.auth.map((m) => m.toUpperCase()),
      xforward: e.xforward === undefined || e.xforward === false ? false : e.xforward.map((a) => a.toUpperCase()),
      extra: e.extra ?? [],
    },
    ehloStyle: o.ehloStyle ?? 'normal',
    rejectUnauthPipelining: o.rejectUnauthPipelining ?? true,
    onMail: o.onMail,
    onRcpt: o.onRcpt,
    onData: o.onData,
    onAuth: o.onAuth,
    users: o.users,
    tlsAuthOnly: o.tlsAuthOnly ?? false,
    discardData: o.discardData ?? false,
    maxKeptData: nonNegative('maxKeptData', o.maxKeptData ?? 512 * 1024 * 1024),
    maxRecipients: nonNegative('maxRecipients', o.maxRecipients ?? 1000),
    hardErrorLimit: nonNegative('hardErrorLimit', o.hardErrorLimit ?? 20),
    junkCommandLimit: nonNegative('junkCommandLimit', o.junkCommandLimit ?? 100),
    idleTimeout: nonNegative('idleTimeout', o.idleTimeout ?? 300_000),
    maxLineLength: lineLimit,
    maxAuthLineLength: Math.max(lineLimit, positive('maxAuthLineLength', o.maxAuthLineLength, 12288)),
    transcriptLimit: nonNegative('transcriptLimit', o.transcriptLimit ?? 10_000),
    wrapperMode: o.wrapperMode ?? false,
  };
}

function nonNegative(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new TypeError(`mailwire/testing: ${name} must be an integer >= 0`);
  return v;
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 8) throw new TypeError(`mailwire/testing: ${name} must be an integer >= 8`);
  return v;
}
