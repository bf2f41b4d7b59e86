// MTA-STS (RFC 8461) end to end: the `_mta-sts` TXT record from the lab's unbound (zone sts.test),
// the policy fetched over real HTTPS from https://mta-sts.DOMAIN/.well-known/mta-sts.txt (the
// harness's Node HTTPS server on 127.0.0.80:443 with a certificate from the harness CA; it logs
// every request), and the MX hosts on Postfix smtpd listeners (peers.sh tls_zone_sts,
// sts_policies):
//   sts.test          enforce, mx: good.sts.test; MX 10 bad.sts.test (not in the policy), MX 20 good.sts.test
//   testing.sts.test  testing, mx: mx.testing.sts.test; that MX presents a certificate for another name
//   badcert.sts.test  enforce, mx: *.badcert.sts.test; its only MX presents a certificate for another name
// The policy cache is mailwire's module-level store, shared by the deliver() calls of this file.
import { describe, expect, it } from 'vitest';
import { deliver, Resolver } from '../../src/index.js';
import type { DeliverOptions, DeliveryResult, TlsPolicy } from '../../src/index.js';
import {
  LogCursor,
  peers,
  plainMessage,
  reachedMail,
  routeLab,
  settledRouteSessions,
  stsFetches,
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
const [MTA_STS_ADDRESS, MTA_STS_PORT] = [T.mtaSts.slice(0, T.mtaSts.lastIndexOf(':')), Number(T.mtaSts.slice(T.mtaSts.lastIndexOf(':') + 1))];

/** One policy for every call: level may plus MTA-STS, the harness CA for the policy host and for the MX hosts. */
const STS: TlsPolicy = { level: 'may', ca: T.ca, mtaSts: { ca: T.ca, port: MTA_STS_PORT, fetchTimeout: 5000 } };

interface Run {
  r: DeliveryResult;
  why: string;
  sessions: (atLeast?: number) => Promise<SmtpdSession[]>;
  /** Policy requests the HTTPS server logged during the call. */
  fetches: () => Array<{ host: string; path: string; status: number }>;
}

async function run(label: string, domain: string, tls: TlsPolicy = STS, options: DeliverOptions = {}): Promise<Run> {
  const t = new Transcript();
  const pf = new LogCursor(P.postfixLog);
  const https = new LogCursor(T.mtaStsLog);
  const r = await deliver({ from: SENDER, to: ['alice@example.test'], message: plainMessage(token(label), SENDER) }, `${domain}:${PORT}`, {
    resolver,
    tls,
    heloName: 'client.test',
    randomizeAddresses: false,
    onEvent: t.onEvent,
    ...options,
  });
  const why = t.explain(r);
  t.expectKnownOptions(why);
  return { r, why, sessions: (atLeast = 0) => settledRouteSessions(pf, { atLeast, lab: 'tls' }), fetches: () => stsFetches(https.lines()) };
}

const WELL_KNOWN = '/.well-known/mta-sts.txt';

describe('the MTA-STS lab', () => {
  it('the TXT records are in the zone and the policy host resolves to the HTTPS server', async () => {
    expect([...(await resolver.resolveTxt('_mta-sts.sts.test'))]).toEqual([[expect.stringMatching(/^v=STSv1; id=\w+;$/)]]);
    expect([...(await resolver.resolve4('mta-sts.sts.test'))]).toEqual([MTA_STS_ADDRESS]);
  });
});

describe('MTA-STS (RFC 8461) with mtaSts: { ca, port }', () => {
  it('enforce: MX 10 bad.sts.test is not in the policy and is skipped; MX 20 good.sts.test relays, verified', async () => {
    const { r, why, sessions, fetches } = await run('sts-enforce', 'sts.test');
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.stsgood, remoteMta: 'dns; good.sts.test' });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true });
    expect(tlsFailureOf(r.recipients[0]), why).toBeUndefined();
    expect(fetches(), why).toEqual([{ host: 'mta-sts.sts.test', path: WELL_KNOWN, status: 200 }]);
    const s = await sessions(1);
    expect(s.map((v) => v.server), `bad.sts.test (${TLS.stsbad}) must never be contacted\n${why}`).toEqual(['stsgood']);
    expect(reachedMail(s), why).toEqual(['stsgood']);
  });

  it('a second deliver() with the same options uses the cached policy: no new HTTPS request', async () => {
    const { r, why, sessions, fetches } = await run('sts-cached', 'sts.test');
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.stsgood });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true });
    expect(fetches(), why).toEqual([]);
    expect((await sessions(1)).map((v) => v.server), why).toEqual(['stsgood']);
  });

  it('enforce, the MX matches the policy (*.badcert.sts.test) but its certificate names someone else: refused, delayed 4.7.5, no MAIL', async () => {
    const { r, why, sessions, fetches } = await run('sts-badcert', 'badcert.sts.test');
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(r.recipients[0]!.reason, why).toContain('Server certificate not verified');
    expect(['certificate-host-mismatch', 'certificate-not-trusted'], why).toContain(tlsFailureOf(r.recipients[0])?.resultType);
    expect(tlsFailureOf(r.recipients[0]), why).toMatchObject({ receivingMxHostname: 'mx.badcert.sts.test', receivingIp: TLS.stswrong });
    expect(fetches(), why).toEqual([{ host: 'mta-sts.badcert.sts.test', path: WELL_KNOWN, status: 200 }]);
    const s = await sessions(1);
    expect(s.map((v) => v.server), why).toEqual(['stswrong']);
    expect(reachedMail(s), why).toEqual([]);
  });

  it('testing: the same certificate problem is reported (tlsFailure) but the message is delivered', async () => {
    const { r, why, sessions, fetches } = await run('sts-testing', 'testing.sts.test');
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.stswrong });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: false });
    expect(['certificate-host-mismatch', 'certificate-not-trusted'], why).toContain(tlsFailureOf(r.recipients[0])?.resultType);
    expect(fetches(), why).toEqual([{ host: 'mta-sts.testing.sts.test', path: WELL_KNOWN, status: 200 }]);
    expect(reachedMail(await sessions(1)), why).toEqual(['stswrong']);
  });

  it('without mtaSts the policy is neither fetched nor applied: MX 10 bad.sts.test relays (level may)', async () => {
    const { r, why, fetches } = await run('sts-off', 'sts.test', { level: 'may' });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.stsbad });
    expect(fetches(), why).toEqual([]);
  });
});
