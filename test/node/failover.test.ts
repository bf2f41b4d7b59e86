/**
 * Postfix's connection loop (smtp_connect.c; POSTFIX-BEHAVIOR.md §1.1-1.2) against real
 * servers on 127.0.0.x, with a resolver that maps names to them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { deliver, type DnsResolver } from '../../src/index.js';
import { TestServer, type TestServerOptions } from '../../src/testing/index.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Servers on 127.0.0.<base+i>, all on the same port, so one MX domain reaches them all. */
async function fleet(base: number, specs: TestServerOptions[]): Promise<{ port: number; list: TestServer[] }> {
  const first = await TestServer.start({ ...specs[0], host: `127.0.0.${base}` });
  servers.push(first);
  const port = first.port!;
  const list = [first];
  for (let i = 1; i < specs.length; i++) {
    const s = await TestServer.start({ ...specs[i], host: `127.0.0.${base + i}`, port });
    servers.push(s);
    list.push(s);
  }
  return { port, list };
}

/** MX name → one MX host per address, preferences 10, 20, 30 ... */
function resolverFor(domain: string, base: number, n: number, extra: Record<string, string[]> = {}): DnsResolver {
  const notFound = () => Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
  return {
    resolveMx: async (name) => (name === domain ? Array.from({ length: n }, (_, i) => ({ priority: 10 * (i + 1), exchange: `mx${i}.${domain}` })) : notFound()),
    resolve4: async (name) => {
      const m = new RegExp(`^mx(\\d+)\\.${domain.replace(/\./g, '\\.')}$`).exec(name);
      if (m) return [`127.0.0.${base + Number(m[1])}`];
      if (extra[name]) return extra[name]!;
      return notFound();
    },
    resolve6: () => notFound(),
  };
}

const env = { from: 'sender@client.test', to: ['a@t.test', 'b@t.test'], message: 'Subject: x\r\n\r\nhello\r\n' };
const base = { tls: { level: 'none' as const }, heloName: 'client.test', randomizeAddresses: false };

describe('failover within one next hop', () => {
  it('mxSessionLimit (2): only sessions that finished the handshake count', async () => {
    const { port, list } = await fleet(31, [
      { greeting: '421 4.3.2 busy' }, // handshake failure: not counted
      { onMail: () => '451 4.3.0 try later' }, // session 1
      { onMail: () => '451 4.3.0 try later, again' }, // session 2: the limit
      {}, // never tried
    ]);
    const r = await deliver(env, `route.test:${port}`, { ...base, resolver: resolverFor('route.test', 31, 4) });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.3.0'],
      ['delayed', '4.3.0'],
    ]);
    expect(r.recipients[0]!.reason).toMatch(/try later, again \(in reply to MAIL FROM command\)$/);
    expect(list[3]!.sessions).toHaveLength(0);
    expect(r.attempts.map((a) => [a.address, a.outcome, a.stage])).toEqual([
      ['127.0.0.31', 'session-failed', 'greeting'],
      ['127.0.0.32', 'completed', 'quit'],
      ['127.0.0.33', 'completed', 'quit'],
    ]);
  });

  it('mxSessionLimit: 3 tries the third server', async () => {
    const { port, list } = await fleet(41, [{ onMail: () => '451 4.3.0 no' }, { onMail: () => '451 4.3.0 no' }, {}]);
    const r = await deliver(env, `route.test:${port}`, { ...base, mxSessionLimit: 3, resolver: resolverFor('route.test', 41, 3) });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(list[2]!.transactions).toHaveLength(1);
  });

  it('a 4xx for one recipient retries only that recipient at the next MX; a 5xx is final', async () => {
    const { port, list } = await fleet(51, [{ onRcpt: (a) => (a.startsWith('soft') ? '450 4.2.0 busy' : a.startsWith('hard') ? '550 5.1.1 no' : undefined) }, {}]);
    const r = await deliver({ ...env, to: ['ok@t.test', 'soft@t.test', 'hard@t.test'] }, `route.test:${port}`, { ...base, resolver: resolverFor('route.test', 51, 2) });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['relayed', '2.0.0'],
      ['relayed', '2.0.0'],
      ['failed', '5.1.1'],
    ]);
    expect(list[1]!.transactions[0]!.rcpts.map((x) => x.address)).toEqual(['soft@t.test']);
    expect(r.recipients[1]!.remoteAddress).toBe('127.0.0.52');
  });

  it('mxAddressLimit caps the addresses tried; the last error reaches every recipient', async () => {
    const { port, list } = await fleet(61, Array.from({ length: 4 }, () => ({ greeting: '421 4.3.2 go away' })));
    const r = await deliver(env, `route.test:${port}`, { ...base, mxAddressLimit: 3, resolver: resolverFor('route.test', 61, 4) });
    expect(list.map((s) => s.sessions.length)).toEqual([1, 1, 1, 0]);
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.3.2'],
      ['delayed', '4.3.2'],
    ]);
    expect(r.recipients[0]!.reason).toBe('host mx2.route.test[127.0.0.63] refused to talk to me: 421 4.3.2 go away');
  });
});

describe('fallback relays and the end of the list', () => {
  it('fallbackRelay is tried after every MX failed', async () => {
    const { port } = await fleet(71, [{}]);
    const r = await deliver(env, 'dead.test:1', {
      ...base,
      resolver: resolverFor('dead.test', 72, 2),
      fallbackRelay: `[127.0.0.71]:${port}`,
    });
    expect(r.recipients.map((x) => [x.action, x.remoteAddress])).toEqual([
      ['relayed', '127.0.0.71'],
      ['relayed', '127.0.0.71'],
    ]);
    expect(r.attempts.map((a) => a.outcome)).toEqual(['connect-failed', 'connect-failed', 'completed']);
  });

  it('a domain that does not exist goes to the fallback relay too (DEST-16)', async () => {
    const { port } = await fleet(73, [{}]);
    const r = await deliver(env, 'nowhere.test', { ...base, resolver: resolverFor('other.test', 1, 1), fallbackRelay: [`[127.0.0.73]:${port}`] });
    expect(r.recipients[0]!.action).toBe('relayed');
  });

  it('a hard error left after a fallback relay is a configuration problem: 4.3.5, text kept', async () => {
    const r = await deliver(env, 'nowhere.test', { ...base, resolver: resolverFor('other.test', 1, 1), fallbackRelay: '[relay.nowhere.test]' });
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.3.5' });
    expect(r.recipients[0]!.reason).toMatch(/^Host or domain name not found\. Name service error for name=relay\.nowhere\.test/);
  });

  it('role relayhost: a hard error at the relayhost defers 4.3.5', async () => {
    const r = await deliver(env, '[relay.nowhere.test]', { ...base, resolver: resolverFor('other.test', 1, 1), role: 'relayhost' });
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.3.5' });
    const direct = await deliver(env, '[relay.nowhere.test]', { ...base, resolver: resolverFor('other.test', 1, 1) });
    expect(direct.recipients[0]).toMatchObject({ action: 'failed', status: '5.4.4' });
  });

  it('a destination list with the first port closed delivers via the second', async () => {
    const { port } = await fleet(75, [{}]);
    const closed = await TestServer.start({ host: '127.0.0.76' });
    const closedPort = closed.port!;
    await closed.close();
    const r = await deliver(env, `[127.0.0.76]:${closedPort}, [127.0.0.75]:${port}`, base);
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.attempts.map((a) => [a.outcome, a.stage])).toEqual([
      ['connect-failed', 'connect'],
      ['completed', 'quit'],
    ]);
  });

  it('a one-shot stream that was sent cannot go on: delayed 4.3.0 with the reason', async () => {
    const { port } = await fleet(81, [{ onData: () => '451 4.3.0 not now' }, {}]);
    const r = await deliver({ ...env, message: Readable.from([Buffer.from('Subject: s\r\n\r\nbody\r\n')]) }, `route.test:${port}`, {
      ...base,
      resolver: resolverFor('route.test', 81, 2),
    });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.3.0'],
      ['delayed', '4.3.0'],
    ]);
    expect(r.recipients[0]!.reason).toMatch(/consumed by an earlier attempt and cannot be read again/);
  });
});

describe('loop detection (myAddresses, SMTP on port 25 only)', () => {
  it('EHLO with our own name at a best MX: 5.4.6 only when loop detection is on', async () => {
    // Port 25 is not available to tests, so the EHLO check is exercised in the engine tests;
    // here: without myAddresses nothing changes, even when the server calls itself as we do.
    const { port } = await fleet(91, [{ hostname: 'client.test' }]);
    const r = await deliver(env, `[127.0.0.91]:${port}`, base);
    expect(r.recipients[0]!.action).toBe('relayed');
  });
});
