/** SASL end to end against the test server (its SASL server checks passwords and tokens). */
import { afterEach, describe, expect, it } from 'vitest';
import { deliver, MemoryAuthCache, type DeliveryEvent, type DeliveryResult } from '../../src/index.js';
import { TestServer, testCertificate, type TestServerOptions } from '../../src/testing/index.js';

const servers: TestServer[] = [];
async function start(o: TestServerOptions): Promise<TestServer> {
  const s = await TestServer.start({ users: { tim: 'tanstaaf', 'dörte': 'pässwörd' }, ...o });
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const env = { from: 'sender@client.test', to: ['a@t.test', 'b@t.test'], message: 'Subject: sasl\r\n\r\nhello\r\n' };
const SECRETS = ['tanstaaf', 'wrong-pw', 'pässwörd', 'good-token', 'bad-token'];
const seen: string[] = [];
function run(dest: string, options: Parameters<typeof deliver>[2]): Promise<DeliveryResult> {
  return deliver(env, dest, {
    heloName: 'client.test',
    tlsSessionCache: false,
    ...options,
    onEvent: (e: DeliveryEvent) => seen.push(JSON.stringify(e)),
  }).then((r) => {
    seen.push(JSON.stringify(r));
    return r;
  });
}
const authLines = (s: TestServer) => s.sessions.flatMap((x) => x.transcript.filter((l) => /^C: AUTH/i.test(l)));

describe('SASL', () => {
  it('over TLS: PLAIN works by default (noanonymous); the strongest offered is chosen', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true, auth: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256'] } });
    const r = await run(`[127.0.0.1]:${s.port}`, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'tanstaaf' } });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    await s.waitForSessions(1);
    expect(s.sessions[0]!.auth).toMatchObject({ mechanism: 'SCRAM-SHA-256' });
    const r2 = await run(`[127.0.0.1]:${s.port}`, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'tanstaaf' }, sasl: { mechanismFilter: ['plain'] } });
    expect(r2.recipients[0]!.action).toBe('relayed');
    await s.waitForSessions(2);
    expect(s.sessions[1]!.auth).toMatchObject({ mechanism: 'PLAIN' });
  });

  it('without TLS, a server that offers only PLAIN gets no credentials (4.7.0, no AUTH on the wire)', async () => {
    const s = await start({ extensions: { auth: ['PLAIN', 'LOGIN'] } });
    const sent: string[] = [];
    const r = await deliver(env, `[127.0.0.1]:${s.port}`, { tls: { level: 'none' }, auth: { username: 'tim', password: 'tanstaaf' }, onEvent: (e) => e.type === 'send' && sent.push(e.line) });
    expect(sent.some((l) => /^AUTH/i.test(l))).toBe(false);
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.0' });
    expect(r.recipients[0]!.reason).toMatch(/offered no compatible authentication mechanisms/);
    await s.waitForSessions(1);
    expect(authLines(s)).toEqual([]);
  });

  it('CRAM-MD5 and SCRAM in plaintext; UTF-8 password through SASLprep', async () => {
    const s = await start({ extensions: { auth: ['CRAM-MD5', 'SCRAM-SHA-1', 'SCRAM-SHA-256'] } });
    for (const [filter, user, pw] of [['cram-md5', 'tim', 'tanstaaf'], ['scram-sha-1', 'tim', 'tanstaaf'], ['scram-sha-256', 'dörte', 'pässwörd']] as const) {
      const r = await run(`[127.0.0.1]:${s.port}`, { tls: { level: 'none' }, auth: { username: user, password: pw }, sasl: { mechanismFilter: [filter] } });
      expect(r.recipients[0]!.action, filter).toBe('relayed');
    }
  });

  it('a wrong password: delayed 4.7.8 (soft bounce), failed 5.7.8 without it; the failure cache stops the next try', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true, auth: ['PLAIN'] } });
    const dest = `[127.0.0.1]:${s.port}`;
    const r1 = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'wrong-pw' } });
    expect(r1.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.7.8'],
      ['delayed', '4.7.8'],
    ]);
    expect(r1.recipients[0]!.reason).toMatch(/^SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8/);
    const hard = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'wrong-pw' }, sasl: { authSoftBounce: false } });
    expect(hard.recipients[0]).toMatchObject({ action: 'failed', status: '5.7.8' });

    const cache = new MemoryAuthCache();
    await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'wrong-pw' }, sasl: { authCache: cache } });
    await s.waitForSessions(3);
    const before = authLines(s).length;
    const r3 = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'wrong-pw' }, sasl: { authCache: cache } });
    expect(r3.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.8' });
    expect(r3.recipients[0]!.reason).toMatch(/SASL \[CACHED\] authentication failed/);
    await s.waitForSessions(4);
    expect(authLines(s).length).toBe(before); // no AUTH sent
    const fixed = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'tanstaaf' }, sasl: { authCache: cache } });
    expect(fixed.recipients[0]!.action).toBe('relayed');
  });

  it('OAUTHBEARER and XOAUTH2 with token checks, including the error challenge', async () => {
    const s = await start({
      tls: testCertificate,
      extensions: { starttls: true, auth: ['XOAUTH2', 'OAUTHBEARER'] },
      onAuth: (a) => a.password === 'good-token',
    });
    const dest = `[127.0.0.1]:${s.port}`;
    const ok = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim@t.test', accessToken: 'good-token' } });
    expect(ok.recipients[0]!.action).toBe('relayed');
    await s.waitForSessions(1);
    expect(s.sessions[0]!.auth).toMatchObject({ mechanism: 'OAUTHBEARER' });
    for (const mech of ['oauthbearer', 'xoauth2']) {
      const bad = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim@t.test', accessToken: 'bad-token' }, sasl: { mechanismFilter: [mech] } });
      expect(bad.recipients[0], mech).toMatchObject({ action: 'delayed', status: expect.stringMatching(/^4\.7\./) });
      expect(bad.recipients[0]!.reason).toMatch(/^SASL authentication failed/);
    }
    const x = await run(dest, { tls: { level: 'encrypt' }, auth: { username: 'tim@t.test', accessToken: 'good-token' }, sasl: { mechanismFilter: ['xoauth2'] } });
    expect(x.recipients[0]!.action).toBe('relayed');
  });

  it('credentials as a function of { sender, nexthop, host, port }; undefined means no AUTH', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true, auth: ['PLAIN'] } });
    const ctxs: unknown[] = [];
    const r = await run(`[127.0.0.1]:${s.port}`, {
      tls: { level: 'encrypt' },
      auth: (ctx) => {
        ctxs.push(ctx);
        return ctx.sender === 'sender@client.test' ? { username: 'tim', password: 'tanstaaf' } : undefined;
      },
    });
    expect(r.recipients[0]!.action).toBe('relayed');
    expect(ctxs).toEqual([{ sender: 'sender@client.test', nexthop: `[127.0.0.1]:${s.port}`, host: '127.0.0.1', port: s.port }]);
  });

  it('sendDummyMailAuth: AUTH=<> on MAIL FROM', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true, auth: ['PLAIN'] } });
    await run(`[127.0.0.1]:${s.port}`, { tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'tanstaaf' }, sasl: { sendDummyMailAuth: true } });
    expect(s.transactions[0]!.mailParams).toContain('AUTH=<>');
  });

  it('no secret appears in any event or result of this file', () => {
    const all = seen.join('\n');
    for (const secret of SECRETS) {
      expect(all.includes(secret), secret).toBe(false);
      expect(all.includes(Buffer.from(`\0tim\0${secret}`).toString('base64')), `${secret} (PLAIN)`).toBe(false);
      expect(all.includes(Buffer.from(secret).toString('base64')), `${secret} (base64)`).toBe(false);
    }
    expect(seen.length).toBeGreaterThan(50);
  });
});
