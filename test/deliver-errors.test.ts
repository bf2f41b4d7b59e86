import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { deliver, MailwireError, OPTION_TABLE } from '../src/index.js';
import type { DeliveryEvent } from '../src/index.js';

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof MailwireError ? e.code : `other: ${String(e)}`;
  }
  return undefined;
}

const env = { from: 'a@x.org', to: ['b@y.org'], message: 'hi' };

describe('deliver(): programmer errors reject before any I/O', () => {
  it('EENVELOPE', async () => {
    expect(await code(deliver(null as never, '[127.0.0.1]:1'))).toBe('EENVELOPE');
    expect(await code(deliver({ ...env, to: [] }, '[127.0.0.1]:1'))).toBe('EENVELOPE');
    expect(await code(deliver({ ...env, from: undefined as never }, '[127.0.0.1]:1'))).toBe('EENVELOPE');
    expect(await code(deliver({ ...env, to: [{ address: 'b@y.org', notify: ['SOMETIMES' as never] }] }, '[127.0.0.1]:1'))).toBe('EENVELOPE');
    expect(await code(deliver({ ...env, message: 42 as never }, '[127.0.0.1]:1'))).toBe('EENVELOPE');
    expect(await code(deliver({ ...env, dsn: { ret: 'ALL' as never } }, '[127.0.0.1]:1'))).toBe('EENVELOPE');
  });

  it('EDESTINATION', async () => {
    expect(await code(deliver(env, ''))).toBe('EDESTINATION');
    expect(await code(deliver(env, 'unix:/tmp/x'))).toBe('EDESTINATION');
    expect(await code(deliver(env, '[127.0.0.1]:99999'))).toBe('EDESTINATION');
    expect(await code(deliver(env, []))).toBe('EDESTINATION');
  });

  it('EOPTION for bad values, and for capabilities this version does not have', async () => {
    expect(await code(deliver(env, '[127.0.0.1]:1', { protocol: 'uucp' as never }))).toBe('EOPTION');
    expect(await code(deliver(env, '[127.0.0.1]:1', { heloName: 'bad name' }))).toBe('EOPTION');
    expect(await code(deliver(env, '[127.0.0.1]:1', { timeouts: { rcpt: -1 } }))).toBe('EOPTION');
    expect(await code(deliver(env, '[127.0.0.1]:1', { tls: { level: 'bogus' as never } }))).toBe('EOPTION');
    expect(await code(deliver(env, '[127.0.0.1]:1', { auth: { password: 'p' } as never }))).toBe('EOPTION');
    expect(await code(deliver(env, '[127.0.0.1]:1', { sasl: { securityOptions: ['nosuch' as never] } }))).toBe('EOPTION');
    expect(await code(deliver(env, '[127.0.0.1]:1', { pool: {} as never }))).toBe('EOPTION');
  });

  it('an unknown option name is a warning event, not an error', async () => {
    const events: DeliveryEvent[] = [];
    const r = await deliver(env, '[127.0.0.1]:1', { onEvent: (e: DeliveryEvent) => events.push(e), futureOption: true } as never);
    expect(events.some((e) => e.type === 'warning' && e.message.includes('futureOption'))).toBe(true);
    expect(r.recipients).toHaveLength(1);
  });

  it('every option name in the table is accepted', () => {
    expect(new Set(OPTION_TABLE.map((r) => r.name)).size).toBe(OPTION_TABLE.length);
  });
});

describe('deliver(): network trouble is a result', () => {
  it('connection refused: every recipient delayed 4.4.1 with Postfix\'s text', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await deliver({ ...env, to: ['a@y.org', 'b@y.org'] }, `[127.0.0.1]:${port}`);
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.4.1'],
      ['delayed', '4.4.1'],
    ]);
    expect(r.recipients[0]!.reason).toBe(`connect to 127.0.0.1[127.0.0.1]:${port}: Connection refused`);
    expect(r.attempts).toMatchObject([{ outcome: 'connect-failed', address: '127.0.0.1', port }]);
  });

  it('a unix socket that does not exist: 4.4.1', async () => {
    const r = await deliver(env, 'unix:/nonexistent/lmtp.sock', { protocol: 'lmtp' });
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.1' });
    expect(r.recipients[0]!.reason).toMatch(/No such file or directory/);
  });

  it('an already aborted signal: no traffic, every recipient 4.4.7', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await deliver({ ...env, to: ['a@y.org', 'a@y.org'] }, '[127.0.0.1]:1', { signal: ac.signal });
    expect(r.recipients.map((x) => [x.recipient, x.action, x.status])).toEqual([
      ['a@y.org', 'delayed', '4.4.7'],
      ['a@y.org', 'delayed', '4.4.7'],
    ]);
    expect(r.attempts).toEqual([]);
  });

  it('a host that does not resolve: 5.4.4 host not found (no network for .invalid)', async () => {
    const r = await deliver(env, '[no-such-host.invalid]', { resolver: { resolve4: rejectNotFound, resolve6: rejectNotFound, resolveMx: rejectNotFound } });
    expect(r.recipients[0]).toMatchObject({ action: 'failed', status: '5.4.4' });
    expect(r.recipients[0]!.reason).toBe('Host or domain name not found. Name service error for name=no-such-host.invalid type=A: Host not found');
  });

  it('a DNS failure that may pass: 4.4.3', async () => {
    const servfail = () => Promise.reject(Object.assign(new Error('x'), { code: 'ESERVFAIL' }));
    const r = await deliver(env, '[flaky.example]', { resolver: { resolve4: servfail, resolve6: rejectNotFound, resolveMx: servfail } });
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.3' });
  });
});

function rejectNotFound(): Promise<never> {
  return Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
}
