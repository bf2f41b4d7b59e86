/**
 * MTA-STS (RFC 8461), the pure part: the `_mta-sts` TXT record (§3.1), the policy file (§3.2)
 * and MX host matching (§4.1). No I/O here; `mta-sts-fetch.ts` does the HTTPS fetch and
 * `mta-sts.ts` puts discovery, fetch and cache together.
 */
import { domainToASCII } from 'node:url';

/** A validated MTA-STS policy (RFC 8461 §3.2) plus the `id` of the TXT record that announced it. */
export interface MtaStsPolicy {
  version: 'STSv1';
  /**
   * `enforce`: deliver only to MX hosts that match `mx` and present a valid certificate;
   * `testing`: report failures (TLS-RPT) but deliver anyway; `none`: the domain withdrew its
   * policy (treat as no policy; it is still cached so that an older policy stops applying).
   */
  mode: 'enforce' | 'testing' | 'none';
  /** MX patterns, lower case, without a trailing dot: `mx.example.com` or `*.example.net`. */
  mx: string[];
  /** Seconds the policy may be cached after it was fetched, 0..31557600. */
  maxAge: number;
  /** The `id` of the `_mta-sts` TXT record the policy was fetched for (1-32 alphanumerics). */
  id: string;
}

/**
 * A problem worth a TLS-RPT report (RFC 8460 §4.3.2.1 result types), with a human-readable
 * `detail` (the `failure-reason-code` / `additional-information` material).
 */
export type MtaStsFailure = {
  resultType: 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';
  detail: string;
};

/** RFC 8461 §3.2: the largest `max_age` (one year of 365.25 days, in seconds). */
export const MTA_STS_MAX_AGE_LIMIT = 31_557_600;

/** How a set of TXT records at `_mta-sts.<domain>` reads (RFC 8461 §3.1). */
export type StsTxtReading =
  | { kind: 'absent' } // no record begins with "v=STSv1": the domain has no MTA-STS
  | { kind: 'invalid'; detail: string } // several candidates, or one that breaks the ABNF
  | { kind: 'ok'; id: string };

const WSP = /^[ \t]*|[ \t]*$/g;
const STS_ID = /^[A-Za-z0-9]{1,32}$/;
const TXT_EXT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}=[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** A record counts as an MTA-STS candidate when it begins with "v=STSv1" as a whole token. */
function isStsCandidate(record: string): boolean {
  return /^v=STSv1(?:$|[ \t;])/.test(record);
}

/**
 * Reads the TXT records of `_mta-sts.<domain>` (RFC 8461 §3.1), telling "no MTA-STS record"
 * apart from "a broken one". The character-strings of one record are concatenated without
 * spaces; records that do not begin with `v=STSv1` are discarded; exactly one must remain.
 */
export function readStsTxt(records: readonly (readonly string[])[]): StsTxtReading {
  if (!Array.isArray(records)) throw new TypeError('TXT records must be an array of string arrays');
  const joined = records.map((r) => (Array.isArray(r) ? r.join('') : String(r)));
  const candidates = joined.filter(isStsCandidate);
  if (candidates.length === 0) return { kind: 'absent' };
  if (candidates.length > 1) return { kind: 'invalid', detail: `${candidates.length} TXT records begin with v=STSv1 (exactly one is allowed)` };
  const record = candidates[0]!;
  // sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
  // sts-field-delim = *WSP ";" *WSP. Trailing white space after the last field is tolerated.
  const parts = record.split(';').map((p) => p.replace(WSP, ''));
  if (parts[0] !== 'v=STSv1') return { kind: 'invalid', detail: `TXT record ${JSON.stringify(record)}: must begin with "v=STSv1;"` };
  const fields = parts.slice(1);
  if (fields.length > 0 && fields[fields.length - 1] === '') fields.pop(); // the optional final ";"
  if (fields.length === 0) return { kind: 'invalid', detail: `TXT record ${JSON.stringify(record)}: no id field` };
  let id: string | undefined;
  for (const field of fields) {
    if (field === '') return { kind: 'invalid', detail: `TXT record ${JSON.stringify(record)}: empty field` };
    if (field.startsWith('id=')) {
      const value = field.slice(3);
      if (!STS_ID.test(value)) {
        return { kind: 'invalid', detail: `TXT record ${JSON.stringify(record)}: id must be 1 to 32 letters and digits` };
      }
      id ??= value; // a repeated field: the first occurrence counts (§3.2's rule, applied here too)
    } else if (!TXT_EXT.test(field)) {
      return { kind: 'invalid', detail: `TXT record ${JSON.stringify(record)}: malformed field ${JSON.stringify(field)}` };
    }
  }
  if (id === undefined) return { kind: 'invalid', detail: `TXT record ${JSON.stringify(record)}: no id field` };
  return { kind: 'ok', id };
}

/**
 * Parses the TXT records of `_mta-sts.<domain>` (RFC 8461 §3.1): exactly one record must begin
 * with `v=STSv1` (others are discarded), the character-strings of a record are concatenated,
 * and the record needs an `id` of 1-32 letters and digits. Unknown `name=value` fields are
 * ignored.
 *
 * ```ts
 * parseStsTxt([['v=STSv1; id=20160831085700Z;']]); // { ok: true, id: '20160831085700Z' }
 * ```
 * `{ ok: false }` means "no usable MTA-STS record" (which is not by itself a reason to drop a
 * cached policy); {@link readStsTxt} also tells whether any candidate record was present.
 */
export function parseStsTxt(records: string[][]): { ok: true; id: string } | { ok: false; detail: string } {
  const reading = readStsTxt(records);
  if (reading.kind === 'ok') return { ok: true, id: reading.id };
  return { ok: false, detail: reading.kind === 'absent' ? 'no TXT record begins with v=STSv1' : reading.detail };
}

const POLICY_KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** RFC 5321 Domain (LDH labels, A-labels for IDNs), case-insensitive; at most 253 octets. */
function isDomain(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => LDH_LABEL.test(label));
}

/** `["*."] Domain`, lower-cased, one trailing dot tolerated and dropped; undefined when malformed. */
function normalizeMxPattern(value: string): string | undefined {
  let p = value.toLowerCase();
  if (p.endsWith('.')) p = p.slice(0, -1);
  const domain = p.startsWith('*.') ? p.slice(2) : p;
  return isDomain(domain) ? p : undefined;
}

/**
 * Parses an MTA-STS policy file (RFC 8461 §3.2). `id` is the TXT record's id, copied into the
 * result.
 *
 * Lines are `key: value`, ended by LF or CRLF, in any order. `version: STSv1`, `mode`
 * (`enforce` / `testing` / `none`) and `max_age` (1-10 digits, at most 31557600) are required;
 * `mx` is required (one or more) unless the mode is `none`. Keys and the values of known keys
 * are case-sensitive (`%s` in the ABNF). A repeated key other than `mx` counts only the first
 * time. Unknown keys are ignored, but must still be well-formed key names.
 *
 * Beyond the ABNF, blank lines are skipped (many published policies end with an extra newline),
 * as is white space after a value; an `mx` value may end with a dot.
 */
export function parseStsPolicy(text: string, id: string): { ok: true; policy: MtaStsPolicy } | { ok: false; detail: string } {
  if (typeof text !== 'string') throw new TypeError('policy text must be a string');
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let version: string | undefined;
  let mode: MtaStsPolicy['mode'] | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];
  const bad = (n: number, why: string) => ({ ok: false as const, detail: `policy line ${n}: ${why}` });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = i + 1;
    if (/^[ \t]*$/.test(line)) continue;
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return bad(n, 'control character');
    const colon = line.indexOf(':');
    if (colon < 0) return bad(n, `not a "key: value" line: ${JSON.stringify(line)}`);
    const key = line.slice(0, colon);
    if (!POLICY_KEY.test(key)) return bad(n, `malformed key ${JSON.stringify(key)}`);
    const value = line.slice(colon + 1).replace(WSP, '');
    switch (key) {
      case 'version':
        if (version !== undefined) break;
        if (value !== 'STSv1') return bad(n, `unsupported version ${JSON.stringify(value)} (only STSv1)`);
        version = value;
        break;
      case 'mode':
        if (mode !== undefined) break;
        if (value !== 'enforce' && value !== 'testing' && value !== 'none') {
          return bad(n, `mode must be enforce, testing or none, not ${JSON.stringify(value)}`);
        }
        mode = value;
        break;
      case 'max_age':
        if (maxAge !== undefined) break;
        if (!/^[0-9]{1,10}$/.test(value)) return bad(n, `max_age must be 1 to 10 digits, not ${JSON.stringify(value)}`);
        if (Number(value) > MTA_STS_MAX_AGE_LIMIT) return bad(n, `max_age ${value} is above ${MTA_STS_MAX_AGE_LIMIT}`);
        maxAge = Number(value);
        break;
      case 'mx': {
        const pattern = normalizeMxPattern(value);
        if (pattern === undefined) return bad(n, `mx must be a domain name or *. and a domain name, not ${JSON.stringify(value)}`);
        if (!mx.includes(pattern)) mx.push(pattern);
        break;
      }
      default:
        break; // an extension field: ignored (§3.2)
    }
  }
  if (version === undefined) return { ok: false, detail: 'policy has no version field' };
  if (mode === undefined) return { ok: false, detail: 'policy has no mode field' };
  if (maxAge === undefined) return { ok: false, detail: 'policy has no max_age field' };
  if (mx.length === 0 && mode !== 'none') return { ok: false, detail: `policy in mode ${mode} has no mx field` };
  return { ok: true, policy: { version: 'STSv1', mode, mx, maxAge, id } };
}

/** Lower case, A-labels, without a trailing dot. */
function normalizeHost(name: string): string {
  let h = name;
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (/[^\x00-\x7f]/.test(h)) h = domainToASCII(h) || h;
  return h.toLowerCase();
}

/**
 * Whether an MX host name is allowed by a policy's `mx` patterns (RFC 8461 §4.1): a pattern
 * matches the name exactly (case-insensitive, a trailing dot on either side ignored), or it is
 * `*.` followed by a suffix and the name is exactly one non-empty label in front of that suffix.
 * `*.example.com` matches `mail.example.com` but neither `example.com` nor `a.b.example.com`.
 */
export function mxMatchesPolicy(mxHost: string, patterns: readonly string[]): boolean {
  if (typeof mxHost !== 'string') return false;
  const host = normalizeHost(mxHost);
  if (host === '') return false;
  const dot = host.indexOf('.');
  const parent = dot > 0 ? host.slice(dot + 1) : undefined;
  for (const raw of patterns) {
    if (typeof raw !== 'string') continue;
    const pattern = normalizeHost(raw);
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(2);
      if (parent !== undefined && suffix !== '' && parent === suffix) return true;
    } else if (pattern !== '' && pattern === host) {
      return true;
    }
  }
  return false;
}
