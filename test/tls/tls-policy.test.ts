import { describe, expect, it } from 'vitest';
import { X509Certificate, createHash } from 'node:crypto';
import { evaluateTlsPolicy, parseProtocols, type TlsPolicyContext } from '../../src/tls/tls-policy.js';
import { certificateNames, matchCertificate, nameMatches } from '../../src/tls/cert-match.js';
import { certificateFingerprints, matchFingerprint, normalizeFingerprint } from '../../src/tls/fingerprint.js';
import { testCertificate } from '../../src/testing/index.js';

const ctx = (extra: Partial<TlsPolicyContext> = {}): TlsPolicyContext => ({
  protocol: 'smtp',
  nexthop: 'example.org',
  nexthopDomain: 'example.org',
  host: 'mx1.example.org',
  port: 25,
  unix: false,
  dnsSupportLevel: 'enabled',
  mxSecure: false,
  ...extra,
});
const tlsa311 = { usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(32).fill(7) };

describe('evaluateTlsPolicy: levels (TLS-1..10)', () => {
  it('default may: opportunistic, no check, no SNI', () => {
    const d = evaluateTlsPolicy({}, ctx());
    expect(d).toMatchObject({ ok: true, requested: 'may', level: 'may', startTls: 'opportunistic', check: { kind: 'none' } });
    expect(d.ok && d.servername).toBeUndefined();
  });
  it('none never starts TLS; may over a unix socket becomes none (DEST-5)', () => {
    expect(evaluateTlsPolicy({ level: 'none' }, ctx())).toMatchObject({ startTls: 'never' });
    expect(evaluateTlsPolicy({}, ctx({ unix: true }))).toMatchObject({ level: 'none', startTls: 'never' });
  });
  it('encrypt requires TLS without a check', () => {
    expect(evaluateTlsPolicy({ level: 'encrypt' }, ctx())).toMatchObject({ startTls: 'required', check: { kind: 'none' } });
  });
  it('verify matches hostname by default; secure matches nexthop and dot-nexthop (LMTP: nexthop)', () => {
    expect(evaluateTlsPolicy({ level: 'verify' }, ctx())).toMatchObject({ check: { kind: 'pkix', names: ['mx1.example.org'] } });
    expect(evaluateTlsPolicy({ level: 'secure' }, ctx())).toMatchObject({ check: { kind: 'pkix', names: ['example.org', '.example.org'] } });
    expect(evaluateTlsPolicy({ level: 'secure' }, ctx({ protocol: 'lmtp' }))).toMatchObject({ check: { kind: 'pkix', names: ['example.org'] } });
    expect(evaluateTlsPolicy({ level: 'verify', verifyCertMatch: ['nexthop', '.example.net', 'mail.example.com'] }, ctx())).toMatchObject({
      check: { names: ['example.org', '.example.net', 'mail.example.com'] },
    });
  });
  it('fingerprint: values normalized; none given or malformed is a configuration problem (4.7.5)', () => {
    const fp = 'AB:'.repeat(31) + 'AB';
    expect(evaluateTlsPolicy({ level: 'fingerprint', fingerprints: [fp] }, ctx())).toMatchObject({ check: { kind: 'fingerprint', values: ['ab'.repeat(32)], digest: 'sha256' } });
    expect(evaluateTlsPolicy({ level: 'fingerprint' }, ctx())).toMatchObject({ ok: false, status: '4.7.5' });
    expect(evaluateTlsPolicy({ level: 'fingerprint', fingerprints: ['xyz'] }, ctx())).toMatchObject({ ok: false, reason: /client TLS configuration problem/ });
    expect(evaluateTlsPolicy({ level: 'fingerprint', fingerprintDigest: 'md5', fingerprints: ['00'.repeat(16)] }, ctx())).toMatchObject({ ok: true });
  });
  it('a malformed policy never weakens security: it skips the server with 4.7.5', () => {
    expect(evaluateTlsPolicy({ level: 'verify', verifyCertMatch: ['bad name!'] }, ctx())).toMatchObject({ ok: false, status: '4.7.5' });
    expect(evaluateTlsPolicy({ level: 'bogus' as never }, ctx())).toMatchObject({ ok: false });
    expect(evaluateTlsPolicy({ protocols: '>=TLSv9' }, ctx())).toMatchObject({ ok: false });
    expect(evaluateTlsPolicy({ servername: 'bad name' }, ctx())).toMatchObject({ ok: false });
    expect(evaluateTlsPolicy({ level: 'encrypt', cert: 'x' }, ctx())).toMatchObject({ ok: false });
  });
  it('servername: hostname, nexthop or a literal (TLS-20)', () => {
    expect(evaluateTlsPolicy({ servername: 'hostname' }, ctx())).toMatchObject({ servername: 'mx1.example.org' });
    expect(evaluateTlsPolicy({ servername: 'nexthop' }, ctx())).toMatchObject({ servername: 'example.org' });
    expect(evaluateTlsPolicy({ servername: 'sni.example' }, ctx())).toMatchObject({ servername: 'sni.example' });
  });
  it('wrapper mode needs encrypt or higher (TLS-21)', () => {
    expect(evaluateTlsPolicy({ level: 'encrypt', wrapperMode: true }, ctx())).toMatchObject({ ok: true, wrapperMode: true, startTls: 'never' });
    expect(evaluateTlsPolicy({ level: 'may', wrapperMode: true }, ctx())).toMatchObject({ ok: false, status: '4.7.5' });
  });
  it('protocols in Postfix syntax (TLS-14)', () => {
    expect(parseProtocols('>=TLSv1.2')).toEqual({ minVersion: 'TLSv1.2' });
    expect(parseProtocols('!SSLv2, !SSLv3, !TLSv1, !TLSv1.1')).toEqual({ minVersion: 'TLSv1.2' });
    expect(parseProtocols('<=TLSv1.2')).toEqual({ maxVersion: 'TLSv1.2' });
    expect(parseProtocols('>=0x0304')).toEqual({ minVersion: 'TLSv1.3' });
    expect(parseProtocols('>=TLSv7')).toBeUndefined();
  });
});

describe('evaluateTlsPolicy: DANE (TLS-6, TLS-7, POSTFIX-BEHAVIOR.md §1.6)', () => {
  const dnssec = { dnsSupportLevel: 'dnssec' as const, mxSecure: true };
  it('usable validated TLSA: dane check, SNI = TLSA base domain', () => {
    const d = evaluateTlsPolicy({ level: 'dane' }, ctx({ ...dnssec, tlsa: { records: [tlsa311], authenticated: true, base: 'mx1.example.org' } }));
    expect(d).toMatchObject({ ok: true, level: 'dane', startTls: 'required', servername: 'mx1.example.org', check: { kind: 'dane', halfDane: false } });
  });
  it('no validated TLSA: dane acts as may, dane-only refuses', () => {
    const c = ctx({ ...dnssec, tlsa: { records: [], authenticated: false, base: 'mx1.example.org' } });
    expect(evaluateTlsPolicy({ level: 'dane' }, c)).toMatchObject({ ok: true, level: 'may' });
    expect(evaluateTlsPolicy({ level: 'dane-only' }, c)).toMatchObject({ ok: false, status: '4.7.5', tlsFailure: { resultType: 'tlsa-invalid' } });
    expect(evaluateTlsPolicy({ level: 'dane' }, ctx(dnssec))).toMatchObject({ level: 'may' }); // host not signed: no lookup
  });
  it('TLSA present but none usable: encrypt; dane-only: invalid', () => {
    const c = ctx({ ...dnssec, tlsa: { records: [{ usage: 1, selector: 1, matchingType: 1, data: new Uint8Array(32) }], authenticated: true, base: 'mx1.example.org' } });
    expect(evaluateTlsPolicy({ level: 'dane' }, c)).toMatchObject({ ok: true, level: 'encrypt' });
    expect(evaluateTlsPolicy({ level: 'dane-only' }, c)).toMatchObject({ ok: false });
  });
  it('a TLSA lookup error defers (both)', () => {
    const c = ctx({ ...dnssec, tlsa: { error: 'ESERVFAIL' } });
    expect(evaluateTlsPolicy({ level: 'dane' }, c)).toMatchObject({ ok: false, status: '4.7.5', reason: /TLSA lookup error/ });
    expect(evaluateTlsPolicy({ level: 'dane-only' }, c)).toMatchObject({ ok: false });
  });
  it('insecure MX with a secure host TLSA: half-DANE (enforced, not reported verified)', () => {
    const d = evaluateTlsPolicy({ level: 'dane' }, ctx({ dnsSupportLevel: 'dnssec', mxSecure: false, tlsa: { records: [tlsa311], authenticated: true, base: 'mx1.example.org' } }));
    expect(d).toMatchObject({ ok: true, level: 'dane', check: { kind: 'dane', halfDane: true } });
  });
  it('without dnsSupportLevel dnssec: dane acts as may (warning), dane-only is invalid', () => {
    const d = evaluateTlsPolicy({ level: 'dane' }, ctx());
    expect(d).toMatchObject({ ok: true, level: 'may' });
    expect(d.warnings.length).toBe(1);
    expect(evaluateTlsPolicy({ level: 'dane-only' }, ctx())).toMatchObject({ ok: false });
  });
});

describe('evaluateTlsPolicy: MTA-STS (RFC 8461)', () => {
  const sts = (mode: 'enforce' | 'testing', mx = ['*.example.org']) => ({ version: 'STSv1' as const, mode, mx, maxAge: 86400, id: '1' });
  it('enforce: a matching MX needs PKIX with its own name and TLS 1.2+', () => {
    expect(evaluateTlsPolicy({}, ctx({ sts: sts('enforce') }))).toMatchObject({ ok: true, level: 'verify', startTls: 'required', stsEnforced: true, minVersion: 'TLSv1.2', check: { kind: 'pkix', names: ['mx1.example.org'] } });
  });
  it('enforce: an MX that does not match is skipped', () => {
    expect(evaluateTlsPolicy({}, ctx({ sts: sts('enforce', ['mail.example.net']) }))).toMatchObject({ ok: false, status: '4.7.5' });
  });
  it('testing: delivers at the caller\'s level and carries the check to report', () => {
    expect(evaluateTlsPolicy({}, ctx({ sts: sts('testing') }))).toMatchObject({ ok: true, level: 'may', stsTesting: { check: { kind: 'pkix' } } });
  });
  it('DANE with usable TLSA takes precedence over MTA-STS', () => {
    const d = evaluateTlsPolicy({ level: 'dane' }, ctx({ dnsSupportLevel: 'dnssec', mxSecure: true, sts: sts('enforce'), tlsa: { records: [tlsa311], authenticated: true, base: 'mx1.example.org' } }));
    expect(d).toMatchObject({ level: 'dane', stsEnforced: false });
  });
});

describe('certificate names (TLS-11) and fingerprints (TLS-8)', () => {
  const cert = new X509Certificate(testCertificate.cert);
  it('reads SAN dNSNames', () => {
    expect(certificateNames(cert)).toEqual(expect.arrayContaining(['mx.test.invalid', '*.test.invalid', 'localhost']));
  });
  it('exact, subdomain and whole-label wildcard rules; no partial wildcards', () => {
    expect(nameMatches('mx.example.com', 'MX.Example.COM.')).toBe(true);
    expect(nameMatches('*.example.com', 'a.example.com')).toBe(true);
    expect(nameMatches('*.example.com', 'example.com')).toBe(false);
    expect(nameMatches('*.example.com', 'a.b.example.com')).toBe(false);
    expect(nameMatches('f*.example.com', 'foo.example.com')).toBe(false);
    expect(nameMatches('*.com', 'example.com')).toBe(false);
    expect(nameMatches('a.b.example.com', '.example.com')).toBe(true);
    expect(nameMatches('example.com', '.example.com')).toBe(false);
    expect(nameMatches('*.example.com', '.example.com')).toBe(true);
    expect(matchCertificate(cert, ['other.example', 'mx.test.invalid'])).toBe('mx.test.invalid');
    expect(matchCertificate(cert, ['foo.test.invalid'])).toBe('foo.test.invalid');
    expect(matchCertificate(cert, ['a.b.test.invalid'])).toBeUndefined();
  });
  it('fingerprints match the certificate or its public key', () => {
    const fp = certificateFingerprints(cert, 'sha256');
    expect(fp.cert).toBe(createHash('sha256').update(cert.raw).digest('hex'));
    expect(matchFingerprint(cert, [fp.cert], 'sha256')).toBe(true);
    expect(matchFingerprint(cert, [fp.pubkey], 'sha256')).toBe(true);
    expect(matchFingerprint(cert, ['00'.repeat(32)], 'sha256')).toBe(false);
    expect(normalizeFingerprint(fp.cert.toUpperCase().match(/../g)!.join(':'), 'sha256')).toBe(fp.cert);
    expect(normalizeFingerprint('abcd', 'sha256')).toBeUndefined();
  });
});
