// Routing against a real DNS server and real SMTP servers: unbound serves the zone route.test
// (peers.sh route_zone) and every MX host is a Postfix smtpd listener at its own 127.0.0.x on
// one port, so `domain:PORT` reaches each MX host at PORT (DEST-1). The servers' maillog tells
// how many sessions each one saw and how far they got; unbound's log shows every query.
// Expected outcomes are Postfix's (POSTFIX-BEHAVIOR.md §1.1-1.2; REQUIREMENTS.md DEST-*, MX-*).
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { deliver, Resolver } from '../../src/index.js';
import type { DeliverOptions, DeliveryResult } from '../../src/index.js';
import {
  esc,
  LogCursor,
  maildirFilesWith,
  peers,
  plainMessage,
  reachedMail,
  ROUTE,
  routeLab,
  settledDnsQueries,
  settledRouteSessions,
  smtpNexthop,
  token,
  Transcript,
  waitForMaildirFile,
  type SmtpdSession,
} from './helpers.js';

const P = peers();
const L = routeLab();
const PORT = L.port;
const SENDER = 'sender@client.test';
const GREET421 = '421 4.3.2 <unknown[127.0.0.1]>: Client host rejected: interop: this server greets 421';
const MAIL451 = `451 4.3.0 <${SENDER}>: Sender address rejected: interop: try MAIL again later`;

const resolver = new Resolver({ servers: [L.dns], timeout: 2000 });

/** `NAME.route.test:PORT`: an MX destination whose hosts are all reached at PORT. */
const dest = (name: string): string => `${name}.${L.zone}:${PORT}`;
const host = (name: string): string => `${name}.${L.zone}`;

interface Run {
  r: DeliveryResult;
  t: Transcript;
  why: string;
  ms: number;
  tok: string;
  sessions: () => Promise<SmtpdSession[]>;
  queries: () => Promise<Array<{ name: string; type: string }>>;
}

/**
 * deliver() with the lab's resolver, TLS off and addresses in DNS order; the transcript, the
 * elapsed time and the route servers' sessions and DNS queries logged during the call.
 */
async function run(label: string, to: string[], destination: string, options: DeliverOptions = {}, atLeastSessions = 0): Promise<Run> {
  const tok = token(label);
  const t = new Transcript();
  const pf = new LogCursor(P.postfixLog);
  const dns = new LogCursor(L.dnsLog);
  const started = performance.now();
  const r = await deliver({ from: SENDER, to, message: plainMessage(tok, SENDER) }, destination, {
    resolver,
    tls: { level: 'none' },
    heloName: 'client.test',
    randomizeAddresses: false,
    onEvent: t.onEvent,
    ...options,
  });
  const ms = performance.now() - started;
  const why = t.explain(r);
  t.expectKnownOptions(why);
  return { r, t, why, ms, tok, sessions: () => settledRouteSessions(pf, { atLeast: atLeastSessions }), queries: () => settledDnsQueries(dns) };
}

/** The session lists per server name, e.g. { ok: 1, mx421: 1 }. */
function perServer(sessions: SmtpdSession[]): Record<string, number> {
  const n: Record<string, number> = {};
  for (const s of sessions) n[s.server] = (n[s.server] ?? 0) + 1;
  return n;
}

/** Sessions that got as far as sending MAIL FROM (the disconnect line counts mail=...). */

/** One stored copy per recipient, found by the test's token (no duplicate delivery). */
async function expectOneCopy(maildir: string, tok: string, why: string): Promise<string> {
  const file = (await waitForMaildirFile(`${P.postfixMaildirs}/${maildir}`, tok)).toString('latin1');
  expect(maildirFilesWith(`${P.postfixMaildirs}/${maildir}`, tok), `${maildir}: exactly one copy\n${why}`).toHaveLength(1);
  return file;
}

describe('the lab DNS (unbound, zone route.test)', () => {
  it('answers the zone, NXDOMAIN for absent names, and refuses every name outside it (nothing recurses)', async () => {
    expect([...(await resolver.resolveMx(host('failover')))].sort((a, b) => a.priority - b.priority)).toEqual([
      { exchange: host('dead'), priority: 10 },
      { exchange: host('ok'), priority: 20 },
    ]);
    expect([...(await resolver.resolve4(host('ok')))]).toEqual([ROUTE.ok]);
    await expect(resolver.resolveMx(host('nxdomain'))).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve4('example.com')).rejects.toMatchObject({ code: 'EREFUSED' });
  });
});

describe('MX failover (MX-1, MX-23)', () => {
  it('dead first MX (connection refused): the second MX relays; attempts show connect-failed 4.4.1, then completed', async () => {
    const { r, why, tok, sessions } = await run('failover', ['alice@example.test', 'bob@example.test'], dest('failover'), {}, 1);
    for (const x of r.recipients) {
      expect(x, why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: ROUTE.ok, remoteMta: `dns; ${host('ok')}` });
    }
    expect(r.attempts, why).toHaveLength(2);
    expect(r.attempts[0], why).toMatchObject({ host: host('dead'), address: ROUTE.dead, port: PORT, preference: 10, outcome: 'connect-failed', status: '4.4.1' });
    expect(r.attempts[0]!.reason, why).toBe(`connect to ${host('dead')}[${ROUTE.dead}]:${PORT}: Connection refused`);
    expect(r.attempts[1], why).toMatchObject({ host: host('ok'), address: ROUTE.ok, port: PORT, preference: 20, outcome: 'completed' });
    expect(perServer(await sessions()), why).toEqual({ ok: 1 });
    await expectOneCopy('example.test/alice', tok, why);
    await expectOneCopy('example.test/bob', tok, why);
  });

  it('first MX greets 421: the second MX relays (a 4xx greeting always skips to the next server, MX-25)', async () => {
    const { r, why, sessions } = await run('greet421', ['alice@example.test'], dest('greet421'), {}, 2);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: ROUTE.ok });
    expect(r.attempts.map((a) => [a.address, a.outcome]), why).toEqual([
      [ROUTE.mx421, 'session-failed'],
      [ROUTE.ok, 'completed'],
    ]);
    expect(r.attempts[0], why).toMatchObject({ stage: 'greeting', status: '4.3.2', reason: `host ${host('mx421')}[${ROUTE.mx421}] refused to talk to me: ${GREET421}` });
    const s = await sessions();
    expect(perServer(s), why).toEqual({ mx421: 1, ok: 1 });
    expect(s[0]!.rejects[0], why).toContain('reject: CONNECT from');
  });

  it('450 at RCPT for one recipient at MX 10: only that recipient is retried, at MX 20, which sees only it', async () => {
    const to = ['alice@example.test', 'defer-4xx@example.test', 'bob@example.test'];
    const { r, t, why, tok, sessions } = await run('rcpt4xx', to, dest('rcpt4xx'), {}, 2);
    expect(r.recipients.map((x) => [x.recipient, x.action, x.status, x.remoteAddress]), why).toEqual([
      ['alice@example.test', 'relayed', '2.0.0', ROUTE.mx450],
      ['defer-4xx@example.test', 'relayed', '2.0.0', ROUTE.ok],
      ['bob@example.test', 'relayed', '2.0.0', ROUTE.mx450],
    ]);
    expect(r.attempts.map((a) => [a.address, a.outcome]), why).toEqual([
      [ROUTE.mx450, 'completed'],
      [ROUTE.ok, 'completed'],
    ]);
    // the client's side: RCPT for defer-4xx twice (once per server), for the others once
    const rcpts = t.sent().flatMap((l) => /^RCPT TO:<([^>]*)>/.exec(l)?.[1] ?? []);
    expect(rcpts, why).toEqual(['alice@example.test', 'defer-4xx@example.test', 'bob@example.test', 'defer-4xx@example.test']);
    // the servers' side: mx450 accepted 2 of 3 RCPTs; ok saw exactly one RCPT
    const s = await sessions();
    expect(s.map((x) => [x.server, x.commands.rcpt]), why).toEqual([
      ['mx450', '2/3'],
      ['ok', '1'],
    ]);
    expect(s[0]!.rejects.join('\n'), why).toMatch(/450 4\.2\.0 <defer-4xx@example\.test>: Recipient address rejected/);
    // and in the mailboxes: one copy each, defer-4xx's through ok (catch-all maildir)
    await expectOneCopy('example.test/alice', tok, why);
    await expectOneCopy('example.test/bob', tok, why);
    const copy = await expectOneCopy('catchall', tok, why);
    expect(copy, why).toMatch(/^X-Original-To: defer-4xx@example\.test$/m);
    expect(copy, why).toMatch(/by ok\.route\.test \(Postfix\)/);
  });
});

describe('what DNS says decides (MX-2, MX-3, MX-4)', () => {
  it('null MX: every recipient failed 5.1.10 (RFC 7505; Postfix says 5.1.0), no A/AAAA lookup, the canary sees no connection', async () => {
    const { r, t, why, sessions, queries } = await run('nullmx', ['alice@example.test', 'bob@example.test'], dest('nullmx'));
    for (const x of r.recipients) {
      expect(x, why).toMatchObject({ action: 'failed', status: '5.1.10', reason: `Domain ${host('nullmx')} does not accept mail (nullMX)` });
      expect(x.diagnosticCode, why).toBeUndefined();
      expect(x.remoteMta, why).toBeUndefined();
    }
    expect(t.events.filter((e) => e.type === 'connect'), why).toEqual([]);
    expect(r.attempts.filter((a) => a.outcome !== 'skipped'), why).toEqual([]);
    expect(await sessions(), why).toEqual([]); // no route server at all, the canary included
    const q = (await queries()).filter((x) => x.name === host('nullmx'));
    expect(q, why).toContainEqual({ name: host('nullmx'), type: 'MX' });
    expect(q.filter((x) => x.type !== 'MX'), `no address lookup after a null MX\n${why}`).toEqual([]);
  });

  it('null MX with a fallback relay: the relay is still tried (MX-3, like every lookup failure)', async () => {
    const { r, why } = await run('nullmx-fallback', ['alice@example.test'], dest('nullmx'), { fallbackRelay: `[${ROUTE.ok}]:${PORT}` }, 1);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: ROUTE.ok });
    expect(r.attempts.some((a) => a.address === ROUTE.canary), why).toBe(false);
  });

  it('implicit MX (no MX, an A record): the domain itself is the host, at the route port', async () => {
    const { r, why, sessions } = await run('implicit', ['alice@example.test'], dest('implicit'), {}, 1);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: ROUTE.ok, remoteMta: `dns; ${host('implicit')}` });
    expect(r.attempts, why).toHaveLength(1);
    expect(r.attempts[0], why).toMatchObject({ host: host('implicit'), address: ROUTE.ok, port: PORT, outcome: 'completed' });
    expect(perServer(await sessions()), why).toEqual({ ok: 1 });
  });

  it('the only MX host does not exist (NXDOMAIN): failed 5.4.4, nothing connects', async () => {
    const { r, t, why } = await run('nxmx', ['alice@example.test', 'bob@example.test'], dest('nxmx'));
    for (const x of r.recipients) {
      expect(x, why).toMatchObject({ action: 'failed', status: '5.4.4' });
      expect(x.reason, why).toMatch(new RegExp(`^Host or domain name not found\\. Name service error for name=${esc(host('missing'))} type=(A|AAAA): Host not found$`));
    }
    expect(t.events.filter((e) => e.type === 'connect'), why).toEqual([]);
  });

  it('the domain does not exist (NXDOMAIN): failed 5.4.4, nothing connects', async () => {
    const { r, t, why } = await run('nxdomain', ['alice@example.test'], dest('nxdomain'));
    expect(r.recipients[0], why).toMatchObject({ action: 'failed', status: '5.4.4' });
    expect(r.recipients[0]!.reason, why).toMatch(new RegExp(`^Host or domain name not found\\. Name service error for name=${esc(host('nxdomain'))} type=(MX|A|AAAA): Host not found$`));
    expect(t.events.filter((e) => e.type === 'connect'), why).toEqual([]);
  });

  it('the DNS server does not answer: every recipient delayed 4.4.3, within timeout x tries (no A fallback, MX-4)', async () => {
    const timeout = 1000;
    const tries = 2;
    const silent = new Resolver({ servers: [L.dnsSilent], timeout, tries });
    // One MX query, asked `tries` times of `timeout` each; then no further lookup may follow.
    const bound = timeout * tries + 1000;
    const { r, t, why, ms } = await run('dns-silent', ['alice@example.test', 'bob@example.test'], dest('failover'), { resolver: silent });
    for (const x of r.recipients) {
      expect(x, why).toMatchObject({ action: 'delayed', status: '4.4.3' });
      expect(x.reason, why).toBe(`Host or domain name not found. Name service error for name=${host('failover')} type=MX: Host not found, try again`);
    }
    expect(t.events.filter((e) => e.type === 'connect'), why).toEqual([]);
    expect(ms, `deliver() took ${Math.round(ms)} ms; bound ${bound} ms\n${why}`).toBeLessThanOrEqual(bound);
    expect(ms, `deliver() took ${Math.round(ms)} ms: it did not wait for the DNS timeout\n${why}`).toBeGreaterThanOrEqual(timeout * 0.9);
  });
});

describe('fallback relay and destination lists (DEST-8, DEST-16)', () => {
  it('every MX dead: delayed 4.4.1 with the last connect error', async () => {
    const { r, why } = await run('allfail', ['alice@example.test'], dest('allfail'));
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.4.1', reason: `connect to ${host('dead2')}[${ROUTE.dead2}]:${PORT}: Connection refused` });
    expect(r.attempts.map((a) => [a.address, a.outcome]), why).toEqual([
      [ROUTE.dead, 'connect-failed'],
      [ROUTE.dead2, 'connect-failed'],
    ]);
  });

  it('every MX dead, fallbackRelay [127.0.0.21]:PORT: relayed by the fallback relay', async () => {
    const relay = `[${ROUTE.ok}]:${PORT}`;
    const { r, why, tok, sessions } = await run('fallback', ['alice@example.test'], dest('allfail'), { fallbackRelay: relay }, 1);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: ROUTE.ok });
    expect(r.attempts.map((a) => [a.nexthop, a.address, a.outcome]), why).toEqual([
      [dest('allfail'), ROUTE.dead, 'connect-failed'],
      [dest('allfail'), ROUTE.dead2, 'connect-failed'],
      [relay, ROUTE.ok, 'completed'],
    ]);
    expect(perServer(await sessions()), why).toEqual({ ok: 1 });
    await expectOneCopy('example.test/alice', tok, why);
  });

  it("a destination list '[127.0.0.1]:P1, [127.0.0.1]:P2' with P1 closed delivers via P2", async () => {
    const closed = await closedPort();
    const first = `[127.0.0.1]:${closed}`;
    const second = smtpNexthop(P.postfix);
    const { r, why } = await run('dest-list', ['alice@example.test'], `${first}, ${second}`);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: '127.0.0.1' });
    expect(r.attempts.map((a) => [a.nexthop, a.port, a.outcome, a.status]), why).toEqual([
      [first, closed, 'connect-failed', '4.4.1'],
      [second, Number(P.postfix.slice(P.postfix.lastIndexOf(':') + 1)), 'completed', undefined],
    ]);
  });
});

describe('limits (MX-9, MX-10)', () => {
  // limit.route.test: MX 10..80 limit1..limit8, all greeting 421.
  it.each([
    { limit: undefined, expected: 5 },
    { limit: 3, expected: 3 },
    { limit: 0, expected: 8 },
  ])('mxAddressLimit $limit: exactly $expected addresses are tried, all delayed with the last 421', async ({ limit, expected }) => {
    const { r, why, sessions } = await run(`limit-${limit}`, ['alice@example.test', 'bob@example.test'], dest('limit'), limit === undefined ? {} : { mxAddressLimit: limit }, expected);
    const last = expected; // limitN is 127.0.0.4N, tried in preference order
    for (const x of r.recipients) {
      expect(x, why).toMatchObject({ action: 'delayed', status: '4.3.2', reason: `host ${host(`limit${last}`)}[${ROUTE.limit[last - 1]}] refused to talk to me: ${GREET421}` });
    }
    expect(r.attempts.map((a) => a.address), why).toEqual(ROUTE.limit.slice(0, expected));
    const s = await sessions();
    expect(s.map((x) => x.server), why).toEqual(Array.from({ length: expected }, (_, i) => `limit${i + 1}`));
  });

  // sesslimit.route.test: MX 10..40 sess1..sess4, EHLO fine, 451 to MAIL.
  it.each([
    { limit: undefined, expected: 2 },
    { limit: 3, expected: 3 },
    { limit: 0, expected: 4 },
  ])('mxSessionLimit $limit: exactly $expected sessions reach MAIL, then delayed with the last 451', async ({ limit, expected }) => {
    const { r, why, sessions } = await run(`sess-${limit}`, ['alice@example.test', 'bob@example.test'], dest('sesslimit'), limit === undefined ? {} : { mxSessionLimit: limit }, expected);
    for (const x of r.recipients) {
      expect(x, why).toMatchObject({ action: 'delayed', status: '4.3.0', reason: `host ${host(`sess${expected}`)}[${ROUTE.sess[expected - 1]}] said: ${MAIL451} (in reply to MAIL FROM command)` });
    }
    // each session ran to its end (QUIT): the 451 was the message's outcome there, not the session's
    expect(r.attempts.map((a) => [a.address, a.outcome, a.status]), why).toEqual(ROUTE.sess.slice(0, expected).map((a) => [a, 'completed', '4.3.0']));
    const s = await sessions();
    expect(s.map((x) => x.server), why).toEqual(Array.from({ length: expected }, (_, i) => `sess${i + 1}`));
    expect(reachedMail(s), why).toEqual(s.map((x) => x.server));
  });

  // sessmix.route.test: MX 10 mx421 (greets 421), MX 20..40 sess1..sess3.
  it('a session that fails the handshake (421 greeting) does not count toward mxSessionLimit', async () => {
    const { r, why, sessions } = await run('sessmix', ['alice@example.test'], dest('sessmix'), {}, 3);
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.3.0', reason: `host ${host('sess2')}[${ROUTE.sess[1]}] said: ${MAIL451} (in reply to MAIL FROM command)` });
    expect(r.attempts.map((a) => [a.address, a.outcome, a.stage]), why).toEqual([
      [ROUTE.mx421, 'session-failed', 'greeting'],
      [ROUTE.sess[0], 'completed', 'quit'],
      [ROUTE.sess[1], 'completed', 'quit'],
    ]);
    const s = await sessions();
    expect(s.map((x) => x.server), why).toEqual(['mx421', 'sess1', 'sess2']);
    expect(reachedMail(s), why).toEqual(['sess1', 'sess2']);
  });
});

describe.skipIf(!L.ipv6)('IPv6 (dual.route.test: MX dualhost, A 127.0.0.20 dead + AAAA ::1)', () => {
  it('the AAAA address is tried too and relays', async () => {
    const { r, why, sessions } = await run('dual', ['alice@example.test'], dest('dual'), {}, 1);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: '::1' });
    // A then AAAA or the other way round (address preference 'any'): ::1 ends it either way
    const tried = r.attempts.map((a) => [a.address, a.outcome]);
    expect([[['::1', 'completed']], [[ROUTE.dead, 'connect-failed'], ['::1', 'completed']]], why).toContainEqual(tried);
    expect(perServer(await sessions()), why).toEqual({ ok6: 1 });
  });

  it("inetProtocols 'ipv4': only the dead A address, delayed 4.4.1", async () => {
    const { r, why } = await run('dual-v4', ['alice@example.test'], dest('dual'), { inetProtocols: 'ipv4' });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.4.1' });
    expect(r.attempts.map((a) => a.address), why).toEqual([ROUTE.dead]);
  });
});

/** A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
