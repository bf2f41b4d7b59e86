/** TLS levels end to end against the test server (real node:tls on loopback). */
import { afterEach, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { deliver, type DnsResolver } from '../../src/index.js';
import { TestServer, testCertificate, type TestServerOptions } from '../../src/testing/index.js';
import { certificateFingerprints } from '../../src/tls/fingerprint.js';
import { MemoryTlsSessionStore } from '../../src/tls/session-cache.js';

const servers: TestServer[] = [];
async function start(o: TestServerOptions = {}): Promise<TestServer> {
  const s = await TestServer.start({ tls: testCertificate, extensions: { starttls: true }, ...o });
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** mx.test.invalid and other.test.invalid → 127.0.0.1 (the test certificate names mx.test.invalid and *.test.invalid). */
const resolver: DnsResolver = {
  resolveMx: () => Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' })),
  resolve4: async (name) => {
    if (/(^|\.)test\.invalid$/.test(name) || name === 'elsewhere.example') return ['127.0.0.1'];
    throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
  },
  resolve6: () => Promise.reject(Object.assign(new Error('nx'), { code: 'ENODATA' })),
};
const env = { from: 'sender@client.test', to: ['a@t.test', 'b@t.test'], message: 'Subject: tls\r\n\r\nhello\r\n' };
const base = { heloName: 'client.test', resolver, tlsSessionCache: false as const };
const fp = certificateFingerprints(new X509Certificate(testCertificate.cert), 'sha256');

describe('TLS levels', () => {
  it('verify with the right CA and name: relayed, verified', async () => {
    const s = await start();
    const r = await deliver(env, `[mx.test.invalid]:${s.port}`, { ...base, tls: { level: 'verify', ca: testCertificate.cert } });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.recipients[0]!.tls).toMatchObject({ verified: true, level: 'verify' });
  });

  it('verify without the CA: 4.7.5 certificate-not-trusted, no mail sent, QUIT', async () => {
    const s = await start();
    const r = await deliver(env, `[mx.test.invalid]:${s.port}`, { ...base, tls: { level: 'verify' } });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.7.5'],
      ['delayed', '4.7.5'],
    ]);
    expect(r.recipients[0]!.reason).toMatch(/^Server certificate not verified/);
    expect(r.recipients[0]!.tlsFailure).toMatchObject({ resultType: 'certificate-not-trusted', receivingMxHostname: 'mx.test.invalid', receivingIp: '127.0.0.1' });
    await s.waitForSessions(1);
    expect(s.transactions).toHaveLength(0);
    expect(s.sessions[0]!.quit).toBe(true);
  });

  it('verify with a name the certificate does not have: certificate-host-mismatch', async () => {
    const s = await start();
    const r = await deliver(env, `[elsewhere.example]:${s.port}`, { ...base, tls: { level: 'verify', ca: testCertificate.cert } });
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.5', tlsFailure: { resultType: 'certificate-host-mismatch' } });
  });

  it('secure matches the next hop and its subdomains', async () => {
    const s = await start();
    const ok = await deliver(env, `[mx.test.invalid]:${s.port}`, { ...base, tls: { level: 'secure', ca: testCertificate.cert } });
    expect(ok.recipients[0]!.action).toBe('relayed');
  });

  it('fingerprint: the certificate or public key digest, no CA needed', async () => {
    const s = await start();
    for (const value of [fp.cert, fp.pubkey]) {
      const r = await deliver(env, `[127.0.0.1]:${s.port}`, { ...base, tls: { level: 'fingerprint', fingerprints: [value] } });
      expect(r.recipients[0]).toMatchObject({ action: 'relayed', tls: { verified: true, level: 'fingerprint' } });
    }
    const bad = await deliver(env, `[127.0.0.1]:${s.port}`, { ...base, tls: { level: 'fingerprint', fingerprints: ['00'.repeat(32)] } });
    expect(bad.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.5' });
  });

  it('encrypt: TLS without a check; no STARTTLS offered → 4.7.4 starttls-not-supported', async () => {
    const s = await start();
    const r = await deliver(env, `[127.0.0.1]:${s.port}`, { ...base, tls: { level: 'encrypt' } });
    expect(r.recipients[0]).toMatchObject({ action: 'relayed', tls: { verified: false, level: 'encrypt' } });
    const plain = await start({ extensions: { starttls: false } });
    const r2 = await deliver(env, `[127.0.0.1]:${plain.port}`, { ...base, tls: { level: 'encrypt' } });
    expect(r2.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.4', tlsFailure: { resultType: 'starttls-not-supported' } });
    expect(r2.recipients[0]!.reason).toMatch(/^TLS is required, but was not offered by host 127\.0\.0\.1\[127\.0\.0\.1\]$/);
  });

  it('mandatory TLS fails over to the next server', async () => {
    const plain = await start({ extensions: { starttls: false } });
    const good = await start();
    const r = await deliver(env, `[127.0.0.1]:${plain.port}, [127.0.0.1]:${good.port}`, { ...base, tls: { level: 'encrypt' } });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.attempts.map((a) => a.outcome)).toEqual(['session-failed', 'completed']);
  });

  it('wrapper mode (implicit TLS): encrypt and up; below that the address is skipped', async () => {
    const s = await start({ wrapperMode: true, extensions: { starttls: false } });
    const r = await deliver(env, `[mx.test.invalid]:${s.port}`, { ...base, tls: { level: 'verify', ca: testCertificate.cert, wrapperMode: true } });
    expect(r.recipients[0]).toMatchObject({ action: 'relayed', tls: { verified: true } });
    const r2 = await deliver(env, `[127.0.0.1]:${s.port}`, { ...base, tls: { level: 'may', wrapperMode: true } });
    expect(r2.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(r2.attempts[0]).toMatchObject({ outcome: 'skipped', stage: 'tls-policy' });
  });

  it('the second connection resumes the TLS session', async () => {
    const s = await start();
    const store = new MemoryTlsSessionStore();
    const o = { ...base, tls: { level: 'encrypt' as const }, tlsSessionCache: store };
    const first = await deliver(env, `[127.0.0.1]:${s.port}`, o);
    const second = await deliver(env, `[127.0.0.1]:${s.port}`, o);
    expect(first.recipients[0]!.tls!.resumed).toBe(false);
    expect(second.recipients[0]!.tls!.resumed).toBe(true);
  });

  it('a forged reply right behind the 220 to STARTTLS is never acted on', async () => {
    const s = await start({ faults: [{ step: 'starttls', action: 'reply', reply: '220 2.0.0 Ready\n250 2.1.0 forged' }] });
    const lines: string[] = [];
    const warnings: string[] = [];
    const r = await deliver(env, `[127.0.0.1]:${s.port}`, {
      ...base,
      tls: { level: 'encrypt' },
      onEvent: (e) => (e.type === 'receive' ? lines.push(e.line) : e.type === 'warning' ? warnings.push(e.message) : undefined),
    });
    expect(lines).not.toContain('250 2.1.0 forged');
    expect(warnings.some((w) => /CVE-2011-0411/.test(w))).toBe(true);
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.attempts[0]!.protocolErrors).toEqual(['plaintext-after-starttls']);
  });
});

describe('REQUIRETLS (RFC 8689)', () => {
  it('verified TLS and the server keyword: REQUIRETLS on MAIL; otherwise 5.7.30, next server first', async () => {
    const s = await start({ extensions: { starttls: true, extra: ['REQUIRETLS'] } });
    const ok = await deliver({ ...env, requireTls: true }, `[mx.test.invalid]:${s.port}`, { ...base, tls: { level: 'verify', ca: testCertificate.cert } });
    expect(ok.recipients[0]!.action).toBe('relayed');
    expect(s.transactions[0]!.mailParams).toContain('REQUIRETLS');
    const may = await deliver({ ...env, requireTls: true }, `[mx.test.invalid]:${s.port}`, { ...base });
    expect(may.recipients[0]).toMatchObject({ action: 'failed', status: '5.7.30' });
    const noKeyword = await start();
    const failover = await deliver({ ...env, requireTls: true }, `[mx.test.invalid]:${noKeyword.port}, [mx.test.invalid]:${s.port}`, {
      ...base,
      tls: { level: 'verify', ca: testCertificate.cert },
    });
    expect(failover.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(failover.attempts.map((a) => a.status)).toEqual(['5.7.30', undefined]);
  });
});
