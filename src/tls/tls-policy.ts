/**
 * `evaluateTlsPolicy()`: what one connection must do about TLS, decided the way Postfix's
 * smtp_tls_policy.c, tls_level.c and tls_dane.c decide it (POSTFIX-BEHAVIOR.md §1.6; TLS-1..25),
 * plus MTA-STS (RFC 8461) and REQUIRETLS (RFC 8689). Pure: DNS answers (TLSA, DNSSEC status)
 * and the MTA-STS policy come in as inputs.
 *
 * A policy that is malformed never weakens security: it skips the server with 4.7.5
 * "client TLS configuration problem" (Postfix: level invalid).
 */
import type { TlsaRecord } from '../routing/resolver.js';
import { normalizeFingerprint, type FingerprintDigest } from './fingerprint.js';
import { usableTlsa } from './dane.js';
import { mxMatchesPolicy, type MtaStsPolicy } from './mta-sts.js';

export type TlsLevel = 'none' | 'may' | 'encrypt' | 'dane' | 'dane-only' | 'fingerprint' | 'verify' | 'secure';

/** The TLS policy a caller gives for a next hop (API.md `TlsPolicy`). */
export interface TlsPolicy {
  /** Postfix `smtp_tls_security_level` (default `may`, Postfix 3.11+). */
  level?: TlsLevel;
  /** PEM trust anchors for verify/secure (Postfix `smtp_tls_CAfile`); default Node's root store. */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** Client certificate and key (PEM), for servers that ask for one (`smtp_tls_chain_files`). */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  /** SNI (Postfix `smtp_tls_servername`): `hostname`, `nexthop` or a DNS name; default none. */
  servername?: 'hostname' | 'nexthop' | string;
  /** `smtp_tls_verify_cert_match` (default `['hostname']`). */
  verifyCertMatch?: string[];
  /** `smtp_tls_secure_cert_match` (default `['nexthop', 'dot-nexthop']`; LMTP `['nexthop']`). */
  secureCertMatch?: string[];
  /** `smtp_tls_fingerprint_cert_match`: digests of the certificate or its public key. */
  fingerprints?: string[];
  /** `smtp_tls_fingerprint_digest` (sha256). */
  fingerprintDigest?: FingerprintDigest;
  /** `smtp_tls_wrappermode`: TLS before the greeting (port 465); needs level encrypt or higher. */
  wrapperMode?: boolean;
  /** Postfix protocol syntax (`>=TLSv1.2`, `!TLSv1, !TLSv1.1`); default Node's (TLS 1.2 and up). */
  protocols?: string;
  /** OpenSSL cipher list (`smtp_tls_ciphers` as a list, not a grade). */
  ciphers?: string;
  /** `smtp_tls_dane_insecure_mx_policy` (dane): what `dane` does when the MX lookup is not DNSSEC-secure. */
  daneInsecureMxPolicy?: 'dane' | 'may' | 'encrypt';
  /** RFC 8461 MTA-STS: `true` or options (see mta-sts.ts). */
  mtaSts?: boolean | Record<string, unknown>;
  /** `smtp_tls_block_early_mail_reply` (mailwire default true, CVE-2009-3555). */
  blockEarlyMailReply?: boolean;
  /** `smtp_tls_connection_reuse` / policy `connection_reuse` (pool issue). */
  connectionReuse?: boolean;
}

export interface TlsPolicyContext {
  protocol: 'smtp' | 'lmtp';
  /** The next hop as written (DEST-13), for messages. */
  nexthop: string;
  /** The next-hop domain: no prefix, brackets or port (LMTP unix: our own name) (DEST-14). */
  nexthopDomain: string;
  /** The server's host name: the MX name, or the host of `[host]` (then equal to the next hop). */
  host: string;
  port: number;
  unix: boolean;
  dnsSupportLevel: 'disabled' | 'enabled' | 'dnssec';
  /** The MX answer (or a bracketed next hop: statically secure) was DNSSEC-validated. */
  mxSecure: boolean;
  /**
   * The TLSA lookup for `_port._tcp.host`, when the level needs it: records with whether the
   * answer was validated, `error` for a lookup failure (SERVFAIL, bogus), or undefined when
   * no lookup was made (host not signed).
   */
  tlsa?: { records: readonly TlsaRecord[]; authenticated: boolean; base: string } | { error: string };
  /** The MTA-STS policy of the next-hop domain, when there is one (enforce or testing). */
  sts?: MtaStsPolicy;
}

export type TlsCheck =
  | { kind: 'none' }
  /** PKIX chain against `ca` (or Node's roots) and one of `names` (RFC 6125 rules, cert-match.ts). */
  | { kind: 'pkix'; names: string[] }
  | { kind: 'fingerprint'; values: string[]; digest: FingerprintDigest }
  /** RFC 7672: usable TLSA records; `names` for DANE-TA; `halfDane`: enforced but not reported verified. */
  | { kind: 'dane'; tlsa: TlsaRecord[]; names: string[]; halfDane: boolean };

export type TlsDecision =
  | {
      ok: true;
      /** The level asked for, and the level actually applied (dane may fall back: TLS-24). */
      requested: TlsLevel;
      level: Exclude<TlsLevel, 'dane-only'>;
      startTls: 'never' | 'opportunistic' | 'required';
      wrapperMode: boolean;
      check: TlsCheck;
      servername?: string;
      minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
      maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
      ciphers?: string;
      ca?: TlsPolicy['ca'];
      cert?: string | Uint8Array;
      key?: string | Uint8Array;
      /** MTA-STS in testing mode: deliver whatever happens, report what enforce would have refused. */
      stsTesting?: { check: TlsCheck };
      /** MTA-STS decided this check (for RFC 8460 reporting). */
      stsEnforced: boolean;
      blockEarlyMailReply: boolean;
      warnings: string[];
    }
  | {
      ok: false;
      /** Skip this server; 4.7.5 (Postfix: invalid policy, TLSA lookup error, dane-only refusal). */
      status: '4.7.5';
      reason: string;
      tlsFailure?: { resultType: 'tlsa-invalid' | 'dnssec-invalid' | 'sts-policy-invalid' | 'validation-failure'; detail: string };
      warnings: string[];
    };

const VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
type Version = (typeof VERSIONS)[number];

/** Postfix protocol syntax → Node min/max versions; undefined when malformed. */
export function parseProtocols(spec: string): { minVersion?: Version; maxVersion?: Version } | undefined {
  const words = spec.split(/[\s,:]+/).filter((w) => w.length > 0);
  let lo = 0;
  let hi = VERSIONS.length - 1;
  const excluded = new Set<number>();
  const idx = (v: string): number => {
    if (/^SSLv[23]$/i.test(v)) return -1; // not supported by Node at all
    const i = VERSIONS.findIndex((x) => x.toLowerCase() === v.toLowerCase());
    if (i >= 0) return i;
    const hex: Record<string, number> = { '0x0301': 0, '0x0302': 1, '0x0303': 2, '0x0304': 3 };
    return hex[v.toLowerCase()] ?? -2;
  };
  for (const w of words) {
    let m: RegExpExecArray | null;
    if ((m = /^>=(.+)$/.exec(w))) {
      const i = idx(m[1]!);
      if (i === -2) return undefined;
      lo = Math.max(lo, Math.max(i, 0));
    } else if ((m = /^<=(.+)$/.exec(w))) {
      const i = idx(m[1]!);
      if (i < 0) return undefined;
      hi = Math.min(hi, i);
    } else if ((m = /^!(.+)$/.exec(w))) {
      const i = idx(m[1]!);
      if (i === -2) return undefined;
      if (i >= 0) excluded.add(i);
    } else {
      // A bare list of versions (old syntax): exactly those.
      const i = idx(w);
      if (i === -2) return undefined;
    }
  }
  while (excluded.has(lo) && lo <= hi) lo++;
  while (excluded.has(hi) && hi >= lo) hi--;
  if (lo > hi) return undefined;
  const out: { minVersion?: Version; maxVersion?: Version } = {};
  if (lo > 0) out.minVersion = VERSIONS[lo]!;
  if (hi < VERSIONS.length - 1) out.maxVersion = VERSIONS[hi]!;
  return out;
}

/** Expand Postfix match keywords: hostname, nexthop, dot-nexthop; literal names as given. */
function expandMatch(list: readonly string[], ctx: TlsPolicyContext): string[] | undefined {
  const out: string[] = [];
  for (const raw of list) {
    const w = raw.trim().toLowerCase();
    if (w === 'hostname') out.push(ctx.host.toLowerCase());
    else if (w === 'nexthop') out.push(ctx.nexthopDomain.toLowerCase());
    else if (w === 'dot-nexthop') out.push('.' + ctx.nexthopDomain.toLowerCase());
    else if (/^\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(w)) out.push(w);
    else return undefined;
  }
  return out;
}

function invalid(reason: string, warnings: string[]): TlsDecision {
  return { ok: false, status: '4.7.5', reason: `client TLS configuration problem: ${reason}`, warnings };
}

const LEVELS: readonly TlsLevel[] = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure'];

/** Decide what one connection must do about TLS. */
export function evaluateTlsPolicy(policy: TlsPolicy, ctx: TlsPolicyContext): TlsDecision {
  const warnings: string[] = [];
  const requested: TlsLevel = policy.level ?? 'may';
  if (!LEVELS.includes(requested)) return invalid(`unknown TLS security level "${String(requested)}"`, warnings);

  // Protocol floor and ciphers (TLS-14, TLS-15).
  let versions: { minVersion?: Version; maxVersion?: Version } = {};
  if (policy.protocols !== undefined) {
    const v = parseProtocols(policy.protocols);
    if (!v) return invalid(`bad protocols "${policy.protocols}"`, warnings);
    versions = v;
  }
  // SNI (TLS-20): none by default; an invalid literal name defers.
  let servername: string | undefined;
  if (policy.servername !== undefined) {
    if (policy.servername === 'hostname') servername = ctx.host;
    else if (policy.servername === 'nexthop') servername = ctx.nexthopDomain;
    else if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(policy.servername)) servername = policy.servername;
    else return invalid(`bad servername "${policy.servername}"`, warnings);
  }
  let level: TlsLevel = requested;
  // DEST-5: over a unix socket, may becomes none.
  if (ctx.unix && level === 'may') level = 'none';

  const base = {
    requested,
    ...versions,
    ...(policy.ciphers !== undefined ? { ciphers: policy.ciphers } : {}),
    ...(policy.ca !== undefined ? { ca: policy.ca } : {}),
    ...(policy.cert !== undefined ? { cert: policy.cert } : {}),
    ...(policy.key !== undefined ? { key: policy.key } : {}),
    blockEarlyMailReply: policy.blockEarlyMailReply ?? true,
    warnings,
  };
  if ((policy.cert === undefined) !== (policy.key === undefined)) return invalid('cert and key must be given together', warnings);

  // DANE (TLS-6, TLS-7, TLS-25; POSTFIX-BEHAVIOR.md §1.6 table).
  let check: TlsCheck = { kind: 'none' };
  let daneServername: string | undefined;
  if (level === 'dane' || level === 'dane-only') {
    const only = level === 'dane-only';
    if (ctx.dnsSupportLevel !== 'dnssec') {
      if (only) return invalid("dane-only needs dnsSupportLevel 'dnssec'", warnings);
      warnings.push("TLS level dane needs dnsSupportLevel 'dnssec'; using may");
      level = 'may';
    } else if (!ctx.mxSecure && (policy.daneInsecureMxPolicy ?? 'dane') !== 'dane') {
      // Insecure MX with a policy below dane: may / encrypt (dane-only refuses).
      if (only) return { ok: false, status: '4.7.5', reason: `non DNSSEC destination ${ctx.nexthop}: dane-only refuses it`, tlsFailure: { resultType: 'dnssec-invalid', detail: 'MX lookup not DNSSEC-validated' }, warnings };
      level = policy.daneInsecureMxPolicy === 'encrypt' ? 'encrypt' : 'may';
    } else if (ctx.tlsa && 'error' in ctx.tlsa) {
      return { ok: false, status: '4.7.5', reason: `TLSA lookup error for ${ctx.host}:${ctx.port}: ${ctx.tlsa.error}`, tlsFailure: { resultType: 'dnssec-invalid', detail: ctx.tlsa.error }, warnings };
    } else if (!ctx.tlsa || !ctx.tlsa.authenticated || ctx.tlsa.records.length === 0) {
      if (only) {
        return { ok: false, status: '4.7.5', reason: `no TLSA records found for ${ctx.host}:${ctx.port}: dane-only refuses the server`, tlsFailure: { resultType: 'tlsa-invalid', detail: 'no DNSSEC-validated TLSA records' }, warnings };
      }
      level = 'may'; // no validated TLSA: opportunistic
    } else {
      const usable = usableTlsa(ctx.tlsa.records);
      if (usable.length === 0) {
        if (only) return invalid(`TLSA records for ${ctx.host} are all unusable`, warnings);
        level = 'encrypt'; // TLSA present but none usable: encrypt
      } else {
        const names = [...new Set([ctx.tlsa.base.toLowerCase(), ctx.host.toLowerCase()])];
        check = { kind: 'dane', tlsa: usable, names, halfDane: !ctx.mxSecure };
        level = 'dane';
        daneServername = ctx.tlsa.base; // SNI is the TLSA base domain (RFC 7672 §8.1)
      }
    }
  }

  if (level === 'fingerprint') {
    const digest = policy.fingerprintDigest ?? 'sha256';
    if (!['sha256', 'sha1', 'md5'].includes(digest)) return invalid(`bad fingerprintDigest "${digest}"`, warnings);
    const values = (policy.fingerprints ?? []).map((f) => normalizeFingerprint(f, digest));
    if (values.length === 0) return invalid('level fingerprint without fingerprints', warnings);
    if (values.some((v) => v === undefined)) return invalid(`malformed ${digest} fingerprint`, warnings);
    check = { kind: 'fingerprint', values: values as string[], digest };
  } else if (level === 'verify' || level === 'secure') {
    const list = level === 'verify' ? (policy.verifyCertMatch ?? ['hostname']) : (policy.secureCertMatch ?? (ctx.protocol === 'lmtp' ? ['nexthop'] : ['nexthop', 'dot-nexthop']));
    const names = expandMatch(list, ctx);
    if (!names || names.length === 0) return invalid(`bad certificate match list "${list.join(' ')}"`, warnings);
    check = { kind: 'pkix', names };
  }

  // MTA-STS (RFC 8461 §4-5): enforce = MX must match a pattern and the certificate must be
  // PKIX-valid for the MX name with TLS 1.2+; DANE with usable TLSA takes precedence (§2).
  let stsEnforced = false;
  let stsTesting: { check: TlsCheck } | undefined;
  if (ctx.sts && ctx.sts.mode !== 'none' && check.kind !== 'dane') {
    const matches = mxMatchesPolicy(ctx.host, ctx.sts.mx);
    const stsCheck: TlsCheck = { kind: 'pkix', names: [ctx.host.toLowerCase()] };
    if (ctx.sts.mode === 'enforce') {
      if (!matches) {
        return { ok: false, status: '4.7.5', reason: `MX host ${ctx.host} is not authorized by the MTA-STS policy of ${ctx.nexthopDomain}`, tlsFailure: { resultType: 'validation-failure', detail: 'MX host does not match the MTA-STS policy' }, warnings };
      }
      if (level === 'none' || level === 'may' || level === 'encrypt') {
        check = stsCheck;
        level = 'verify';
        stsEnforced = true;
        servername ??= ctx.host;
        if (!versions.minVersion || VERSIONS.indexOf(versions.minVersion) < 2) base.minVersion = 'TLSv1.2';
      }
    } else {
      stsTesting = { check: stsCheck };
      if (!matches) warnings.push(`MX host ${ctx.host} does not match the MTA-STS policy of ${ctx.nexthopDomain} (testing mode)`);
    }
  }

  // Wrapper mode needs encrypt or higher (TLS-21); below it, this address is skipped.
  const wrapperMode = policy.wrapperMode === true;
  if (wrapperMode && (level === 'none' || level === 'may')) {
    return { ok: false, status: '4.7.5', reason: `TLS wrapper mode needs TLS level encrypt or higher (level is ${level})`, warnings };
  }
  const startTls = level === 'none' ? 'never' : level === 'may' ? 'opportunistic' : 'required';
  const sni = daneServername ?? servername;
  return {
    ok: true,
    ...base,
    level: level as Exclude<TlsLevel, 'dane-only'>,
    startTls: wrapperMode ? 'never' : startTls,
    wrapperMode,
    check,
    ...(sni !== undefined ? { servername: sni } : {}),
    ...(stsTesting ? { stsTesting } : {}),
    stsEnforced,
  };
}
