/**
 * argv → a typed, validated description of one `mailwire` run, or a usage error. Pure: no
 * files, no environment, no network (the destination's syntax is checked with the library's
 * own parser, which is pure too).
 */
import { parseDestination } from '../destination/parse-destination.js';
import { MailwireError } from '../errors.js';
import type { TlsLevel } from '../tls/tls-policy.js';
import { FLAGS, REFUSED_FLAGS, type FlagSpec } from './flags.js';

export interface HeaderField {
  name: string;
  value: string;
}

export interface CliArgs {
  /** The destination in Postfix syntax, as given or derived from the recipients' domain. */
  destination: string;
  /** True when no destination was given and it was derived from the recipients' domain. */
  destinationFromRecipients: boolean;
  /** Envelope sender; `''` is the null sender; undefined: the default (USER@HOSTNAME). */
  from: string | undefined;
  to: string[];
  protocol: 'smtp' | 'lmtp';
  port: number | string | undefined;
  heloName: string | undefined;
  inetProtocols: 'ipv4' | 'ipv6' | undefined;
  /** Deadline for the whole delivery, in milliseconds. */
  timeoutMs: number | undefined;
  /** Undefined: the library's default (`may`). */
  tlsLevel: TlsLevel | undefined;
  tlsCaFile: string | undefined;
  tlsFingerprints: string[];
  tlsOnConnect: boolean;
  authUser: string | undefined;
  authPasswordFile: string | undefined;
  authPasswordEnv: string | undefined;
  authMechanisms: string[] | undefined;
  /** A file name, `-` for standard input, or undefined: build a message. */
  data: string | undefined;
  headers: HeaderField[];
  subject: string | undefined;
  body: string | undefined;
  verbose: boolean;
  quiet: boolean;
  json: boolean;
}

export type ParseResult =
  | { kind: 'run'; args: CliArgs }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'usage'; message: string };

const TLS_LEVELS: readonly TlsLevel[] = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure'];

class UsageError extends Error {}

function usage(message: string): never {
  throw new UsageError(message);
}

const byLong = new Map<string, FlagSpec>();
const byShort = new Map<string, FlagSpec>();
for (const f of FLAGS) {
  byLong.set(f.name, f);
  for (const a of f.aliases ?? []) byLong.set(a, f);
  if (f.short !== undefined) byShort.set(f.short, f);
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

function unknownFlag(flag: string): never {
  const name = flag.replace(/^-+/, '');
  let best: string | undefined;
  let bestD = 3;
  for (const known of byLong.keys()) {
    const dd = distance(name, known);
    if (dd < bestD) {
      bestD = dd;
      best = known;
    }
  }
  usage(`unknown flag ${flag}${best !== undefined ? ` (did you mean --${best}?)` : ''}`);
}

/** Seconds by default; `ms`, `s`, `m`, `h` suffixes. Returns milliseconds, or undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/i.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? 's').toLowerCase();
  const ms = Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}

/** `Name: value` (RFC 5322 field name: printable ASCII but colon; no CR, LF or NUL in the value). */
export function parseHeaderField(text: string): HeaderField | undefined {
  const m = /^([!-9;-~]+)[ \t]*:[ \t]*(.*)$/s.exec(text);
  if (!m || /[\r\n\0]/.test(m[2]!)) return undefined;
  return { name: m[1]!, value: m[2]! };
}

/** Split `a@x, b@y` at commas outside double quotes; trims; drops empty pieces. */
export function splitAddressList(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && quoted && i + 1 < text.length) {
      cur += c + text[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** `<a@b>` → `a@b`; `<>` → ``. */
function stripAngles(address: string): string {
  return address.startsWith('<') && address.endsWith('>') ? address.slice(1, -1) : address;
}

interface Raw {
  values: Map<string, string[]>;
  positionals: string[];
}

function tokenize(argv: readonly string[]): Raw {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  const put = (f: FlagSpec, value: string, shown: string): void => {
    const list = values.get(f.name) ?? [];
    if (list.length > 0 && f.value !== undefined && !f.repeat) usage(`${shown} given more than once`);
    list.push(value);
    values.set(f.name, list);
  };
  const takeValue = (f: FlagSpec, shown: string, i: number): string => {
    const v = argv[i];
    if (v === undefined) usage(`${shown} needs a value (${f.value})`);
    if (v.startsWith('--') && byLong.has(v.slice(2).split('=')[0]!)) usage(`${shown} needs a value (${f.value}), not the flag ${v}`);
    return v;
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const inline = eq === -1 ? undefined : a.slice(eq + 1);
      const refused = REFUSED_FLAGS[name];
      if (refused !== undefined) usage(`--${name} is not supported: ${refused}`);
      const f = byLong.get(name) ?? unknownFlag(`--${name}`);
      if (f.value === undefined) {
        if (inline !== undefined) usage(`--${name} takes no value`);
        put(f, '', `--${name}`);
      } else {
        put(f, inline ?? takeValue(f, `--${name}`, ++i), `--${name}`);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const ch = a[j]!;
        const f = byShort.get(ch) ?? unknownFlag(`-${ch}`);
        if (f.value === undefined) {
          put(f, '', `-${ch}`);
          continue;
        }
        const rest = a.slice(j + 1);
        put(f, rest !== '' ? rest : takeValue(f, `-${ch}`, ++i), `-${ch}`);
        break;
      }
      continue;
    }
    positionals.push(a);
  }
  return { values, positionals };
}

/** Parse and validate argv (without `node` and the script). */
export function parseCliArgs(argv: readonly string[]): ParseResult {
  try {
    return build(tokenize(argv));
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'usage', message: err.message };
    throw err;
  }
}

function build({ values, positionals }: Raw): ParseResult {
  const has = (n: string): boolean => values.has(n);
  const one = (n: string): string | undefined => values.get(n)?.[0];
  const all = (n: string): string[] => values.get(n) ?? [];
  if (has('help')) return { kind: 'help' };
  if (has('version')) return { kind: 'version' };

  const protocol = has('lmtp') ? 'lmtp' : 'smtp';

  const to = all('to').flatMap(splitAddressList).map(stripAngles);
  if (to.length === 0) usage('no recipient: give at least one --to ADDRESS');
  const fromRaw = one('from');
  const from = fromRaw === undefined ? undefined : stripAngles(fromRaw.trim());

  let port: number | string | undefined;
  const portRaw = one('port');
  if (portRaw !== undefined) {
    if (/^\d+$/.test(portRaw)) {
      port = Number(portRaw);
      if (port < 1 || port > 65535) usage(`--port ${portRaw}: not a port number (1-65535)`);
    } else if (/^[a-z][a-z0-9-]*$/i.test(portRaw)) port = portRaw.toLowerCase();
    else usage(`--port ${portRaw}: not a port number or service name`);
  }

  const heloName = one('helo');
  if (heloName !== undefined && (heloName === '' || /[\s\0]/.test(heloName))) usage(`--helo: "${heloName}" is not a host name (empty, or has white space)`);

  if (has('ipv4') && has('ipv6')) usage('-4 and -6 exclude each other');
  const inetProtocols = has('ipv4') ? 'ipv4' : has('ipv6') ? 'ipv6' : undefined;

  let timeoutMs: number | undefined;
  const timeoutRaw = one('timeout');
  if (timeoutRaw !== undefined) {
    timeoutMs = parseDuration(timeoutRaw);
    if (timeoutMs === undefined) usage(`--timeout ${timeoutRaw}: not a duration (30, 500ms, 45s, 2m, 1h)`);
  }

  let tlsLevel: TlsLevel | undefined;
  const tlsRaw = one('tls');
  if (tlsRaw !== undefined) {
    const l = tlsRaw.toLowerCase() as TlsLevel;
    if (!TLS_LEVELS.includes(l)) usage(`--tls ${tlsRaw}: unknown level (${TLS_LEVELS.join(', ')})`);
    tlsLevel = l;
  }
  const tlsFingerprints = all('tls-fingerprint');
  for (const fp of tlsFingerprints) if (!/^[0-9a-f]{2}(:?[0-9a-f]{2})+$/i.test(fp)) usage(`--tls-fingerprint ${fp}: not a hex digest (AB:CD:... or ABCD...)`);
  if (tlsFingerprints.length > 0) {
    if (tlsLevel === undefined) tlsLevel = 'fingerprint';
    else if (tlsLevel !== 'fingerprint') usage(`--tls-fingerprint needs --tls fingerprint, not --tls ${tlsLevel}`);
  } else if (tlsLevel === 'fingerprint') usage('--tls fingerprint needs at least one --tls-fingerprint DIGEST');
  const tlsOnConnect = has('tls-on-connect');
  if (tlsOnConnect) {
    if (tlsLevel === undefined) tlsLevel = 'encrypt';
    else if (tlsLevel === 'none' || tlsLevel === 'may') usage(`--tls-on-connect needs a TLS level of encrypt or higher, not --tls ${tlsLevel}`);
  }

  const authUser = one('auth-user');
  const authPasswordFile = one('auth-password-file');
  const authPasswordEnv = one('auth-password-env');
  const authMechRaw = one('auth-mech');
  if (authUser === '') usage('--auth-user: empty user name');
  if (authPasswordFile !== undefined && authPasswordEnv !== undefined) usage('--auth-password-file and --auth-password-env exclude each other');
  if (authUser === undefined && (authPasswordFile !== undefined || authPasswordEnv !== undefined || authMechRaw !== undefined)) {
    usage('--auth-password-file, --auth-password-env and --auth-mech need --auth-user');
  }
  if (authPasswordEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(authPasswordEnv)) usage(`--auth-password-env ${authPasswordEnv}: not an environment variable name`);
  let authMechanisms: string[] | undefined;
  if (authMechRaw !== undefined) {
    authMechanisms = authMechRaw.split(/[\s,]+/).filter((m) => m !== '').map((m) => m.toUpperCase());
    if (authMechanisms.length === 0 || authMechanisms.some((m) => !/^[A-Z0-9_-]{1,20}$/.test(m))) usage(`--auth-mech ${authMechRaw}: not a list of SASL mechanism names`);
  }

  const data = one('data');
  if (data === '') usage('--data needs a file name, or - for standard input');
  const body = one('body');
  if (body !== undefined && data !== undefined) usage('--body builds a message; it cannot be combined with --data (use one or the other)');
  const headers: HeaderField[] = [];
  for (const h of all('header')) {
    const field = parseHeaderField(h);
    if (field === undefined) usage(`--header ${JSON.stringify(h)}: not a header field 'Name: value' (single line)`);
    headers.push(field);
  }
  const subject = one('subject');
  if (subject !== undefined && /[\r\n\0]/.test(subject)) usage('--subject: one line only');

  const quiet = has('quiet');
  const json = has('json');
  if (quiet && json) usage('--quiet and --json exclude each other');

  if (positionals.length > 1) usage(`one destination only, got ${positionals.length}: ${positionals.map((p) => JSON.stringify(p)).join(' ')} (quote a list of next hops: 'a.example, b.example')`);
  let destination = positionals[0];
  let destinationFromRecipients = false;
  if (destination === undefined) {
    if (protocol === 'lmtp') usage('no destination: LMTP needs one (inet:HOST:PORT or unix:/PATH)');
    const domains = new Set(to.map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase()));
    if (to.some((a) => !a.includes('@') || a.endsWith('@'))) usage('no destination given, and a recipient has no domain to look up');
    if (domains.size > 1) usage(`no destination given, and the recipients are in different domains (${[...domains].join(', ')}); give the destination`);
    destination = [...domains][0]!;
    destinationFromRecipients = true;
  }
  try {
    parseDestination(destination, { protocol, ...(port !== undefined ? { port } : {}) });
  } catch (err) {
    if (err instanceof MailwireError) usage(`bad destination: ${err.message}`);
    throw err;
  }

  return {
    kind: 'run',
    args: {
      destination,
      destinationFromRecipients,
      from,
      to,
      protocol,
      port,
      heloName,
      inetProtocols,
      timeoutMs,
      tlsLevel,
      tlsCaFile: one('tls-ca'),
      tlsFingerprints,
      tlsOnConnect,
      authUser,
      authPasswordFile,
      authPasswordEnv,
      authMechanisms,
      data,
      headers,
      subject,
      body,
      verbose: has('verbose'),
      quiet,
      json,
    },
  };
}
