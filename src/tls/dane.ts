/**
 * DANE for SMTP: matching a server's certificate chain against its DNSSEC-validated TLSA
 * records (RFC 6698, RFC 7671, RFC 7672), the way Postfix does it through OpenSSL's DANE
 * support (`tls_dane.c`, OpenSSL `x509_vfy.c:dane_verify`; POSTFIX-BEHAVIOR.md §1.6).
 *
 * Pure: no I/O, no clock unless `now` is left out. Only `node:crypto`.
 *
 * - **DANE-EE(3)** matches the leaf only. No name check, no expiry check, no chain
 *   (RFC 7672 §3.1.1).
 * - **DANE-TA(2)** matches an issuer: a certificate at depth ≥ 1 of the path built from the
 *   leaf through the presented certificates (never the leaf itself, as in OpenSSL); a full
 *   `2 0 0` certificate from DNS that issued the top of that path; or, last, a bare `2 1 0`
 *   public key from DNS whose signature verifies the top certificate of the path. Then the
 *   path below the trust anchor must verify, issuers must be CAs, the certificates below
 *   the trust anchor must be within their validity period, and the leaf must carry one of
 *   the reference names (RFC 7672 §3.2.2), checked by OpenSSL's `X509_check_host` with
 *   partial-label wildcards disabled, as Postfix sets it. The trust anchor's own dates are
 *   not checked (RFC 5280 trust-anchor semantics; OpenSSL does check a self-issued root's).
 *   A self-signed leaf can only be its own trust anchor through a bare `2 1 0` key, which
 *   verifies its self-signature (as in OpenSSL's `check_dane_pkeys`).
 * - Failures, in the order they are decided: no usable record → `tlsa-invalid`; nothing
 *   matched, broken path or a non-CA issuer → `validation-failure`; a certificate below the
 *   anchor outside its validity → `certificate-expired` (a name problem is added to the
 *   detail); no reference name matched → `certificate-host-mismatch`.
 * - **Digest agility** (RFC 7671 §9, Postfix `tls_dane_digests = sha512 sha256`): for one
 *   usage and selector, SHA-256 records are ignored when a SHA-512 record is present.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { TlsaRecord } from '../routing/resolver.js';

/** RFC 6698 §2.1.1 certificate usages that RFC 7672 lets SMTP use. */
const DANE_TA = 2;
const DANE_EE = 3;
/** RFC 6698 §2.1.2 selectors. */
const SELECTOR_CERT = 0;
const SELECTOR_SPKI = 1;
/** RFC 6698 §2.1.3 matching types. */
const MATCH_FULL = 0;
const MATCH_SHA256 = 1;
const MATCH_SHA512 = 2;
const DIGEST_LENGTH: Readonly<Record<number, number>> = { [MATCH_SHA256]: 32, [MATCH_SHA512]: 64 };

/**
 * Hostile-input bounds: at most this many presented certificates are looked at, and a path
 * from the leaf to a trust anchor is at most this deep. Postfix's `smtp_tls_scert_verifydepth`
 * is 9; real chains are 2–4 certificates.
 */
const MAX_CHAIN = 16;
const MAX_DEPTH = 16;
/** Longest detail string (hostile input can make lists long). */
const MAX_DETAIL = 1000;

export interface DaneCheck {
  /** The peer's chain as presented, leaf first (Node: socket.getPeerCertificate(true) walked via issuerCertificate, each turned into new X509Certificate(raw)). */
  chain: readonly X509Certificate[];
  /** Usable TLSA records (usableTlsa output; verifyDane filters again, so raw records are safe too). */
  tlsa: readonly TlsaRecord[];
  /**
   * Names acceptable for DANE-TA: the TLSA base domain and the MX qname/rname (RFC 7672 §3.2.2),
   * as A-labels. DANE-EE checks no names. A trailing dot is ignored; a leading dot means any
   * subdomain (OpenSSL). No names with a DANE-TA match is `certificate-host-mismatch`.
   */
  names: readonly string[];
  /** For expiry checks (default now). */
  now?: Date;
}

/**
 * `depth` is the matched certificate's position on the path from the leaf (0) through its
 * issuers, which is its index in `chain` when the chain is presented in order (Node's
 * `issuerCertificate` walk is). A trust anchor that the server did not send (a `2 0 0`
 * certificate or a bare `2 1 0` key from DNS) is one above the top certificate of that path;
 * Postfix logs a bare key as "TA public key verified certificate at depth" `depth - 1`.
 */
export type DaneResult =
  | { ok: true; usage: 2 | 3; record: TlsaRecord; depth: number }
  | {
      ok: false;
      resultType: 'tlsa-invalid' | 'certificate-host-mismatch' | 'certificate-expired' | 'validation-failure';
      detail: string;
    };

/**
 * Records Postfix/RFC 7672 can use: usage 2 (DANE-TA) or 3 (DANE-EE), selector 0 (full cert)
 * or 1 (SPKI), matching 0 (exact), 1 (SHA-256), 2 (SHA-512); PKIX usages 0/1 and matching 255
 * are unusable for SMTP (RFC 7672 §3.1.3). Also drops malformed ones, as OpenSSL's
 * `SSL_dane_tlsa_add` does: a digest of the wrong length (32 for 1, 64 for 2), and for
 * matching type 0 data that is not exactly one DER certificate (selector 0) or one DER
 * SubjectPublicKeyInfo that Node can load (selector 1). The records kept are the input
 * objects themselves, in input order.
 */
export function usableTlsa(records: readonly TlsaRecord[]): TlsaRecord[] {
  if (!Array.isArray(records)) return [];
  return records.filter((r) => isUsable(r));
}

/**
 * The RFC 6698 association data of a certificate for a selector/matching pair (exported for
 * tests and tools): selector 0 is the certificate's DER, selector 1 its DER
 * SubjectPublicKeyInfo exactly as encoded in the certificate (what OpenSSL hashes; for the
 * usual RSA and EC keys this equals `cert.publicKey.export({ type: 'spki', format: 'der' })`).
 * Throws RangeError for another selector or matching type.
 */
export function tlsaAssociation(cert: X509Certificate, selector: 0 | 1, matchingType: 0 | 1 | 2): Uint8Array {
  if (selector !== SELECTOR_CERT && selector !== SELECTOR_SPKI) throw new RangeError(`unsupported TLSA selector ${String(selector)}`);
  if (matchingType !== MATCH_FULL && matchingType !== MATCH_SHA256 && matchingType !== MATCH_SHA512)
    throw new RangeError(`unsupported TLSA matching type ${String(matchingType)}`);
  const der = new Uint8Array(cert.raw);
  const selected = selector === SELECTOR_CERT ? der : spkiOf(cert, der);
  return digest(selected, matchingType);
}

/**
 * Checks the chain against the records. DANE-EE first (any usage-3 record matching the leaf
 * wins); then DANE-TA. Never throws: anything malformed is a `validation-failure` (or
 * `tlsa-invalid` when no usable record is left).
 */
export function verifyDane(check: DaneCheck): DaneResult {
  try {
    return verify(check);
  } catch (err) {
    return fail('validation-failure', `internal error while checking the chain: ${errorText(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------

function verify(check: DaneCheck): DaneResult {
  const input = Array.isArray(check?.tlsa) ? check.tlsa : [];
  if (input.length === 0) return fail('tlsa-invalid', 'no TLSA records');
  const usable = usableTlsa(input);
  if (usable.length === 0) return fail('tlsa-invalid', `none of the ${input.length} TLSA records is usable for SMTP (RFC 7672 §3.1.3)`);
  const { records, ignored } = digestAgility(usable);
  const notes: string[] = [];
  if (ignored.length > 0) notes.push(`ignored by digest agility (RFC 7671 §9): ${list(ignored)}`);

  const chainIn: readonly unknown[] = Array.isArray(check.chain) ? check.chain : [];
  const leaf = chainIn[0];
  if (!(leaf instanceof X509Certificate)) return fail('validation-failure', 'the server presented no certificate');
  const leafCert = new Cert(leaf);
  if (leafCert.der === undefined) return fail('validation-failure', 'the server certificate cannot be read');

  // DANE-EE(3): the leaf alone.
  const ee = records.filter((r) => r.usage === DANE_EE);
  for (const r of ee) {
    if (leafCert.matches(r)) return { ok: true, usage: DANE_EE, record: r, depth: 0 };
  }

  // DANE-TA(2).
  const ta = records.filter((r) => r.usage === DANE_TA);
  const tried = ee.length > 0 ? [`DANE-EE ${list(ee)} against the leaf`] : [];
  if (ta.length === 0) return fail('validation-failure', withNotes(`no TLSA record matched: tried ${tried.join('; ')}`, notes));

  const pool: Cert[] = [];
  let malformed = 0;
  for (const c of chainIn.slice(1, MAX_CHAIN)) {
    const cert = c instanceof X509Certificate ? new Cert(c) : undefined;
    if (cert?.der === undefined) malformed++;
    else pool.push(cert);
  }
  if (chainIn.length > MAX_CHAIN) notes.push(`only the first ${MAX_CHAIN} presented certificates were considered`);
  if (malformed > 0) notes.push(`${malformed} unreadable certificate(s) in the presented chain ignored`);
  // Full "2 0 0" certificates from DNS may complete the chain (OpenSSL adds them to the untrusted pool).
  for (const r of ta) {
    if (r.selector !== SELECTOR_CERT || r.matchingType !== MATCH_FULL) continue;
    const cert = certFromDer(r.data);
    if (cert !== undefined) pool.push(new Cert(cert, true));
  }

  const now = check.now instanceof Date && !Number.isNaN(check.now.getTime()) ? check.now.getTime() : Date.now();
  const built = buildPath(leafCert, pool, ta, now);
  notes.push(...built.notes);
  const path = built.path;
  let anchor: { depth: number; record: TlsaRecord; cert?: Cert } | undefined = built.anchor;
  if (anchor === undefined) {
    // Last chance: a bare "2 1 0" key that signed the top of the path (OpenSSL check_dane_pkeys).
    const top = path[path.length - 1] as Cert;
    for (const r of ta) {
      if (r.selector !== SELECTOR_SPKI || r.matchingType !== MATCH_FULL) continue;
      const key = keyFromSpki(r.data);
      if (key !== undefined && top.verifiedBy(key)) {
        anchor = { depth: path.length, record: r };
        break;
      }
    }
  }
  if (anchor === undefined) {
    const issuers =
      path.length === 1
        ? 'no issuer certificate (none presented issued the leaf)'
        : `the issuer certificate${path.length > 2 ? `s at depths 1-${path.length - 1}` : ' at depth 1'}`;
    const bare = ta.filter((r) => r.selector === SELECTOR_SPKI && r.matchingType === MATCH_FULL).length;
    const keys = bare === 0 ? '' : `, and ${bare} bare key(s) against the signature of the certificate at depth ${path.length - 1}`;
    tried.push(`DANE-TA ${list(ta)} against ${issuers}${keys}`);
    return fail('validation-failure', withNotes(`no TLSA record matched: tried ${tried.join('; ')}`, notes));
  }

  // Issuers (including a trust-anchor certificate) must be CAs, as OpenSSL's check_chain_extensions wants.
  for (let d = 1; d < path.length && d <= anchor.depth; d++) {
    const c = path[d] as Cert;
    if (!c.isCa) {
      return fail('validation-failure', withNotes(`DANE-TA ${describe(anchor.record)} matched at depth ${anchor.depth}, but the issuer certificate at depth ${d} is not a CA`, notes));
    }
  }

  // Validity of every certificate below the trust anchor (the anchor itself is trusted as such).
  const dated: string[] = [];
  for (let d = 0; d < anchor.depth && d < path.length; d++) {
    const problem = (path[d] as Cert).validityProblem(now);
    if (problem !== undefined) dated.push(`certificate at depth ${d} ${problem}`);
  }
  const nameProblem = nameMismatch(leaf, Array.isArray(check.names) ? check.names : []);
  const what = anchor.cert === undefined ? 'as a bare public key' : anchor.cert.fromDns ? 'its own certificate' : 'a certificate';
  const matched = `DANE-TA ${describe(anchor.record)} matched ${what} at depth ${anchor.depth}`;
  if (dated.length > 0) {
    return fail('certificate-expired', withNotes(`${matched}, but the ${dated.join(', ')}${nameProblem === undefined ? '' : `; also ${nameProblem}`}`, notes));
  }
  if (nameProblem !== undefined) return fail('certificate-host-mismatch', withNotes(`${matched}, but ${nameProblem}`, notes));
  return { ok: true, usage: DANE_TA, record: anchor.record, depth: anchor.depth };
}

/**
 * Builds the path leaf → issuer → … through `pool`, stopping at the first certificate at
 * depth ≥ 1 that matches a DANE-TA record, at a self-issued certificate, or when no issuer
 * is found. An issuer must name-and-key-identifier match (`checkIssued`, which also honours
 * keyUsage) and its key must verify the signature. Among several, prefer one that matches a
 * record, then one within its validity period (OpenSSL `find_issuer`), then presented order.
 */
function buildPath(
  leaf: Cert,
  pool: readonly Cert[],
  ta: readonly TlsaRecord[],
  now: number,
): { path: Cert[]; anchor?: { depth: number; record: TlsaRecord; cert: Cert }; notes: string[] } {
  const path: Cert[] = [leaf];
  const notes: string[] = [];
  for (;;) {
    const top = path[path.length - 1] as Cert;
    if (path.length > 1) {
      const record = ta.find((r) => top.matches(r));
      if (record !== undefined) return { path, anchor: { depth: path.length - 1, record, cert: top }, notes };
    }
    if (top.selfIssued) break;
    if (path.length > MAX_DEPTH) {
      notes.push(`path longer than ${MAX_DEPTH} certificates`);
      break;
    }
    let named = false;
    const candidates: Cert[] = [];
    for (const c of pool) {
      if (path.some((p) => p.same(c)) || !top.issuedBy(c)) continue;
      named = true;
      if (top.signedBy(c)) candidates.push(c);
    }
    if (candidates.length === 0) {
      if (named) notes.push(`the signature of the certificate at depth ${path.length - 1} does not verify with its issuer's key`);
      break;
    }
    const next =
      candidates.find((c) => ta.some((r) => c.matches(r))) ??
      candidates.find((c) => c.validityProblem(now) === undefined) ??
      (candidates[0] as Cert);
    path.push(next);
  }
  return { path, notes };
}

/** RFC 7671 §9 as OpenSSL does it: per (usage, selector), SHA-512 present → SHA-256 ignored. */
function digestAgility(records: readonly TlsaRecord[]): { records: TlsaRecord[]; ignored: TlsaRecord[] } {
  const strong = new Set(records.filter((r) => r.matchingType === MATCH_SHA512).map((r) => `${r.usage} ${r.selector}`));
  const kept: TlsaRecord[] = [];
  const ignored: TlsaRecord[] = [];
  for (const r of records) {
    if (r.matchingType === MATCH_SHA256 && strong.has(`${r.usage} ${r.selector}`)) ignored.push(r);
    else kept.push(r);
  }
  return { records: kept, ignored };
}

/**
 * OpenSSL `X509_check_host` via Node, with Postfix's flags: DNS-IDs from subjectAltName, the
 * subject CN only without a DNS SAN, case-insensitive, `*` only as a whole left-most label
 * (no partial-label wildcards, one label only). A trailing dot on a reference name is dropped;
 * a leading dot means "any subdomain" (OpenSSL semantics). Returns why nothing matched.
 */
function nameMismatch(leaf: X509Certificate, names: readonly unknown[]): string | undefined {
  const refs = names.filter((n): n is string => typeof n === 'string' && n.length > 0).map((n) => (n.length > 1 && n.endsWith('.') ? n.slice(0, -1) : n));
  if (refs.length === 0) return 'there is no reference name to check (DANE-TA needs the TLSA base domain or the MX name)';
  for (const name of refs) {
    try {
      if (leaf.checkHost(name, { subject: 'default', wildcards: true, partialWildcards: false, multiLabelWildcards: false, singleLabelSubdomains: false }) !== undefined) {
        return undefined;
      }
    } catch {
      // An invalid reference name (NUL, …) matches nothing.
    }
  }
  return `the server certificate matches none of ${clip(refs.map((n) => JSON.stringify(n)).join(', '), 300)}`;
}

function isUsable(r: unknown): r is TlsaRecord {
  if (typeof r !== 'object' || r === null) return false;
  const { usage, selector, matchingType, data } = r as Partial<TlsaRecord>;
  if (usage !== DANE_TA && usage !== DANE_EE) return false;
  if (selector !== SELECTOR_CERT && selector !== SELECTOR_SPKI) return false;
  if (!(data instanceof Uint8Array)) return false;
  switch (matchingType) {
    case MATCH_SHA256:
    case MATCH_SHA512:
      return data.length === DIGEST_LENGTH[matchingType];
    case MATCH_FULL:
      return selector === SELECTOR_CERT ? certFromDer(data) !== undefined : isSpki(data);
    default:
      return false;
  }
}

/** A presented (or DNS-supplied) certificate with its lazily computed, never-throwing facts. */
class Cert {
  readonly der: Uint8Array | undefined;
  readonly #assoc = new Map<string, Uint8Array | undefined>();
  #parsed: ParsedCert | null | undefined;
  #selfIssued: boolean | undefined;
  #key: KeyObject | null | undefined;

  constructor(
    readonly x509: X509Certificate,
    readonly fromDns = false,
  ) {
    this.der = attempt(() => new Uint8Array(x509.raw));
  }

  get parsed(): ParsedCert | undefined {
    if (this.#parsed === undefined) this.#parsed = (this.der && parseCertificate(this.der)) ?? null;
    return this.#parsed ?? undefined;
  }

  get selfIssued(): boolean {
    this.#selfIssued ??= attempt(() => this.x509.checkIssued(this.x509)) === true;
    return this.#selfIssued;
  }

  get isCa(): boolean {
    return attempt(() => this.x509.ca) === true;
  }

  get key(): KeyObject | undefined {
    if (this.#key === undefined) this.#key = attempt(() => this.x509.publicKey) ?? null;
    return this.#key ?? undefined;
  }

  same(other: Cert): boolean {
    return this === other || (this.der !== undefined && other.der !== undefined && bytesEqual(this.der, other.der));
  }

  /** Name/AKID/keyUsage check (X509_check_issued), no signature. */
  issuedBy(issuer: Cert): boolean {
    return attempt(() => this.x509.checkIssued(issuer.x509)) === true;
  }

  signedBy(issuer: Cert): boolean {
    const key = issuer.key;
    return key !== undefined && this.verifiedBy(key);
  }

  verifiedBy(key: KeyObject): boolean {
    return attempt(() => this.x509.verify(key)) === true;
  }

  association(selector: number, matchingType: number): Uint8Array | undefined {
    const k = `${selector} ${matchingType}`;
    if (!this.#assoc.has(k)) {
      const selected = selector === SELECTOR_CERT ? this.der : (this.parsed?.spki ?? attempt(() => exportSpki(this.x509)));
      this.#assoc.set(k, selected === undefined ? undefined : attempt(() => digest(selected, matchingType)));
    }
    return this.#assoc.get(k);
  }

  matches(r: TlsaRecord): boolean {
    const a = this.association(r.selector, r.matchingType);
    return a !== undefined && bytesEqual(a, r.data);
  }

  /** OpenSSL X509_cmp_time: valid when notBefore ≤ now < notAfter. */
  validityProblem(now: number): string | undefined {
    const notBefore = this.parsed?.notBefore ?? attempt(() => Date.parse(this.x509.validFrom));
    const notAfter = this.parsed?.notAfter ?? attempt(() => Date.parse(this.x509.validTo));
    if (notBefore === undefined || notAfter === undefined || Number.isNaN(notBefore) || Number.isNaN(notAfter)) return 'has an unreadable validity period';
    if (now < notBefore) return `is not yet valid (notBefore ${new Date(notBefore).toISOString()})`;
    if (now >= notAfter) return `has expired (notAfter ${new Date(notAfter).toISOString()})`;
    return undefined;
  }
}

function digest(data: Uint8Array, matchingType: number): Uint8Array {
  switch (matchingType) {
    case MATCH_FULL:
      return data;
    case MATCH_SHA256:
      return new Uint8Array(createHash('sha256').update(data).digest());
    case MATCH_SHA512:
      return new Uint8Array(createHash('sha512').update(data).digest());
    default:
      throw new RangeError(`unsupported TLSA matching type ${matchingType}`);
  }
}

function spkiOf(cert: X509Certificate, der: Uint8Array): Uint8Array {
  return parseCertificate(der)?.spki ?? exportSpki(cert);
}

function exportSpki(cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.publicKey.export({ type: 'spki', format: 'der' }));
}

/** Exactly one DER certificate, nothing trailing (OpenSSL d2i_X509 with the whole length). */
function certFromDer(data: Uint8Array): X509Certificate | undefined {
  if (data.length === 0) return undefined;
  const outer = readTlv(data, 0, data.length);
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== data.length) return undefined;
  const cert = attempt(() => new X509Certificate(data));
  if (cert === undefined) return undefined;
  const raw = attempt(() => new Uint8Array(cert.raw));
  return raw !== undefined && bytesEqual(raw, data) ? cert : undefined;
}

/** Exactly one DER SubjectPublicKeyInfo that Node can load (OpenSSL d2i_PUBKEY). */
function isSpki(data: Uint8Array): boolean {
  return keyFromSpki(data) !== undefined;
}

function keyFromSpki(data: Uint8Array): KeyObject | undefined {
  if (data.length === 0) return undefined;
  const outer = readTlv(data, 0, data.length);
  if (outer === undefined || outer.tag !== 0x30 || outer.end !== data.length) return undefined;
  return attempt(() => createPublicKey({ key: Buffer.from(data), format: 'der', type: 'spki' }));
}

// --- minimal DER reading: the SubjectPublicKeyInfo bytes and the validity of a certificate ---

interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the contents. */
  body: number;
  /** Offset after the element. */
  end: number;
}

interface ParsedCert {
  spki: Uint8Array;
  notBefore: number;
  notAfter: number;
}

function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv | undefined {
  if (pos + 2 > limit) return undefined;
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: not in certificates
  let len = buf[pos + 1] as number;
  let body = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || body + n > limit) return undefined; // indefinite or absurd
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[body + i] as number);
    body += n;
  }
  const end = body + len;
  return end > limit ? undefined : { tag, start: pos, body, end };
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
 * signature, issuer, validity SEQUENCE { notBefore, notAfter }, subject, subjectPublicKeyInfo, … } … }
 */
function parseCertificate(der: Uint8Array): ParsedCert | undefined {
  const cert = readTlv(der, 0, der.length);
  if (cert?.tag !== 0x30) return undefined;
  const tbs = readTlv(der, cert.body, cert.end);
  if (tbs?.tag !== 0x30) return undefined;
  const fields: Tlv[] = [];
  for (let pos = tbs.body; pos < tbs.end && fields.length < 7; ) {
    const f = readTlv(der, pos, tbs.end);
    if (f === undefined) return undefined;
    fields.push(f);
    pos = f.end;
  }
  if (fields[0]?.tag === 0xa0) fields.shift();
  const [serial, , , validity, , spki] = fields;
  if (serial?.tag !== 0x02 || validity?.tag !== 0x30 || spki?.tag !== 0x30) return undefined;
  const nb = readTlv(der, validity.body, validity.end);
  const na = nb && readTlv(der, nb.end, validity.end);
  const notBefore = nb && parseTime(der, nb);
  const notAfter = na && parseTime(der, na);
  if (notBefore === undefined || notAfter === undefined) return undefined;
  return { spki: der.slice(spki.start, spki.end), notBefore, notAfter };
}

/** UTCTime YYMMDDHHMMSSZ (YY < 50 → 20YY, RFC 5280 §4.1.2.5.1) or GeneralizedTime YYYYMMDDHHMMSSZ. */
function parseTime(der: Uint8Array, t: Tlv): number | undefined {
  if (t.end - t.body > 32) return undefined;
  const s = String.fromCharCode(...der.subarray(t.body, t.end));
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
  } else if (t.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    return undefined;
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return undefined;
  return Date.UTC(year, mo - 1, d, h, mi, se);
}

// --- small helpers ---

function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(r: TlsaRecord): string {
  const hex = Buffer.from(r.data.subarray(0, 8)).toString('hex');
  return `${r.usage} ${r.selector} ${r.matchingType} ${hex}${r.data.length > 8 ? '…' : ''}`;
}

function list(records: readonly TlsaRecord[]): string {
  const shown = records.slice(0, 8).map(describe).join(', ');
  return records.length > 8 ? `${shown} and ${records.length - 8} more` : shown;
}

function withNotes(text: string, notes: readonly string[]): string {
  return clip(notes.length === 0 ? text : `${text} (${notes.join('; ')})`, MAX_DETAIL);
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function errorText(err: unknown): string {
  return clip(err instanceof Error ? err.message : String(err), 200);
}

function fail(resultType: Extract<DaneResult, { ok: false }>['resultType'], detail: string): DaneResult {
  return { ok: false, resultType, detail: clip(detail, MAX_DETAIL) };
}
