// Shared pieces of the interop tests: where the peers are, the tricky test message and what a
// correct client puts on the wire for it, transcripts, and reading back stored mail and logs.
import { X509Certificate, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { deliver } from '../../src/index.js';

type DeliverOptions = NonNullable<Parameters<typeof deliver>[2]>;
export type DeliveryEvent = Parameters<NonNullable<DeliverOptions['onEvent']>>[0];

// ---------------------------------------------------------------- peers

export interface Peers {
  dir: string;
  /** host:port of Postfix announcing CHUNKING. */
  postfix: string;
  /** host:port of the same Postfix without CHUNKING (DATA path). */
  postfixNoChunking: string;
  postfixMaildirs: string;
  postfixLog: string;
  /** host:port of Dovecot LMTP. */
  lmtp: string;
  lmtpSocket: string;
  lmtpMaildirs: string;
}

/** Reads `$MAILWIRE_INTEROP_DIR/ports.env`, which `peers.sh start` writes. */
function portsEnv(): { file: string; get: (key: string) => string } {
  const dir = process.env.MAILWIRE_INTEROP_DIR ?? '/tmp/mailwire-interop';
  const file = join(dir, 'ports.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing: start the peers with test/interop/peers.sh start`);
  }
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) env.set(m[1], m[2]);
  }
  const get = (key: string): string => {
    const v = env.get(key);
    if (v === undefined || v === '') throw new Error(`${file} has no ${key} (restart the peers: test/interop/peers.sh restart)`);
    return v;
  };
  return { file, get };
}

/** Reads `$MAILWIRE_INTEROP_DIR/ports.env`, which `peers.sh start` writes. */
export function peers(): Peers {
  const { get } = portsEnv();
  return {
    dir: get('MAILWIRE_INTEROP_DIR'),
    postfix: get('MAILWIRE_INTEROP_POSTFIX'),
    postfixNoChunking: get('MAILWIRE_INTEROP_POSTFIX_NOCHUNKING'),
    postfixMaildirs: get('MAILWIRE_INTEROP_POSTFIX_MAILDIRS'),
    postfixLog: get('MAILWIRE_INTEROP_POSTFIX_LOG'),
    lmtp: get('MAILWIRE_INTEROP_LMTP'),
    lmtpSocket: get('MAILWIRE_INTEROP_LMTP_SOCKET'),
    lmtpMaildirs: get('MAILWIRE_INTEROP_LMTP_MAILDIRS'),
  };
}

/** `127.0.0.1:11025` → `[127.0.0.1]:11025` (Postfix next-hop syntax: no MX lookup). */
export function smtpNexthop(hostPort: string): string {
  const i = hostPort.lastIndexOf(':');
  return `[${hostPort.slice(0, i)}]:${hostPort.slice(i + 1)}`;
}

export function hostOf(hostPort: string): string {
  return hostPort.slice(0, hostPort.lastIndexOf(':'));
}

/** A token unique to one test, put into the Subject and Message-ID to find the stored copy. */
export function token(label: string): string {
  return `${label}-${Date.now()}-${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------- transcript

export class Transcript {
  readonly events: DeliveryEvent[] = [];
  readonly onEvent = (e: DeliveryEvent): void => {
    this.events.push(e);
  };
  /** Command lines the client sent (no CRLF). */
  sent(): string[] {
    return this.events.flatMap((e) => (e.type === 'send' ? [e.line] : []));
  }
  /** Reply lines the client received. */
  received(): string[] {
    return this.events.flatMap((e) => (e.type === 'receive' ? [e.line] : []));
  }
  /** A failure message: this transcript and the result. */
  explain(result: unknown): string {
    return `transcript:\n${this.toString()}\nresult: ${JSON.stringify(result, null, 2)}`;
  }
  /**
   * Every option the test passed is one mailwire knows: an unknown name is only a warning, and
   * the test would then check Postfix's defaults while believing it set something else.
   */
  expectKnownOptions(why: string): void {
    const unknown = this.events.filter((e) => e.type === 'warning' && /unknown option/.test(e.message));
    expect(unknown, why).toEqual([]);
  }
  /** Readable form: C: client lines, S: server lines, other events as JSON. */
  toString(): string {
    return this.events
      .map((e) => (e.type === 'send' ? `C: ${e.line}` : e.type === 'receive' ? `S: ${e.line}` : `   ${JSON.stringify(e)}`))
      .join('\n');
  }
}

// ---------------------------------------------------------------- the test message

export const LINE_LIMIT = 998;
const UTF8_TEXT = Buffer.from('h\u00e9llo w\u00f6rld \u2713 \u{1F600}', 'utf8');
const LATIN1_OCTETS = Buffer.from([0xe9, 0xe8, 0xfc, 0xdf, 0xa9, 0xff]);
const LONG_LINE_OCTETS = 5000;

/**
 * A message with every body hazard at once: lines that begin with "." and "..", a lone "."
 * line in the middle, a 5000-octet line, bare LF and bare CR line ends (a bare CR right
 * before a ".." line), UTF-8 and Latin-1 octets, and a last line without a line end.
 */
export function trickyMessage(tok: string): { message: Buffer; longLine: Buffer } {
  const longLine = Buffer.from(
    Array.from({ length: LONG_LINE_OCTETS }, (_, i) => String.fromCharCode(0x41 + ((i * 7) % 26))).join(''),
    'latin1',
  );
  const parts: Array<string | Buffer> = [
    'From: Interop Sender <sender@client.test>\r\n',
    'To: alice@example.test\r\n',
    `Subject: mailwire interop ${tok}\r\n`,
    `Message-ID: <${tok}@client.test>\r\n`,
    'Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n',
    'MIME-Version: 1.0\r\n',
    'Content-Type: text/plain; charset=utf-8\r\n',
    'Content-Transfer-Encoding: 8bit\r\n',
    '\r\n',
    'first line\r\n',
    '.leading dot\r\n',
    '..two leading dots, bare LF next\n',
    '.\r\n', // a lone dot: must not end the message
    'after the lone dot, bare CR next\r',
    '..\n', // follows a bare CR: still the start of a line
    '. dot space\r\n',
    longLine,
    '\r\n',
    'UTF-8: ',
    UTF8_TEXT,
    '\r\n',
    'Latin-1: ',
    LATIN1_OCTETS,
    '\r\n',
    '...\r\n',
    'last line without a line end',
  ];
  return {
    message: Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))),
    longLine,
  };
}

/** A plain ASCII message whose Subject and Message-ID carry `tok`. */
export function plainMessage(tok: string, from: string): string {
  return `From: <${from}>\r\nSubject: ${tok}\r\nMessage-ID: <${tok}@client.test>\r\n\r\nhello\r\n`;
}

/** Splits on CRLF, bare LF and bare CR. A final line without a line end is kept. */
export function splitLines(input: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === 0x0a || c === 0x0d) {
      lines.push(input.subarray(start, i));
      if (c === 0x0d && input[i + 1] === 0x0a) i++;
      start = i + 1;
    }
  }
  if (start < input.length) lines.push(input.subarray(start));
  return lines;
}

/**
 * Postfix's smtp_line_length_limit: a line longer than the limit is cut blind after `limit`
 * octets; each continuation starts with one space, which counts toward its own limit.
 */
export function foldLine(line: Buffer, limit = LINE_LIMIT): Buffer[] {
  if (line.length <= limit) return [line];
  const pieces: Buffer[] = [line.subarray(0, limit)];
  for (let i = limit; i < line.length; i += limit - 1) {
    pieces.push(Buffer.concat([Buffer.from(' '), line.subarray(i, i + limit - 1)]));
  }
  return pieces;
}

/**
 * The message as a correct client delivers it, before dot-stuffing: every line end CRLF
 * (a last line without one gets one), long lines folded. `eol` '\n' gives the form Postfix's
 * virtual(8) and Dovecot store in a maildir.
 */
export function expectedContent(message: Buffer, eol: '\r\n' | '\n' = '\r\n'): Buffer {
  const end = Buffer.from(eol, 'latin1');
  return Buffer.concat(splitLines(message).flatMap((l) => foldLine(l).flatMap((p) => [p, end])));
}

// ---------------------------------------------------------------- stored mail and logs

/** Waits for a file under MAILDIR/new that contains `needle`; returns its content. */
export async function waitForMaildirFile(maildir: string, needle: string, timeoutMs = 15_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [name] = maildirFilesWith(maildir, needle);
    if (name !== undefined) return readFileSync(join(maildir, 'new', name));
    if (Date.now() > deadline) throw new Error(`no message containing ${JSON.stringify(needle)} in ${maildir}/new after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The file names under MAILDIR/new whose content contains `needle` (no waiting). */
export function maildirFilesWith(maildir: string, needle: string): string[] {
  const dir = join(maildir, 'new');
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // the maildir is created on first delivery
  }
  return names.filter((n) => readFileSync(join(dir, n)).includes(needle));
}

/**
 * Checks a stored copy (maildir file, LF line ends) of `message` as the server received it:
 * trace headers prepended by the server, then the input with every CRLF / LF / CR made one
 * line end, dots intact, 8-bit octets unchanged, and `longLine` cut into pieces of at most
 * 998 octets continued with a SPACE that give the input back once unfolded. Returns the
 * prepended header text.
 */
export function expectStoredCopy(file: Buffer, message: Buffer, longLine: Buffer, what: string): string {
  const stored = expectedContent(message, '\n');
  const cut = Math.max(0, file.length - stored.length);
  const added = file.subarray(0, cut).toString('latin1');
  const rest = file.subarray(cut);

  const lines = splitOnLf(rest);
  const longest = Math.max(...lines.map((l) => l.length));
  expect(longest, `${what}: a line is longer than ${LINE_LIMIT} octets`).toBeLessThanOrEqual(LINE_LIMIT);
  const first = lines.findIndex((l) => l.length > 100 && longLine.subarray(0, l.length).equals(l));
  expect(first, `${what}: the long line's first piece is missing`).toBeGreaterThanOrEqual(0);
  let unfolded = lines[first] ?? Buffer.alloc(0);
  for (let i = first + 1; i < lines.length && lines[i]?.[0] === 0x20; i++) {
    unfolded = Buffer.concat([unfolded, (lines[i] ?? Buffer.alloc(0)).subarray(1)]);
  }
  expect(unfolded.equals(longLine), `${what}: the long line, unfolded, differs from the input`).toBe(true);

  expect(rest.includes(LATIN1_OCTETS), `${what}: Latin-1 octets changed`).toBe(true);
  expect(rest.includes(UTF8_TEXT), `${what}: UTF-8 octets changed`).toBe(true);
  expect(showLines(rest), `${what}: the body differs from the normalized input`).toEqual(showLines(stored));
  expect(onlyTraceHeaders(added), `${what}: the server should only prepend trace headers, got:\n${added}`).toBe(true);
  return added;
}

/** True when every line of `text` is a trace header a server prepends, or its continuation. */
function onlyTraceHeaders(text: string): boolean {
  const lines = text.split('\n');
  if (lines.pop() !== '') return false; // must end at a line end
  return lines.length > 0 && lines.every((l) => /^(Return-Path|X-Original-To|Delivered-To|Received):/.test(l) || /^[ \t]/.test(l));
}

/**
 * Splits a stored copy on LF only: unlike splitLines it leaves a CR inside a line, so a bare CR
 * that the client failed to turn into a line end shows up in the comparison.
 */
function splitOnLf(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, start)) {
    out.push(b.subarray(start, i));
    start = i + 1;
  }
  if (start < b.length) out.push(b.subarray(start));
  return out;
}

/** Lines in a form whose diff reads well: printable ASCII as is, other octets as \xNN. */
function showLines(b: Buffer): string[] {
  return splitOnLf(b).map((l) =>
    Array.from(l, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join(''),
  );
}

/** Escapes a string for use inside a RegExp. */
export function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Waits for Postfix's "disconnect from ..." line of the smtpd session that queued `queueId`
 * and returns it, e.g. "... disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=2/4 bdat=1 quit=1 commands=5/7".
 */
export async function waitForPostfixDisconnect(logFile: string, queueId: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = readFileSync(logFile, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes(`: ${queueId}: client=`));
    const who = i >= 0 ? /\s(postfix-interop\/[a-z]+\/smtpd\[\d+\]):/.exec(lines[i] ?? '')?.[1] : undefined;
    if (who !== undefined) {
      const d = lines.slice(i + 1).find((l) => l.includes(` ${who}: disconnect from `));
      if (d !== undefined) return d;
    }
    if (Date.now() > deadline) throw new Error(`no smtpd disconnect line for ${queueId} in ${logFile} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------- routing lab

/** The routing lab of peers.sh: unbound serving `route.test`, smtpd listeners on one port. */
export interface RouteLab {
  /** host:port of the unbound that serves the zone (UDP and TCP). */
  dns: string;
  /** host:port of an unbound that reads every query and never answers. */
  dnsSilent: string;
  /** unbound's log: one `info: 127.0.0.1 NAME. TYPE IN` line per query received. */
  dnsLog: string;
  /** `route.test` */
  zone: string;
  /** The one port every route server listens on (11525). */
  port: number;
  /** [::1]:port is the server ok6 (loopback has ::1). */
  ipv6: boolean;
}

export function routeLab(): RouteLab {
  const { get } = portsEnv();
  return {
    dns: get('MAILWIRE_INTEROP_DNS'),
    dnsSilent: get('MAILWIRE_INTEROP_DNS_SILENT'),
    dnsLog: get('MAILWIRE_INTEROP_DNS_LOG'),
    zone: get('MAILWIRE_INTEROP_ROUTE_ZONE'),
    port: Number(get('MAILWIRE_INTEROP_ROUTE_PORT')),
    ipv6: get('MAILWIRE_INTEROP_ROUTE_IPV6') === 'yes',
  };
}

/**
 * The route servers' addresses (the zone in peers.sh points at them; keep the three in sync).
 * Each listens on RouteLab.port and logs as postfix-interop/route-NAME/smtpd.
 */
export const ROUTE = {
  /** Nothing listens: connection refused. */
  dead: '127.0.0.20',
  dead2: '127.0.0.29',
  /** Accepts every example.test recipient (no recipient restrictions). */
  ok: '127.0.0.21',
  /** Greets 421 4.3.2 and hangs up. */
  mx421: '127.0.0.22',
  /** main.cf restrictions: defer-4xx@example.test gets 450 4.2.0 at RCPT. */
  mx450: '127.0.0.23',
  /** nullmx.route.test's A record: must never see a connection. */
  canary: '127.0.0.24',
  /** sess1..sess4: EHLO fine, 451 4.3.0 to MAIL FROM. */
  sess: ['127.0.0.31', '127.0.0.32', '127.0.0.33', '127.0.0.34'],
  /** limit1..limit8: greet 421 4.3.2. */
  limit: ['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44', '127.0.0.45', '127.0.0.46', '127.0.0.47', '127.0.0.48'],
} as const;

/** The lines appended to a log file after the cursor was made (a whole line at a time). */
export class LogCursor {
  private readonly offset: number;
  constructor(readonly file: string) {
    this.offset = statSync(file).size;
  }
  lines(): string[] {
    const size = statSync(this.file).size;
    if (size <= this.offset) return [];
    const buf = Buffer.alloc(size - this.offset);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    const text = buf.toString('utf8');
    const end = text.lastIndexOf('\n');
    return end < 0 ? [] : text.slice(0, end).split('\n');
  }
}

/** One smtpd session of a route or TLS lab server, from its maillog lines. */
export interface SmtpdSession {
  /** The server's name (route lab: ok, mx421, sess1, limit3, ...; TLS lab: good, wrongname, ...). */
  server: string;
  pid: string;
  /** Postfix's per-command counters from the disconnect line, e.g. { ehlo: '1', mail: '0/1', rcpt: '1' }. */
  commands: Record<string, string>;
  /** The disconnect line, once logged. */
  disconnect?: string;
  /** Reject lines (`NOQUEUE: reject: …` or `QUEUEID: reject: …`): what the server refused, with its reply. */
  rejects: string[];
  /** smtpd's `… TLS connection established from …: TLSv1.3 with cipher …` line (smtpd_tls_loglevel 1). */
  tls?: string;
  /** smtpd's `SSL_accept error from …` / `TLS library problem` lines: a failed handshake. */
  tlsErrors: string[];
  /** smtpd logged `Reusing old session` (only the TLS lab's `resume` server logs at smtpd_tls_loglevel 2). */
  resumed?: boolean;
  /** SASL lab: `QUEUEID: client=…, sasl_method=M, sasl_username=U`, an authenticated transaction. */
  sasl?: { method: string; username: string };
  /** SASL lab: smtpd's `warning: …: SASL M authentication failed: …` lines (one per refused AUTH). */
  authFailures: string[];
}

/** The smtpd lines of one lab: `route` (postfix-interop/route-NAME), `tls` (postfix-interop/tls-NAME) or `sasl` (postfix-interop/sasl-NAME). */
export type Lab = 'route' | 'tls' | 'sasl';
const smtpdLine = (lab: Lab): RegExp => new RegExp(`\\spostfix-interop\\/${lab}-([a-z0-9]+)\\/smtpd\\[(\\d+)\\]: (.*)$`);

/** The servers whose session got as far as MAIL FROM. */
export const reachedMail = (sessions: SmtpdSession[]): string[] => sessions.filter((s) => s.commands.mail !== undefined).map((s) => s.server);

/** The lab servers' smtpd sessions in maillog `lines`, in the order they connected. */
export function routeSessions(lines: string[], lab: Lab = 'route'): SmtpdSession[] {
  const SMTPD_LINE = smtpdLine(lab);
  const sessions: SmtpdSession[] = [];
  const open = new Map<string, SmtpdSession>(); // an smtpd process serves one session at a time
  for (const line of lines) {
    const m = SMTPD_LINE.exec(line);
    if (!m) continue;
    const [, server = '', pid = '', text = ''] = m;
    const key = `${server}/${pid}`;
    if (text.startsWith('connect from ')) {
      const s: SmtpdSession = { server, pid, commands: {}, rejects: [], tlsErrors: [], authFailures: [] };
      sessions.push(s);
      open.set(key, s);
    } else if (text.startsWith('disconnect from ')) {
      const s = open.get(key);
      if (!s) continue; // connected before the cursor
      s.disconnect = line;
      for (const [, k = '', v = ''] of text.matchAll(/\s([a-z]+)=(\S+)/g)) s.commands[k] = v;
      open.delete(key);
    } else if (/^(NOQUEUE|[0-9A-F]+): reject: /.test(text)) {
      open.get(key)?.rejects.push(text);
    } else if (/ TLS connection established from /.test(text)) {
      const s = open.get(key);
      if (s) s.tls = text;
    } else if (/^SSL_accept error from |^warning: TLS library problem: /.test(text)) {
      open.get(key)?.tlsErrors.push(text);
    } else if (/: Reusing old session\b/.test(text)) {
      const s = open.get(key);
      if (s) s.resumed = true;
    } else if (/^[0-9A-F]+: client=/.test(text)) {
      const m = /, sasl_method=([^,]+), sasl_username=(.*)$/.exec(text);
      const s = open.get(key);
      if (s && m?.[1] !== undefined && m[2] !== undefined) s.sasl = { method: m[1], username: m[2] };
    } else if (/^warning: \S+: SASL \S+ authentication failed: /.test(text)) {
      open.get(key)?.authFailures.push(text);
    }
  }
  return sessions;
}

/**
 * Waits until the route servers' sessions logged after `cursor` are all closed (disconnect
 * line seen), at least `atLeast` of them exist, and the log has been quiet for `settleMs`; then
 * returns them. Counting "exactly N" is safe: every session a finished deliver() opened has at
 * least its connect line logged, and the wait covers the rest.
 */
export async function settledRouteSessions(
  cursor: LogCursor,
  { atLeast = 0, settleMs = 400, timeoutMs = 10_000, lab = 'route' }: { atLeast?: number; settleMs?: number; timeoutMs?: number; lab?: Lab } = {},
): Promise<SmtpdSession[]> {
  const deadline = Date.now() + timeoutMs;
  let count = -1;
  let quietSince = Date.now();
  for (;;) {
    const lines = cursor.lines();
    if (lines.length !== count) {
      count = lines.length;
      quietSince = Date.now();
    }
    const sessions = routeSessions(lines, lab);
    const settled = sessions.length >= atLeast && sessions.every((s) => s.disconnect !== undefined) && Date.now() - quietSince >= settleMs;
    if (settled) return sessions;
    if (Date.now() > deadline) {
      throw new Error(`route sessions in ${cursor.file} did not settle within ${timeoutMs} ms (want >= ${atLeast}): ${JSON.stringify(sessions, null, 2)}`);
    }
    await sleep(50);
  }
}

/** The queries unbound logged (log-queries: `info: 127.0.0.1 NAME. TYPE IN`), names without the final dot. */
export function dnsQueries(lines: string[]): Array<{ name: string; type: string }> {
  return lines.flatMap((l) => {
    const m = /\sinfo: \S+ (\S+)\. ([A-Z0-9]+) IN$/.exec(l);
    return m?.[1] !== undefined && m[2] !== undefined ? [{ name: m[1].toLowerCase(), type: m[2] }] : [];
  });
}

/** Waits until unbound logged at least `atLeast` queries after `cursor` and then `settleMs` of quiet; returns them. */
export async function settledDnsQueries(
  cursor: LogCursor,
  { atLeast = 1, settleMs = 200, timeoutMs = 5_000 }: { atLeast?: number; settleMs?: number; timeoutMs?: number } = {},
): Promise<Array<{ name: string; type: string }>> {
  const deadline = Date.now() + timeoutMs;
  let count = -1;
  let quietSince = Date.now();
  for (;;) {
    const lines = cursor.lines();
    if (lines.length !== count) {
      count = lines.length;
      quietSince = Date.now();
    }
    const queries = dnsQueries(lines);
    if (queries.length >= atLeast && Date.now() - quietSince >= settleMs) return queries;
    if (Date.now() > deadline) throw new Error(`fewer than ${atLeast} DNS queries in ${cursor.file} after ${timeoutMs} ms: ${JSON.stringify(queries)}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- TLS lab

/** The TLS lab of peers.sh: certificates, TLS listeners, the zones tls.test, dane.test, insecure.test, sts.test, the MTA-STS server. */
export interface TlsLab {
  /** The one port of every TLS lab server (the routing lab's port; TLSA records are at `_PORT._tcp.HOST`). */
  port: number;
  /** PEM file of the harness CA (trust it with `tls: { ca }`). */
  caFile: string;
  /** The harness CA, PEM. */
  ca: string;
  /** Directory of the certificates: NAME.crt / NAME.key / NAME.chain.pem for good, wrongname, expired, selfsigned, mta-sts. */
  certs: string;
  /** host:port of the HTTPS MTA-STS policy server (127.0.0.80:443). */
  mtaSts: string;
  /** Its request log: one `ISO-TIME HOST METHOD PATH STATUS` line per request. */
  mtaStsLog: string;
}

export function tlsLab(): TlsLab {
  const { get } = portsEnv();
  const caFile = get('MAILWIRE_INTEROP_TLS_CA');
  return {
    port: Number(get('MAILWIRE_INTEROP_TLS_PORT')),
    caFile,
    ca: readFileSync(caFile, 'utf8'),
    certs: get('MAILWIRE_INTEROP_TLS_CERTS'),
    mtaSts: get('MAILWIRE_INTEROP_MTA_STS'),
    mtaStsLog: get('MAILWIRE_INTEROP_MTA_STS_LOG'),
  };
}

/**
 * The TLS lab servers (peers.sh TLS_SERVERS and the zones in tls_zone_*; keep the three in sync).
 * Each listens on TlsLab.port and logs as postfix-interop/tls-NAME/smtpd. Certificates: good
 * (CA-signed, names of every "good" host), wrongname (CA-signed for someone-else.test), expired
 * (CA-signed expired.tls.test, 2020-2021), selfsigned (selfsigned.tls.test).
 */
export const TLS = {
  /** STARTTLS, good certificate: good.tls.test */
  good: '127.0.0.61',
  /** STARTTLS, CA-signed certificate for another name: wrongname.tls.test */
  wrongname: '127.0.0.62',
  /** STARTTLS, expired CA-signed certificate with the right name: expired.tls.test */
  expired: '127.0.0.63',
  /** STARTTLS, self-signed certificate with the right name: selfsigned.tls.test */
  selfsigned: '127.0.0.64',
  /** No STARTTLS: plain.tls.test */
  plain: '127.0.0.65',
  /** STARTTLS offered, but every handshake fails (eNULL-only, TLS <= 1.2): badtls.tls.test */
  badtls: '127.0.0.66',
  /** Implicit TLS (wrapper mode), good certificate: smtps.tls.test */
  smtps: '127.0.0.67',
  /** STARTTLS, good certificate, Postfix's session cache: resume.tls.test */
  resume: '127.0.0.68',
  /** good certificate; mx.dane.test (TLSA 3 1 1 of its key), mxnotlsa.dane.test (no TLSA) */
  daneee: '127.0.0.71',
  /** good certificate; mxta.dane.test (TLSA 2 1 1 of the CA) */
  daneta: '127.0.0.72',
  /** good certificate; mxbad.dane.test (TLSA 3 1 1 of zeros) */
  danebad: '127.0.0.73',
  /** good certificate; mx.insecure.test (unsigned zone; a TLSA record of zeros to be ignored) */
  insecure: '127.0.0.74',
  /** good certificate; good.sts.test (matches the sts.test policy) */
  stsgood: '127.0.0.81',
  /** good certificate; bad.sts.test (MX 10 of sts.test, not in its policy: must never be contacted) */
  stsbad: '127.0.0.82',
  /** wrongname certificate; mx.testing.sts.test, mx.badcert.sts.test */
  stswrong: '127.0.0.83',
} as const;
export type TlsServer = keyof typeof TLS;

/** The TLS outcome of a recipient result (API.md `RecipientResult.tls`, `tlsFailure`), read loosely. */
export interface TlsSummary {
  version: string;
  cipher: string;
  verified: boolean;
  level: string;
  resumed?: boolean;
}
export interface TlsFailure {
  resultType: string;
  receivingMxHostname?: string;
  receivingIp?: string;
  detail?: string;
}
export function tlsOf(r: unknown): TlsSummary | undefined {
  return (r as { tls?: TlsSummary } | undefined)?.tls;
}
export function tlsFailureOf(r: unknown): TlsFailure | undefined {
  return (r as { tlsFailure?: TlsFailure } | undefined)?.tlsFailure;
}

/** SHA-256 fingerprint of a PEM certificate file (DER), as `AB:CD:…` (the form Postfix's match= takes). */
export function certFingerprint(pemFile: string): string {
  return new X509Certificate(readFileSync(pemFile)).fingerprint256;
}

/** The MTA-STS server's policy fetches in its log lines: `{ host, path, status }`. */
export function stsFetches(lines: string[]): Array<{ host: string; path: string; status: number }> {
  return lines.flatMap((l) => {
    const m = /^\S+ (\S+) GET (\S+) (\d{3})$/.exec(l);
    return m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined ? [{ host: m[1], path: m[2], status: Number(m[3]) }] : [];
  });
}

// ---------------------------------------------------------------- SASL lab

/** The SASL lab of peers.sh: Postfix listeners that relay only for clients that authenticated through a private Dovecot auth instance. */
export interface SaslLab {
  /** The one port of every SASL lab server (the routing lab's port). */
  port: number;
  /** `sasl.test`: submit / plaintext / plainonly.sasl.test name the servers (unsigned zone at the lab's unbound). */
  zone: string;
  /** The Dovecot auth instance's log (`passwd-file(USER,CLIENT-IP): Password mismatch` per refused login). */
  authLog: string;
}

export function saslLab(): SaslLab {
  const { get } = portsEnv();
  return { port: Number(get('MAILWIRE_INTEROP_SASL_PORT')), zone: get('MAILWIRE_INTEROP_SASL_ZONE'), authLog: get('MAILWIRE_INTEROP_SASL_AUTH_LOG') };
}

/**
 * The SASL lab servers (peers.sh SASL_SERVERS and sasl_zone; keep the three in sync). Each listens
 * on SaslLab.port, logs as postfix-interop/sasl-NAME/smtpd, relays only for authenticated clients
 * (an anonymous RCPT gets `554 5.7.1 <…>: Recipient address rejected: Access denied`) and stores
 * example.test mail in the maildirs with `(Authenticated sender: USER)` in its Received header.
 */
export const SASL = {
  /** submit.sasl.test: STARTTLS (good certificate, a name of it), AUTH only after STARTTLS: PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256. */
  submit: '127.0.0.91',
  /** plaintext.sasl.test: no TLS; AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 in plaintext. */
  plaintext: '127.0.0.92',
  /** plainonly.sasl.test: no TLS; AUTH PLAIN only. */
  plainonly: '127.0.0.93',
} as const;
export type SaslServer = keyof typeof SASL;

/** The lab's SASL users (peers.sh SASL_USERS, `{PLAIN}` passwords in Dovecot's passwd-file). */
export const SASL_USERS = {
  test: { username: 'test@example.test', password: 'testpass' },
  alice: { username: 'alice@example.test', password: 'alice-pw' },
  utf8: { username: 'utf8@example.test', password: 'p\u00e4ssw\u00f6rd' },
} as const;

/** AUTH commands smtpd counted in `sessions` (the `auth=N/M` of each disconnect line: M tried, N accepted). */
export function authAttempts(sessions: SmtpdSession[]): { tried: number; accepted: number } {
  let tried = 0;
  let accepted = 0;
  for (const s of sessions) {
    const v = s.commands.auth;
    if (v === undefined) continue;
    const [ok = '0', all] = v.split('/');
    accepted += Number(ok);
    tried += Number(all ?? ok);
  }
  return { tried, accepted };
}

// ---------------------------------------------------------------- content lab

/**
 * The content lab of peers.sh: more listeners of the main Postfix instance (same maildirs, same
 * restrictions as `Peers.postfix`), each logging as postfix-interop/NAME/smtpd.
 */
export interface ContentLab {
  /** host:port of Postfix without 8BITMIME in its EHLO (syslog name no8bitmime). */
  no8bitmime: string;
  /** host:port of Postfix with `smtputf8_enable = no` (syslog name nosmtputf8). */
  noSmtputf8: string;
  /**
   * host:port of Postfix announcing XFORWARD to loopback clients (syslog name xforward); its
   * cleanup keeps the client's Return-Path: headers (cleanup_service_name=cleanup-keep).
   */
  xforward: string;
}

export function contentLab(): ContentLab {
  const { get } = portsEnv();
  return {
    no8bitmime: get('MAILWIRE_INTEROP_POSTFIX_NO8BITMIME'),
    noSmtputf8: get('MAILWIRE_INTEROP_POSTFIX_NOSMTPUTF8'),
    xforward: get('MAILWIRE_INTEROP_POSTFIX_XFORWARD'),
  };
}

/**
 * The smtpd log lines of the session that queued `queueId`, on any listener of the main
 * instance: its `QUEUEID: client=…` line (with `orig_client=…` after XFORWARD) and its
 * `disconnect from …` line (the command counters). `syslog` is e.g. `postfix-interop/xforward/smtpd`.
 */
export async function waitForPostfixSession(
  logFile: string,
  queueId: string,
  timeoutMs = 15_000,
): Promise<{ syslog: string; client: string; disconnect: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = readFileSync(logFile, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes(`: ${queueId}: client=`));
    const m = i >= 0 ? /\s(postfix-interop\/[a-z0-9-]+\/smtpd)(\[\d+\]):/.exec(lines[i] ?? '') : null;
    if (m?.[1] !== undefined && m[2] !== undefined) {
      const d = lines.slice(i + 1).find((l) => l.includes(` ${m[1]}${m[2]}: disconnect from `));
      if (d !== undefined) return { syslog: m[1], client: lines[i] ?? '', disconnect: d };
    }
    if (Date.now() > deadline) throw new Error(`no smtpd client/disconnect lines for ${queueId} in ${logFile} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Waits until a line logged after `cursor` matches `pattern`; returns it. */
export async function waitForLogLine(cursor: LogCursor, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = cursor.lines().find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern} in ${cursor.file} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * A stored copy split at its first empty line: the header block as logical header lines
 * (continuations joined with their line ends kept, as `Name: value\n\tmore`) and the body.
 */
export function storedHeaders(file: Buffer): { headers: string[]; body: Buffer } {
  const end = file.indexOf('\n\n');
  const block = (end < 0 ? file : file.subarray(0, end)).toString('utf8');
  const headers: string[] = [];
  for (const line of block.split('\n')) {
    if (/^[ \t]/.test(line) && headers.length > 0) headers[headers.length - 1] += `\n${line}`;
    else headers.push(line);
  }
  return { headers, body: end < 0 ? Buffer.alloc(0) : file.subarray(end + 2) };
}

/** The queue id in a Postfix `250 2.0.0 Ok: … queued as ID` diagnosticCode or reason. */
export function queueIdOf(text: string | undefined): string | undefined {
  return /queued as ([0-9A-F]+)\b/.exec(text ?? '')?.[1];
}
