import { afterEach, describe, expect, it } from 'vitest';
import { deliver } from '../../src/index.js';
import { TestServer, testCertificate, type TestServerOptions } from '../../src/testing/index.js';

const servers: TestServer[] = [];
async function start(o: TestServerOptions): Promise<TestServer> {
  const s = await TestServer.start(o);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const env = { from: 'sender@client.test', to: ['a@t.test', 'b@t.test'], message: 'Subject: tls\r\n\r\nhello\r\n' };

describe('STARTTLS at level may (the default)', () => {
  it('upgrades when offered, sends EHLO again, and reports the TLS session on each result', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true } });
    const lines: string[] = [];
    const r = await deliver(env, s.destination, { heloName: 'client.test', onEvent: (e) => e.type === 'send' && lines.push(e.line) });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.recipients[0]!.tls).toMatchObject({ verified: false, level: 'may' });
    expect(r.recipients[0]!.tls!.version).toMatch(/^TLSv1\.[23]$/);
    expect(lines.filter((l) => l === 'EHLO client.test')).toHaveLength(2);
    expect(lines).toContain('STARTTLS');
    await s.waitForSessions(1);
    expect(s.sessions[0]!.tls).toBe(true);
  });

  it('level none never sends STARTTLS', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true } });
    const r = await deliver(env, s.destination, { tls: { level: 'none' } });
    expect(r.recipients[0]!.tls).toBeUndefined();
    await s.waitForSessions(1);
    expect(s.sessions[0]!.tls).toBe(false);
  });

  it('a failed handshake retries the same server in plaintext (message old enough), as Postfix does at level may', async () => {
    // The server offers STARTTLS and answers 220, but then closes instead of a TLS handshake.
    const s = await start({ extensions: { starttls: true }, faults: [{ step: 'starttls', action: 'reply', reply: '220 2.0.0 Ready', closeAfter: true, session: 0 }] });
    const r = await deliver(env, s.destination, { heloName: 'client.test' });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.attempts.map((a) => a.outcome)).toEqual(['session-failed', 'completed']);
    expect(r.attempts[0]!.status).toBe('4.7.5');
  });

  it('no plaintext retry for a young message: 4.7.5 at the last server', async () => {
    const s = await start({ extensions: { starttls: true }, faults: [{ step: 'starttls', action: 'reply', reply: '220 2.0.0 Ready', closeAfter: true }] });
    const r = await deliver({ ...env, queuedAt: new Date() }, s.destination, { heloName: 'client.test' });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.7.5'],
      ['delayed', '4.7.5'],
    ]);
    expect(r.recipients[0]!.reason).toMatch(/^Cannot start TLS: handshake failure/);
  });

  it('over a unix socket, may is lowered to none (DEST-5)', async () => {
    const path = `/tmp/mailwire-tls-${process.pid}.sock`;
    const s = await start({ protocol: 'lmtp', path, tls: testCertificate, extensions: { starttls: true } });
    const r = await deliver(env, `unix:${path}`, { protocol: 'lmtp' });
    expect(r.recipients[0]!.action).toBe('relayed');
    await s.waitForSessions(1);
    expect(s.sessions[0]!.tls).toBe(false);
  });
});
