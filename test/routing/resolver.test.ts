import { afterEach, describe, expect, it } from 'vitest';
import dns from 'node:dns';
import { Resolver, dnsErrorClass, DNS_ANSWER_LIMIT, type Answer } from '../../src/routing/resolver.js';
import { MailwireError } from '../../src/errors.js';
import { TYPE, encodeMessage, type DnsMessage, type RecordInput } from '../../src/routing/dns-message.js';
import { a, aaaa, cname, deadPort, mx, reply, sleep, startFakeDnsServer, txt, type FakeDnsServer, type Handler } from './dns-fake-server.js';

const servers: FakeDnsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function fake(handler: Handler): Promise<FakeDnsServer> {
  const s = await startFakeDnsServer(handler);
  servers.push(s);
  return s;
}

const silent: Handler = () => null;
const qname = (q: DnsMessage): string => q.questions[0]!.name;

/** A zone as a handler: answers from a record list, NXDOMAIN for names with no record at all. */
function zone(records: RecordInput[], extra: (q: DnsMessage) => Record<string, unknown> = () => ({})): Handler {
  return (q) => {
    const name = qname(q).toLowerCase();
    const type = q.questions[0]!.type;
    const owned = records.filter((r) => r.name.toLowerCase() === name);
    if (owned.length === 0) return reply(q, { rcode: 3, ...extra(q) });
    const answers = owned.filter((r) => r.type === type);
    return reply(q, { aa: true, answers: answers.length > 0 ? answers : owned.filter((r) => r.type === TYPE.CNAME), ...extra(q) });
  };
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; hostname?: string; syscall?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

function resolverFor(...s: (FakeDnsServer | string)[]): Resolver {
  return new Resolver({ servers: s.map((x) => (typeof x === 'string' ? x : x.address)), timeout: 300, tries: 2 });
}

const ZONE: RecordInput[] = [
  mx('example.test', 10, 'mx1.example.test'),
  mx('example.test', 20, 'mx2.example.test.'),
  a('mx1.example.test', '192.0.2.1'),
  a('mx1.example.test', '192.0.2.2'),
  aaaa('mx1.example.test', '2001:db8:0:0:0:0:0:25'),
  aaaa('mx1.example.test', '::ffff:192.0.2.9'),
  txt('example.test', 'v=spf1', ' -all'),
  txt('example.test', new Uint8Array([0x63, 0x61, 0x66, 0xe9])), // 'café' in Latin-1
  txt('example.test', 'caf\u00e9 \u2713'), // UTF-8
  mx('null.example.test', 0, ''),
  {
    name: '_25._tcp.mx1.example.test',
    type: TYPE.TLSA,
    ttl: 300,
    data: { kind: 'tlsa', usage: 3, selector: 1, matchingType: 1, data: Uint8Array.from([1, 2, 3, 4]) },
  },
  cname('www.example.test', 'alias.example.test'),
];

describe('Resolver: answers', () => {
  it('resolves MX, A, AAAA, TXT and TLSA; authenticated false without AD', async () => {
    const s = await fake(zone(ZONE));
    const r = resolverFor(s);
    const mxs = await r.resolveMx('example.test');
    expect([...mxs]).toEqual([
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ]);
    expect(mxs.authenticated).toBe(false);
    expect([...(await r.resolveMx('null.example.test'))]).toEqual([{ exchange: '', priority: 0 }]);
    expect([...(await r.resolve4('mx1.example.test'))]).toEqual(['192.0.2.1', '192.0.2.2']);
    expect([...(await r.resolve6('mx1.example.test.'))]).toEqual(['2001:db8::25', '::ffff:192.0.2.9']);
    expect([...(await r.resolveTxt('example.test'))]).toEqual([['v=spf1', ' -all'], ['caf\u00e9'], ['caf\u00e9 \u2713']]);
    const tlsa = await r.resolveTlsa('_25._tcp.mx1.example.test');
    expect([...tlsa]).toEqual([{ usage: 3, selector: 1, matchingType: 1, data: Uint8Array.from([1, 2, 3, 4]) }]);
  });

  it('asks absolute names, recursion desired, EDNS0 1232 with DO; edns:false sends no OPT', async () => {
    const s = await fake(zone(ZONE));
    await resolverFor(s).resolve4('mx1.example.test.');
    const q = s.received[0]!.query;
    expect(q.questions).toEqual([{ name: 'mx1.example.test', type: TYPE.A, class: 1 }]);
    expect(q.rd).toBe(true);
    expect(q.edns).toMatchObject({ udpSize: 1232, do: true, version: 0 });
    await new Resolver({ servers: [s.address], edns: false }).resolve4('mx1.example.test');
    expect(s.received[1]!.query.edns).toBeUndefined();
  });

  it('uses random IDs and a fresh source port per query', async () => {
    const s = await fake(zone(ZONE));
    const r = resolverFor(s);
    for (let i = 0; i < 8; i++) await r.resolve4('mx1.example.test');
    expect(new Set(s.received.map((x) => x.query.id)).size).toBeGreaterThan(5);
    expect(new Set(s.received.map((x) => x.port)).size).toBeGreaterThan(5);
  });

  it('reports the AD bit as authenticated', async () => {
    const s = await fake(zone(ZONE, () => ({ ad: true })));
    const r = resolverFor(s);
    const list: Answer<string> = await r.resolve4('mx1.example.test');
    expect(list.authenticated).toBe(true);
    expect((await r.resolveMx('example.test')).authenticated).toBe(true);
    expect((await r.resolveTlsa('_25._tcp.mx1.example.test')).authenticated).toBe(true);
  });

  it('follows a CNAME chain inside the answer (names compared case-insensitively)', async () => {
    const s = await fake((q) =>
      reply(q, {
        answers: [cname('WWW.example.test', 'b.Example.test'), a('other.example.test', '192.0.2.99'), cname('B.example.test', 'c.example.test'), a('C.EXAMPLE.TEST', '192.0.2.3')],
      }),
    );
    expect([...(await resolverFor(s).resolve4('www.example.test'))]).toEqual(['192.0.2.3']);
  });

  it('a CNAME loop or a chain leaving the answer is ENODATA', async () => {
    const s = await fake((q) =>
      reply(q, {
        answers:
          qname(q) === 'loop.example.test'
            ? [cname('loop.example.test', 'x.example.test'), cname('x.example.test', 'LOOP.example.test')]
            : [cname('open.example.test', 'elsewhere.example.test')],
      }),
    );
    const r = resolverFor(s);
    expect((await rejection(r.resolve4('loop.example.test'))).code).toBe('ENODATA');
    expect((await rejection(r.resolve4('open.example.test'))).code).toBe('ENODATA');
  });

  it('ignores records of other types, classes and owners', async () => {
    const s = await fake((q) =>
      reply(q, {
        answers: [aaaa('h.example.test', '::1'), { ...a('h.example.test', '192.0.2.7'), class: 3 }, a('i.example.test', '192.0.2.8'), a('h.example.test', '192.0.2.9')],
      }),
    );
    expect([...(await resolverFor(s).resolve4('h.example.test'))]).toEqual(['192.0.2.9']);
  });

  it(`caps answers at ${DNS_ANSWER_LIMIT} records (truncated over UDP, full over TCP)`, async () => {
    const many = Array.from({ length: 150 }, (_, i) => a('big.example.test', `10.0.${i >> 8}.${i & 255}`));
    const s = await fake((q, transport) => (transport === 'udp' ? reply(q, { tc: true, answers: many.slice(0, 10) }) : reply(q, { answers: many })));
    const list = await resolverFor(s).resolve4('big.example.test');
    expect(list).toHaveLength(100);
    expect(list[99]).toBe('10.0.0.99');
    expect(s.received.map((x) => x.transport)).toEqual(['udp', 'tcp']);
  });
});

describe('Resolver: errors', () => {
  it.each([
    [3, 'ENOTFOUND', 'notfound'],
    [2, 'ESERVFAIL', 'retry'],
    [5, 'EREFUSED', 'fail'],
    [4, 'ENOTIMP', 'fail'],
    [9, 'EBADRESP', 'inval'],
  ])('rcode %i → %s (%s)', async (rcode, code, klass) => {
    const s = await fake((q) => reply(q, { rcode }));
    const err = await rejection(resolverFor(s).resolveMx('example.test'));
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code, hostname: 'example.test', syscall: 'queryMx' });
    expect(err.message).toMatch(new RegExp(`^queryMx ${code} example\\.test`));
    expect(dnsErrorClass(err)).toBe(klass);
  });

  it('NOERROR without a record of the type → ENODATA (notfound)', async () => {
    const s = await fake(zone(ZONE));
    const err = await rejection(resolverFor(s).resolve6('example.test'));
    expect(err).toMatchObject({ code: 'ENODATA', syscall: 'queryAaaa', hostname: 'example.test' });
    expect(dnsErrorClass(err)).toBe('notfound');
  });

  it('FORMERR → EFORMERR at once (inval); FORMERR to EDNS without OPT → asked again without EDNS', async () => {
    const s = await fake((q) => reply(q, { rcode: 1 }));
    expect(dnsErrorClass(await rejection(resolverFor(s, s).resolve4('x.example.test')))).toBe('inval');
    expect(s.received).toHaveLength(1); // the reply had OPT: the query itself was bad, nobody else is asked
    const old = await fake((q) => (q.edns ? { id: q.id, qr: true, rcode: 1, questions: q.questions } : reply(q, { answers: [a(qname(q), '192.0.2.4')] })));
    expect([...(await resolverFor(old).resolve4('x.example.test'))]).toEqual(['192.0.2.4']);
    expect(old.received.map((x) => !!x.query.edns)).toEqual([true, false]);
  });

  it('SERVFAIL is asked of every server each try; REFUSED servers are not asked again', async () => {
    const sf = await fake((q) => reply(q, { rcode: 2 }));
    const ok = await fake(zone(ZONE));
    expect([...(await resolverFor(sf, ok).resolve4('mx1.example.test'))]).toEqual(['192.0.2.1', '192.0.2.2']);
    const sf2 = await fake((q) => reply(q, { rcode: 2 }));
    expect((await rejection(resolverFor(sf2, sf2.address).resolve4('a.example.test'))).code).toBe('ESERVFAIL');
    expect(sf2.received).toHaveLength(4);
    const ref = await fake((q) => reply(q, { rcode: 5 }));
    const sf3 = await fake((q) => reply(q, { rcode: 2 }));
    const err = await rejection(resolverFor(ref, sf3).resolve4('a.example.test'));
    expect(ref.received).toHaveLength(1);
    expect(sf3.received).toHaveLength(2);
    expect(err.code).toBe('ESERVFAIL'); // a transient error anywhere wins: try again later
  });

  it('bad names reject with EBADNAME before any query', async () => {
    const s = await fake(zone(ZONE));
    const r = resolverFor(s);
    for (const name of ['', 'a..example', `${'x'.repeat(64)}.example`, `${'abcdefghi.'.repeat(25)}abcd`, 'bücher.example']) {
      const err = await rejection(r.resolve4(name));
      expect(err).toMatchObject({ code: 'EBADNAME', hostname: name, syscall: 'queryA' });
      expect(dnsErrorClass(err)).toBe('inval');
    }
    expect(s.received).toHaveLength(0);
  });

  it('a malformed reply that repeats ID and question → EBADRESP (next server asked)', async () => {
    const s = await fake((q) => {
      const b = encodeMessage(reply(q, { answers: [a(qname(q), '192.0.2.1')] }));
      return b.subarray(0, b.length - 2);
    });
    const err = await rejection(new Resolver({ servers: [s.address], tries: 1, timeout: 2000 }).resolve4('a.example.test'));
    expect(err.code).toBe('EBADRESP');
    expect(dnsErrorClass(err)).toBe('inval');
  });

  it('nothing listening (ICMP port unreachable) → ECONNREFUSED without waiting for the timeout', async () => {
    const port = await deadPort();
    const t0 = Date.now();
    const err = await rejection(new Resolver({ servers: [`127.0.0.1:${port}`], timeout: 3000 }).resolve4('a.example.test'));
    expect(err.code).toBe('ECONNREFUSED');
    expect(dnsErrorClass(err)).toBe('retry');
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe('Resolver: timeouts, failover, abort', () => {
  it('a server that never answers: ETIMEOUT after timeout × tries × servers, rounds in server order', async () => {
    const s1 = await fake(silent);
    const s2 = await fake(silent);
    const t0 = Date.now();
    const err = await rejection(new Resolver({ servers: [s1.address, s2.address], timeout: 200, tries: 2 }).resolveMx('example.test'));
    const elapsed = Date.now() - t0;
    expect(err).toMatchObject({ code: 'ETIMEOUT', syscall: 'queryMx', hostname: 'example.test' });
    expect(dnsErrorClass(err)).toBe('retry');
    expect(elapsed).toBeGreaterThanOrEqual(790);
    expect(elapsed).toBeLessThan(800 + 300);
    const order = [...s1.received.map((x) => ({ s: 1, at: x.at })), ...s2.received.map((x) => ({ s: 2, at: x.at }))].sort((x, y) => x.at - y.at);
    expect(order.map((x) => x.s)).toEqual([1, 2, 1, 2]);
    console.log(`ETIMEOUT after ${elapsed} ms (timeout 200 × tries 2 × servers 2 = 800)`);
  });

  it('the second server answers after the first timed out', async () => {
    const s1 = await fake(silent);
    const s2 = await fake(zone(ZONE));
    const t0 = Date.now();
    expect([...(await resolverFor(s1, s2).resolve4('mx1.example.test'))]).toEqual(['192.0.2.1', '192.0.2.2']);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(600);
  });

  it('a late answer on a timed-out try still counts', async () => {
    const slow = await fake((q) => ({ delay: 400, send: reply(q, { answers: [a(qname(q), '192.0.2.5')] }) }));
    const s2 = await fake(silent);
    const t0 = Date.now();
    expect([...(await resolverFor(slow, s2).resolve4('late.example.test'))]).toEqual(['192.0.2.5']);
    expect(Date.now() - t0).toBeLessThan(600);
    expect(s2.received).toHaveLength(1);
  });

  it('abort mid-query rejects at once with ECANCELLED / AbortError', async () => {
    const s = await fake(silent);
    const r = new Resolver({ servers: [s.address], timeout: 5000 });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error('shutdown')), 50);
    const err = await rejection(r.resolveMx('example.test', { signal: ac.signal }));
    expect(Date.now() - t0).toBeLessThan(500);
    expect(err).toMatchObject({ code: 'ECANCELLED', name: 'AbortError', syscall: 'queryMx', hostname: 'example.test' });
    expect((err as Error).cause).toEqual(new Error('shutdown'));
    expect(dnsErrorClass(err)).toBe('retry');
  });

  it('an already aborted signal sends nothing', async () => {
    const s = await fake(zone(ZONE));
    const err = await rejection(resolverFor(s).resolve4('mx1.example.test', { signal: AbortSignal.abort() }));
    expect(err.code).toBe('ECANCELLED');
    await sleep(50);
    expect(s.received).toHaveLength(0);
  });

  it('abort while waiting for the next try and while on TCP', async () => {
    const s = await fake((q, t) => (t === 'udp' ? reply(q, { tc: true }) : null));
    const t0 = Date.now();
    const err = await rejection(
      new Resolver({ servers: [s.address], timeout: 5000 }).resolve4('tcp.example.test', { signal: AbortSignal.timeout(150) }),
    );
    expect(err.code).toBe('ECANCELLED');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.received.map((x) => x.transport)).toEqual(['udp', 'tcp']);
  });
});

describe('Resolver: spoofing defense', () => {
  it('ignores replies with another ID, name, type or class, and from another port; takes the real one', async () => {
    const s = await fake((q) => {
      const good = reply(q, { answers: [a(qname(q), '192.0.2.10')] });
      return [
        { ...good, id: (q.id + 1) & 0xffff, answers: [a(qname(q), '6.6.6.6')] },
        { ...good, questions: [{ name: 'evil.example.test', type: 1, class: 1 }], answers: [a('evil.example.test', '6.6.6.6')] },
        { ...good, questions: [{ ...q.questions[0]!, type: TYPE.AAAA }] },
        { ...good, questions: [{ ...q.questions[0]!, class: 3 }] },
        { ...good, qr: false },
        new Uint8Array([1, 2, 3]),
        { delay: 100, send: good },
      ];
    });
    s.handler = ((orig) => (q, t, srv) => {
      void srv.sendFromOtherPort(encodeMessage(reply(q, { answers: [a(qname(q), '6.6.6.6')] }))).catch(() => {});
      return orig(q, t, srv);
    })(s.handler);
    const list = await new Resolver({ servers: [s.address], timeout: 2000, tries: 1 }).resolve4('Target.example.test');
    expect([...list]).toEqual(['192.0.2.10']);
  });

  it('accepts the question echoed in another case', async () => {
    const s = await fake((q) => reply(q, { questions: [{ ...q.questions[0]!, name: qname(q).toUpperCase() }], answers: [a('TARGET.EXAMPLE.TEST', '192.0.2.11')] }));
    expect([...(await resolverFor(s).resolve4('target.example.test'))]).toEqual(['192.0.2.11']);
  });

  it('over TCP a truncated reply is taken as it is', async () => {
    const s = await fake((q, t) => reply(q, { tc: true, answers: [a(qname(q), t === 'udp' ? '192.0.2.1' : '192.0.2.2')] }));
    expect([...(await resolverFor(s).resolve4('x.example.test'))]).toEqual(['192.0.2.2']);
  });

  it('over TCP a reply that does not match is EBADRESP', async () => {
    const s = await fake((q, t) => (t === 'udp' ? reply(q, { tc: true }) : reply(q, { id: q.id ^ 1 })));
    expect((await rejection(new Resolver({ servers: [s.address], tries: 1 }).resolve4('x.example.test'))).code).toBe('EBADRESP');
  });
});

describe('Resolver: resources', () => {
  const handles = (): string[] => process.getActiveResourcesInfo().filter((h) => h !== 'TTYWrap' && h !== 'PipeWrap').sort();

  it('leaves no socket or timer behind after answers, timeouts, TCP and aborts', async () => {
    const s = await fake((q, t) => {
      const n = qname(q);
      if (n.startsWith('silent')) return null;
      if (n.startsWith('tc') && t === 'udp') return reply(q, { tc: true });
      return reply(q, { answers: [a(n, '192.0.2.1')] });
    });
    const ac = new AbortController();
    await sleep(20);
    const before = handles();
    const r = new Resolver({ servers: [s.address], timeout: 100, tries: 1 });
    await r.resolve4('ok.example.test');
    await r.resolve4('tc.example.test');
    await rejection(r.resolve4('silent.example.test'));
    const p = rejection(r.resolve4('silent2.example.test', { signal: ac.signal }));
    ac.abort();
    await p;
    await sleep(20);
    // Nothing of ours is left: no more handles of any kind than before (others' timers may have ended).
    const count = (list: string[]): Record<string, number> => list.reduce<Record<string, number>>((m, h) => ({ ...m, [h]: (m[h] ?? 0) + 1 }), {});
    const after = count(handles());
    const was = count(before);
    for (const [kind, n] of Object.entries(after)) expect(n, kind).toBeLessThanOrEqual(was[kind] ?? 0);
  });
});

describe('Resolver: options', () => {
  it('defaults to the system servers, formats servers, rejects bad options with EOPTION', () => {
    const system = dns.getServers();
    expect(new Resolver().getServers().length).toBe(system.length || 1);
    expect(new Resolver({ servers: ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:53', '[::1]'] }).getServers()).toEqual([
      '127.0.0.1:53',
      '127.0.0.1:5353',
      '[::1]:53',
      '[::1]:53',
      '[::1]:53',
    ]);
    for (const o of [{ servers: ['example.org'] }, { servers: ['1.2.3.4:0'] }, { servers: [] }, { timeout: 0 }, { tries: 0 }, { tries: 1.5 }]) {
      expect(() => new Resolver(o as never)).toThrow(MailwireError);
    }
  });
});

describe('Resolver: same results as Node (c-ares) for the same server', () => {
  it('MX, A, AAAA (address text), TXT and error codes match dns.promises', async () => {
    const addrs = ['::', '::1', '1::', '2001:db8::1:0:0:1', '2001:db8:0:1::1', '::ffff:1.2.3.4', '::1.2.3.4', '::0.0.0.1', 'fe80::1:2', '1:0:1:0:1:0:1:0', '0:0:1::'];
    const records = [...ZONE.filter((r) => r.type !== TYPE.TXT || r.data instanceof Uint8Array || (r.data.kind === 'txt' && r.data.strings.every((x) => x.every((b) => b < 0x80)))), ...addrs.map((x) => aaaa('v6.example.test', x))];
    const s = await fake(zone(records));
    const ours = resolverFor(s);
    const node = new dns.promises.Resolver({ timeout: 300, tries: 1 });
    node.setServers([s.address]);
    expect([...(await ours.resolve6('v6.example.test'))]).toEqual(await node.resolve6('v6.example.test'));
    expect([...(await ours.resolveMx('example.test'))]).toEqual(await node.resolveMx('example.test'));
    expect([...(await ours.resolve4('mx1.example.test'))]).toEqual(await node.resolve4('mx1.example.test'));
    expect([...(await ours.resolveTxt('example.test'))]).toEqual(await node.resolveTxt('example.test'));
    for (const [name, f] of [
      ['nowhere.example.test', 'resolve4'],
      ['example.test', 'resolve6'],
    ] as const) {
      const mine = await rejection(ours[f](name));
      const theirs = await rejection(node[f](name));
      expect({ code: mine.code, syscall: mine.syscall, hostname: mine.hostname }).toEqual({
        code: theirs.code,
        syscall: theirs.syscall,
        hostname: theirs.hostname,
      });
    }
  });
});
