/** The connection pool against the test server (POOL-*; POSTFIX-BEHAVIOR.md §1.5). */
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { deliver, Pool, type DeliveryEvent, type DeliverOptions } from '../../src/index.js';
import { TestServer, testCertificate, type TestServerOptions } from '../../src/testing/index.js';
import { rsetCuttingRelay } from '../helpers/cutting-relay.js';

const servers: TestServer[] = [];
const pools: Pool[] = [];
async function start(o: TestServerOptions = {}): Promise<TestServer> {
  const s = await TestServer.start(o);
  servers.push(s);
  return s;
}
function pool(o: ConstructorParameters<typeof Pool>[0] = {}): Pool {
  const p = new Pool(o);
  pools.push(p);
  return p;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const env = (n = 1, tag = 'x') => ({ from: 'sender@client.test', to: Array.from({ length: n }, (_, i) => `r${i}@t.test`), message: `Subject: ${tag}\r\n\r\nhello\r\n` });
const base: DeliverOptions = { tls: { level: 'none' }, heloName: 'client.test' };

function connections(events: DeliveryEvent[]): number[] {
  return events.flatMap((e) => (e.type === 'connected' && e.connection !== undefined ? [e.connection] : []));
}

describe('Pool: reuse', () => {
  it('the second delivery reuses the connection, with RSET in the same flight as the transaction', async () => {
    const s = await start();
    const p = pool();
    const r1 = await deliver(env(2, 'one'), s.destination, { ...base, pool: p });
    const sent: string[] = [];
    const events: DeliveryEvent[] = [];
    const r2 = await deliver(env(2, 'two'), s.destination, { ...base, pool: p, onEvent: (e) => { events.push(e); if (e.type === 'send') sent.push(e.line); } });
    expect([...r1.recipients, ...r2.recipients].map((x) => x.action)).toEqual(['relayed', 'relayed', 'relayed', 'relayed']);
    expect(s.sessions).toHaveLength(1);
    expect(sent[0]).toBe('RSET');
    expect(sent[1]).toMatch(/^MAIL FROM:<sender@client\.test>/);
    expect(events.some((e) => e.type === 'connected' && e.reused)).toBe(true);
    expect(s.transactions).toHaveLength(2);
    expect(p.stats()).toMatchObject({ open: 1, idle: 1, busy: 0, waiting: 0 });
  });

  it('a probe that fails (421 to RSET) sends the transaction again on a fresh connection; nothing is lost', async () => {
    const s = await start({ faults: [{ step: 'rset', action: 'reply', reply: '421 4.3.2 shutting down', session: 0 }] });
    const p = pool();
    await deliver(env(1, 'a'), s.destination, { ...base, pool: p });
    const r = await deliver(env(2, 'b'), s.destination, { ...base, pool: p });
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    await s.waitForSessions(1);
    expect(s.sessions.length).toBe(2);
    expect(s.transactions.filter((t) => t.complete).map((t) => t.accepted.length)).toEqual([1, 2]);
    expect(r.attempts).toHaveLength(1);
  });

  it('a connection the server closed while idle is not reused', async () => {
    const s = await start({ idleTimeout: 50 });
    const p = pool();
    await deliver(env(1), s.destination, { ...base, pool: p });
    await new Promise((r) => setTimeout(r, 200));
    expect(p.stats().open).toBe(0);
    const r = await deliver(env(1), s.destination, { ...base, pool: p });
    expect(r.recipients[0]!.action).toBe('relayed');
    expect(s.sessions).toHaveLength(2);
  });

  it('idleTimeout closes idle connections with QUIT; reuseCountLimit and reuseTimeLimit stop reuse', async () => {
    const s = await start();
    const p = pool({ idleTimeout: 50 });
    await deliver(env(1), s.destination, { ...base, pool: p });
    await new Promise((r) => setTimeout(r, 150));
    expect(p.stats().open).toBe(0);
    await s.waitForSessions(1);
    expect(s.sessions[0]!.quit).toBe(true);

    const counted = pool({ reuseCountLimit: 2 });
    for (let i = 0; i < 4; i++) await deliver(env(1), s.destination, { ...base, pool: counted });
    await s.waitForSessions(2);
    expect(s.sessions.length).toBe(1 + 2); // 2 uses per connection: 4 deliveries, 2 connections
    const timed = pool({ reuseTimeLimit: 1 });
    await deliver(env(1), s.destination, { ...base, pool: timed });
    await new Promise((r) => setTimeout(r, 5));
    await deliver(env(1), s.destination, { ...base, pool: timed });
    expect(s.sessions.length).toBe(3 + 2);
  });

  it('different TLS levels or credentials never share a connection (assert connection ids)', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true, auth: ['PLAIN'] }, users: { tim: 'a', tom: 'b' } });
    const p = pool();
    const ids = async (o: DeliverOptions) => {
      const ev: DeliveryEvent[] = [];
      const r = await deliver(env(1), s.destination, { ...base, ...o, pool: p, onEvent: (e) => ev.push(e) });
      expect(r.recipients[0]!.action).toBe('relayed');
      return connections(ev);
    };
    const tim1 = await ids({ tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'a' } });
    const tim2 = await ids({ tls: { level: 'encrypt' }, auth: { username: 'tim', password: 'a' } });
    const tom = await ids({ tls: { level: 'encrypt' }, auth: { username: 'tom', password: 'b' } });
    const plain = await ids({ tls: { level: 'none' } });
    const may = await ids({ tls: { level: 'may' } });
    // A client certificate is part of the TLS identity: not shared with callers without it.
    const withCert = await ids({ tls: { level: 'encrypt', cert: testCertificate.cert, key: testCertificate.key }, auth: { username: 'tim', password: 'a' } });
    const withCert2 = await ids({ tls: { level: 'encrypt', cert: testCertificate.cert, key: testCertificate.key }, auth: { username: 'tim', password: 'a' } });
    expect(tim2).toEqual(tim1); // same credentials, same policy: reused
    expect(withCert2).toEqual(withCert);
    expect(new Set([tim1[0], tom[0], plain[0], may[0], withCert[0]]).size).toBe(5);
  });
});

describe('Pool: limits and waiting', () => {
  it('maxConnectionsPerDestination 1: callers share one connection (transaction pipelining) or wait', async () => {
    const s = await start();
    const p = pool({ maxConnectionsPerDestination: 1 });
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => deliver(env(1, `m${i}`), s.destination, { ...base, pool: p })));
    expect(rs.every((r) => r.recipients[0]!.action === 'relayed')).toBe(true);
    expect(s.sessions).toHaveLength(1);
    expect(s.transactions).toHaveLength(20);
    // Transaction pipelining: the server read far fewer command batches than 20 transactions.
    expect(s.sessions[0]!.reads).toBeLessThan(15);
  });

  it('without transaction pipelining callers wait FIFO; an abort while waiting resolves with 4.4.7', async () => {
    const s = await start({ faults: [{ step: 'dot', action: 'stall', times: 1 }] });
    const p = pool({ maxConnectionsPerDestination: 1 });
    const o = { ...base, pool: p, transactionPipelining: false, timeouts: { dataDone: 300 } };
    const first = deliver(env(1, 'stalls'), s.destination, o);
    await new Promise((r) => setTimeout(r, 50));
    const ac = new AbortController();
    const second = deliver(env(1, 'waits'), s.destination, { ...o, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 20));
    expect(p.stats().waiting).toBe(1);
    ac.abort();
    const r2 = await second;
    expect(r2.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.7' });
    const r1 = await first;
    expect(r1.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.2' });
  });
});

describe('recipientLimit and 452 4.5.3 (POOL-13, RFC 5321 §4.5.3.1.10)', () => {
  it('120 recipients with recipientLimit 50: three transactions on one connection', async () => {
    const s = await start();
    const r = await deliver(env(120), s.destination, base);
    expect(r.recipients.every((x) => x.action === 'relayed')).toBe(true);
    expect(s.sessions).toHaveLength(1);
    expect(s.transactions.map((t) => t.accepted.length)).toEqual([50, 50, 20]);
  });

  it('a streamed message in several transactions on one connection: every transaction gets the whole message, with and without transaction pipelining', async () => {
    const s = await start();
    const m = 'From: a@client.test\r\nSubject: streamed\r\n\r\n' + 'line of the body\r\n'.repeat(2000);
    for (const transactionPipelining of [true, false]) {
      s.reset();
      const chunks = () => Readable.from(Array.from({ length: 8 }, (_, i) => Buffer.from(m.slice((i * m.length) / 8, ((i + 1) * m.length) / 8))));
      const r = await deliver({ from: 'a@x.test', to: ['a@t.test', 'b@t.test', 'c@t.test'], message: chunks }, s.destination, { ...base, recipientLimit: 1, transactionPipelining });
      expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed', 'relayed']);
      expect(s.sessions).toHaveLength(1);
      expect(s.transactions.map((t) => t.data?.toString())).toEqual([m, m, m]);
    }
  });

  it('several transactions of one call on one connection: each transcript line is reported once', async () => {
    const s = await start();
    const lines: string[] = [];
    await deliver(env(3), s.destination, { ...base, recipientLimit: 1, onEvent: (e) => (e.type === 'send' || e.type === 'receive') && lines.push(e.line) });
    expect(lines.filter((l) => l.startsWith('EHLO'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('MAIL FROM'))).toHaveLength(3);
    expect(lines.filter((l) => l.startsWith('220 '))).toHaveLength(1);
  });

  it('a server that takes 30 per transaction: the 452 4.5.3 recipients go in further transactions', async () => {
    const s = await start({ maxRecipients: 30 });
    const r = await deliver(env(70), s.destination, { ...base, recipientLimit: 100 });
    expect(r.recipients.filter((x) => x.action === 'relayed')).toHaveLength(70);
    expect(s.transactions.map((t) => t.accepted.length)).toEqual([30, 30, 10]);
  });

  it('a 452 4.5.3 with no progress is deferred, as Postfix does', async () => {
    const s = await start({ onRcpt: () => '452 4.5.3 Error: too many recipients' });
    const r = await deliver(env(3), s.destination, base);
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.5.3'],
      ['delayed', '4.5.3'],
      ['delayed', '4.5.3'],
    ]);
  });
});

describe('Pool: destination label (POOL-7, POOL-11)', () => {
  /** Two MX hosts on 127.0.0.{b}, 127.0.0.{b+1} with one port; counts the MX lookups. */
  async function twoMx(b: number, first: TestServerOptions = {}) {
    const s0 = await start({ ...first, host: `127.0.0.${b}` });
    const s1 = await start({ host: `127.0.0.${b + 1}`, port: s0.port });
    let mxLookups = 0;
    const notFound = () => Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
    const resolver = {
      resolveMx: async (name: string) => {
        mxLookups++;
        return name === 'label.test' ? [{ priority: 10, exchange: 'mx0.label.test' }, { priority: 20, exchange: 'mx1.label.test' }] : notFound();
      },
      resolve4: async (name: string) => (name === 'mx0.label.test' ? [`127.0.0.${b}`] : name === 'mx1.label.test' ? [`127.0.0.${b + 1}`] : notFound()),
      resolve6: () => notFound(),
    };
    return { s0, s1, resolver, lookups: () => mxLookups, dest: `label.test:${s0.port}` };
  }

  it('a warm delivery to a domain finds the connection by destination label, with no DNS lookup', async () => {
    const { s0, s1, resolver, lookups, dest } = await twoMx(111);
    const p = pool();
    const o = { ...base, randomizeAddresses: false, resolver, pool: p };
    const r1 = await deliver(env(1, 'one'), dest, o);
    expect(lookups()).toBe(1);
    const events: DeliveryEvent[] = [];
    const r2 = await deliver(env(2, 'two'), dest, { ...o, onEvent: (e) => events.push(e) });
    expect([...r1.recipients, ...r2.recipients].map((x) => x.action)).toEqual(['relayed', 'relayed', 'relayed']);
    expect(lookups()).toBe(1);
    expect(events.some((e) => e.type === 'connected' && e.reused)).toBe(true);
    expect(r2.attempts.map((a) => [a.host, a.address, a.outcome])).toEqual([['mx0.label.test', '127.0.0.111', 'completed']]);
    expect(s0.sessions).toHaveLength(1);
    expect(s1.sessions).toHaveLength(0);
  });

  it('a recipient deferred on the label session goes to the other MX, not to the same address again', async () => {
    const { s0, s1, resolver, lookups, dest } = await twoMx(113, { onRcpt: (a) => (a.startsWith('soft') ? '450 4.2.0 mailbox busy' : undefined) });
    const p = pool();
    const o = { ...base, randomizeAddresses: false, resolver, pool: p };
    await deliver(env(1, 'warm'), dest, o);
    const r = await deliver({ from: 'sender@client.test', to: ['ok@t.test', 'soft@t.test'], message: 'Subject: x\r\n\r\nhi\r\n' }, dest, o);
    expect(r.recipients.map((x) => [x.action, x.remoteMta])).toEqual([
      ['relayed', 'dns; mx0.label.test'],
      ['relayed', 'dns; mx1.label.test'],
    ]);
    expect(lookups()).toBe(2); // the DNS path ran for the one left
    const softAtMx0 = s0.sessions.flatMap((x) => x.transcript.filter((l) => /^C: RCPT TO:<soft@/i.test(l)));
    expect(softAtMx0).toHaveLength(1);
    expect(s1.transactions.flatMap((t) => t.accepted)).toEqual(['soft@t.test']);
  });

  it('with credentials, the label includes the sender; another sender with other credentials opens its own connection', async () => {
    const s = await start({ tls: testCertificate, extensions: { starttls: true, auth: ['PLAIN'] } });
    const p = pool();
    const ev: DeliveryEvent[] = [];
    const o: DeliverOptions = {
      tls: { level: 'encrypt' },
      heloName: 'client.test',
      pool: p,
      auth: ({ sender }) => ({ username: sender.split('@')[0]!, password: 'pw' }),
      onEvent: (e) => ev.push(e),
    };
    await deliver({ ...env(1), from: 'alice@client.test' }, s.destination, o);
    await deliver({ ...env(1), from: 'alice@client.test' }, s.destination, o);
    await deliver({ ...env(1), from: 'bob@client.test' }, s.destination, o);
    const ids = connections(ev);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(s.sessions).toHaveLength(2);
  });
});

describe('Pool: findings of the benchmarks (bench/pool-findings.ts)', () => {
  it('a reused connection cut after its probe flight carried BDAT LAST: never sent twice; delayed with the duplicate warning', async () => {
    const s = await start({ discardData: true });
    const relay = await rsetCuttingRelay(s.port!);
    try {
      const dest = relay.destination;
      const p = pool();
      await deliver(env(1, 'first'), dest, { ...base, pool: p });
      const r = await deliver({ ...env(1, 'second'), from: 'second@client.test' }, dest, { ...base, pool: p });
      await new Promise((res) => setTimeout(res, 100));
      const copies = s.transactions.filter((t) => t.mailFrom === 'second@client.test' && t.replies.some((x) => x.startsWith('250'))).length;
      expect(copies).toBe(1);
      expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.2' });
      expect(r.recipients[0]!.reason).toMatch(/while sending end of data -- message may be sent more than once/);
    } finally {
      relay.close();
    }
  });

  it('maxTransactionsPerConnection holds under a burst; callers spread over connections before they share one', async () => {
    const s = await start({ discardData: true });
    const p = pool({ maxConnectionsPerDestination: 2, maxTransactionsPerConnection: 4 });
    const rs = await Promise.all(Array.from({ length: 60 }, (_, i) => deliver(env(1, `m${i}`), s.destination, { ...base, pool: p })));
    expect(rs.every((r) => r.recipients[0]!.action === 'relayed')).toBe(true);
    await s.waitForSessions(0);
    const perSession = new Map<number, number>();
    for (const t of s.transactions) perSession.set(t.session, (perSession.get(t.session) ?? 0) + 1);
    expect([...perSession.values()].every((n) => n >= 20)).toBe(true);
    expect(perSession.size).toBe(2);
    // Never more than 4 MAIL commands outstanding on one connection.
    for (const x of s.sessions) {
      let open = 0;
      let most = 0;
      for (const l of x.transcript) {
        if (l.startsWith('C: MAIL')) most = Math.max(most, ++open);
        if (/^S: 250 2\.0\.0 Ok: queued/.test(l)) open--;
      }
      expect(most).toBeLessThanOrEqual(4);
    }
  });

  it('callers sharing a connection see only their own commands; no RSET probe for a caller that joins it busy', async () => {
    const s = await start({ discardData: true });
    const p = pool({ maxConnectionsPerDestination: 1 });
    const seen = new Map<string, string[]>();
    await Promise.all(
      ['a', 'b', 'c'].map((k) =>
        deliver({ from: `${k}@client.test`, to: [`${k}-rcpt@t.test`], message: 'Subject: x\r\n\r\ny\r\n' }, s.destination, {
          ...base,
          pool: p,
          onEvent: (e) => e.type === 'send' && seen.set(k, [...(seen.get(k) ?? []), e.line]),
        }),
      ),
    );
    for (const [k, lines] of seen) {
      for (const l of lines.filter((x) => /^(MAIL FROM|RCPT TO):/.test(x))) expect(l.includes(`<${k}@client.test>`) || l.includes(`<${k}-rcpt@t.test>`), `${k}: ${l}`).toBe(true);
    }
    await p.close();
    await s.waitForSessions(1);
    // At most one probe: a caller that found the connection idle; those that joined it busy send none.
    expect(s.sessions[0]!.transcript.filter((l) => l === 'C: RSET').length).toBeLessThanOrEqual(1);
  });

  it('a 421 to a RCPT before BDAT LAST in the same flight: the accepted recipient is lost while sending RCPT TO, not "may be sent more than once"', async () => {
    const s = await start({ faults: [{ step: 'rcpt', rcpt: 1, action: 'reply', reply: '421 4.3.2 Service shutting down, closing channel' }] });
    const r = await deliver(env(2), s.destination, base);
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.2' });
    expect(r.recipients[0]!.reason).toMatch(/lost connection with .* while sending RCPT TO$/);
    expect(r.recipients[1]).toMatchObject({ action: 'delayed', status: '4.3.2' });
  });
});

describe('Pool: memory', () => {
  it('a connection replaced after a failed probe is not kept alive by the connections opened after it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Every RSET probe fails with 421: each delivery finds the kept connection by its label,
    // probes it, and opens a fresh one in the same attempt, which the pool then keeps.
    const s = await start({ faults: [{ step: 'rset', action: 'reply', reply: '421 4.3.2 shutting down', times: 1000 }] });
    const p = pool();
    const internals = p as unknown as { byConn: Map<object, unknown> };
    const olds: Array<WeakRef<object>> = [];
    for (let i = 0; i < 6; i++) {
      const r = await deliver(env(1, `m${i}`), s.destination, { ...base, pool: p });
      expect(r.recipients[0]!.action).toBe('relayed');
      for (const c of internals.byConn.keys()) olds.push(new WeakRef(c));
    }
    await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setImmediate(r));
    gc();
    const kept = new Set(internals.byConn.keys());
    const alive = olds.map((w) => w.deref()).filter((c) => c !== undefined && !kept.has(c));
    expect(s.sessions.length).toBeGreaterThanOrEqual(6);
    expect(alive).toHaveLength(0);
  });
});

