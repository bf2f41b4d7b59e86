// DANE (RFC 7672; POSTFIX-BEHAVIOR.md §1.6 "DANE", REQUIREMENTS.md TLS-6, TLS-7, TLS-25) through a
// real validating resolver: unbound serves dane.test signed with ldns-signzone (its KSK's DS is
// unbound's trust anchor, so answers carry AD) and insecure.test unsigned (no AD). TLSA records
// sit at _PORT._tcp.HOST for the lab port; every MX host is a Postfix smtpd with the harness's
// "good" certificate (peers.sh tls_zone_dane, tls_zone_insecure).
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { deliver, Resolver } from '../../src/index.js';
import type { DeliverOptions, DeliveryResult, TlsPolicy } from '../../src/index.js';
import {
  LogCursor,
  peers,
  plainMessage,
  reachedMail,
  routeLab,
  settledDnsQueries,
  settledRouteSessions,
  TLS,
  tlsFailureOf,
  tlsLab,
  tlsOf,
  token,
  Transcript,
  type SmtpdSession,
} from './helpers.js';

const P = peers();
const L = routeLab();
const T = tlsLab();
const PORT = T.port;
const SENDER = 'sender@client.test';
const resolver = new Resolver({ servers: [L.dns], timeout: 2000 });

interface Run {
  r: DeliveryResult;
  t: Transcript;
  why: string;
  sessions: (atLeast?: number) => Promise<SmtpdSession[]>;
  queries: () => Promise<Array<{ name: string; type: string }>>;
}

/** deliver() to alice@example.test at `DOMAIN:PORT` with DNSSEC on and the given TLS policy. */
async function run(label: string, domain: string, tls: TlsPolicy, options: DeliverOptions = {}): Promise<Run> {
  const t = new Transcript();
  const pf = new LogCursor(P.postfixLog);
  const dns = new LogCursor(L.dnsLog);
  const r = await deliver({ from: SENDER, to: ['alice@example.test'], message: plainMessage(token(label), SENDER) }, `${domain}:${PORT}`, {
    resolver,
    dnsSupportLevel: 'dnssec',
    tls,
    heloName: 'client.test',
    randomizeAddresses: false,
    onEvent: t.onEvent,
    ...options,
  });
  const why = t.explain(r);
  t.expectKnownOptions(why);
  return {
    r,
    t,
    why,
    sessions: (atLeast = 0) => settledRouteSessions(pf, { atLeast, lab: 'tls' }),
    queries: () => settledDnsQueries(dns),
  };
}

const tlsa = (hostname: string): { name: string; type: string } => ({ name: `_${PORT}._tcp.${hostname}`, type: 'TLSA' });

describe('the lab resolver validates dane.test and not insecure.test', () => {
  it('dane.test answers are authenticated (AD), insecure.test answers are not; the TLSA records are there', async () => {
    expect((await resolver.resolveMx('dane.test')).authenticated).toBe(true);
    const records = await resolver.resolveTlsa(`_${PORT}._tcp.mx.dane.test`);
    expect(records.authenticated).toBe(true);
    expect(records.map((x) => [x.usage, x.selector, x.matchingType])).toEqual([[3, 1, 1]]);
    expect((await resolver.resolveTlsa(`_${PORT}._tcp.mxta.dane.test`)).map((x) => x.usage)).toEqual([2]);
    expect((await resolver.resolveMx('insecure.test')).authenticated).toBe(false);
    expect((await resolver.resolveTlsa(`_${PORT}._tcp.mx.insecure.test`)).authenticated).toBe(false);
  });
});

/** `openssl s_client` with OpenSSL's own DANE code, fed the TLSA records from the lab resolver. */
async function opensslDane(hostname: string, address: string): Promise<string> {
  const records = await resolver.resolveTlsa(`_${PORT}._tcp.${hostname}`);
  const args = ['s_client', '-starttls', 'smtp', '-connect', `${address}:${PORT}`, '-brief', '-dane_tlsa_domain', hostname];
  for (const x of records) args.push('-dane_tlsa_rrdata', `${x.usage} ${x.selector} ${x.matchingType} ${Buffer.from(x.data).toString('hex')}`);
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin.end('QUIT\r\n');
  await new Promise<void>((resolve) => child.on('close', () => resolve()));
  return out;
}

describe("the zone's TLSA records, checked by OpenSSL's DANE code against the servers", () => {
  it('mx.dane.test: 3 1 1 matches the EE certificate; mxta: 2 1 1 matches the TA; mxbad: no match', async () => {
    expect(await opensslDane('mx.dane.test', TLS.daneee)).toMatch(/DANE TLSA 3 1 1 \S+ matched EE certificate at depth 0/);
    expect(await opensslDane('mxta.dane.test', TLS.daneta)).toMatch(/DANE TLSA 2 1 1 \S+ matched TA certificate at depth 1/);
    expect(await opensslDane('mxbad.dane.test', TLS.danebad)).toMatch(/no matching DANE TLSA records/);
  });
});

describe('level dane (TLS-6)', () => {
  it('DANE-EE (TLSA 3 1 1 of the server key): relayed, verified; the TLSA record was looked up', async () => {
    const { r, why, sessions, queries } = await run('dane-ee', 'dane.test', { level: 'dane' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.daneee, remoteMta: 'dns; mx.dane.test' });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true, level: 'dane' });
    expect(await queries(), why).toContainEqual(tlsa('mx.dane.test'));
    const s = await sessions(1);
    expect(s.map((v) => [v.server, v.commands.starttls, v.commands.mail]), why).toEqual([['daneee', '1', '1']]);
  });

  it('DANE-TA (TLSA 2 1 1 of the harness CA; the name mxta.dane.test is in the certificate): relayed, verified', async () => {
    const { r, why } = await run('dane-ta', 'ta.dane.test', { level: 'dane' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.daneta });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true, level: 'dane' });
  });

  it('a TLSA record that matches nothing, at the only MX: delayed 4.7.5, no MAIL sent', async () => {
    const { r, why, sessions } = await run('dane-bad', 'bad.dane.test', { level: 'dane' });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(r.recipients[0]!.reason, why).toContain('Server certificate not verified');
    expect(['validation-failure', 'tlsa-invalid'], why).toContain(tlsFailureOf(r.recipients[0])?.resultType);
    expect(tlsFailureOf(r.recipients[0]), why).toMatchObject({ receivingMxHostname: 'mxbad.dane.test', receivingIp: TLS.danebad });
    const s = await sessions(1);
    expect(s.map((v) => v.server), why).toEqual(['danebad']);
    expect(reachedMail(s), why).toEqual([]);
  });

  it('the mismatch at MX 10, DANE-EE at MX 20: the next MX relays, verified', async () => {
    const { r, why, sessions } = await run('dane-next', 'badnext.dane.test', { level: 'dane' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.daneee });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true });
    expect(r.attempts.map((a) => [a.host, a.outcome, a.status]), why).toEqual([
      ['mxbad.dane.test', 'session-failed', '4.7.5'],
      ['mx.dane.test', 'completed', undefined],
    ]);
    expect(reachedMail(await sessions(2)), why).toEqual(['daneee']);
  });

  it('signed zone, but no TLSA record for the MX host: dane acts as may (relayed over TLS, not verified)', async () => {
    const { r, why, queries } = await run('dane-notlsa', 'notlsa.dane.test', { level: 'dane' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.daneee });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: false });
    expect(await queries(), why).toContainEqual(tlsa('mxnotlsa.dane.test'));
  });

  it('unsigned zone (no AD): dane acts as may; its TLSA record (zeros) is ignored: relayed over TLS, not verified', async () => {
    const { r, why, sessions } = await run('dane-insecure', 'insecure.test', { level: 'dane' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.insecure });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: false });
    expect(tlsFailureOf(r.recipients[0]), why).toBeUndefined();
    const s = await sessions(1);
    expect(s.map((v) => [v.server, v.commands.starttls, v.commands.mail]), why).toEqual([['insecure', '1', '1']]);
  });

  it('without dnsSupportLevel dnssec, dane falls back to may (Postfix warns): relayed, not verified even where TLSA exists', async () => {
    const { r, t, why } = await run('dane-nodnssec', 'dane.test', { level: 'dane' }, { dnsSupportLevel: 'enabled' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.daneee });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: false });
    expect(t.events.filter((e) => e.type === 'warning').length, `a warning event\n${why}`).toBeGreaterThan(0);
  });
});

describe('level dane-only (TLS-7): no usable TLSA, no connection', () => {
  it('DANE-EE match: relayed, verified', async () => {
    const { r, why } = await run('daneonly-ee', 'dane.test', { level: 'dane-only' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.daneee });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true, level: 'dane-only' });
  });

  it('unsigned zone: refused, delayed 4.7.5; no session reached MAIL', async () => {
    const { r, why, sessions } = await run('daneonly-insecure', 'insecure.test', { level: 'dane-only' });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(reachedMail(await sessions(0)), why).toEqual([]);
  });

  it('signed zone without TLSA for the MX host: refused, delayed 4.7.5; no session reached MAIL', async () => {
    const { r, why, sessions } = await run('daneonly-notlsa', 'notlsa.dane.test', { level: 'dane-only' });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(reachedMail(await sessions(0)), why).toEqual([]);
  });
});
