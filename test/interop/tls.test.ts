// TLS levels against real Postfix smtpd listeners (the TLS lab of peers.sh): the level x server
// matrix of POSTFIX-BEHAVIOR.md §1.6 and REQUIREMENTS.md TLS-2..TLS-10, TLS-21, TLS-26, with the
// RFC 8460 result type of every failure, next-MX failover after a TLS failure, implicit TLS
// (wrapper mode), the plaintext retry at level may and TLS session resumption.
//
// Each server is reached as `[NAME.tls.test]:PORT` (an A lookup at the lab's unbound, no MX
// lookup), so it is the only server of its next hop and the name the certificate is checked
// against is NAME.tls.test (TLS-11: `hostname` equals `nexthop` for a bracketed next hop).
// Besides the results, every case reads Postfix's log: whether TLS was established on the
// server's side, and that no session that failed its TLS check ever reached MAIL (TLS-5).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { deliver, Resolver } from '../../src/index.js';
import type { DeliverOptions, DeliveryResult, TlsPolicy } from '../../src/index.js';
import {
  certFingerprint,
  LogCursor,
  peers,
  plainMessage,
  reachedMail,
  routeLab,
  settledRouteSessions,
  TLS,
  tlsFailureOf,
  tlsLab,
  tlsOf,
  token,
  Transcript,
  waitForMaildirFile,
  type SmtpdSession,
  type TlsServer,
} from './helpers.js';

const P = peers();
const L = routeLab();
const T = tlsLab();
const PORT = T.port;
const SENDER = 'sender@client.test';
const ALICE = 'alice@example.test';
const resolver = new Resolver({ servers: [L.dns], timeout: 2000 });
const GOOD_FINGERPRINT = certFingerprint(`${T.certs}/good.crt`);
const execFileP = promisify(execFile);

const host = (server: TlsServer): string => `${server}.tls.test`;
/** `[NAME.tls.test]:PORT`: that server alone, checked against the name NAME.tls.test. */
const only = (server: TlsServer): string => `[${host(server)}]:${PORT}`;

interface Run {
  r: DeliveryResult;
  t: Transcript;
  why: string;
  tok: string;
  /** The TLS lab's smtpd sessions logged during the call (waits for them to settle). */
  sessions: (atLeast?: number) => Promise<SmtpdSession[]>;
}

/** deliver() one message to alice@example.test with the lab's resolver and the given TLS policy. */
async function run(label: string, destination: string, tls: TlsPolicy, options: DeliverOptions = {}, queuedAt?: Date): Promise<Run> {
  const tok = token(label);
  const t = new Transcript();
  const pf = new LogCursor(P.postfixLog);
  const r = await deliver(
    { from: SENDER, to: [ALICE], message: plainMessage(tok, SENDER), ...(queuedAt ? { queuedAt } : {}) },
    destination,
    { resolver, tls, heloName: 'client.test', randomizeAddresses: false, onEvent: t.onEvent, ...options },
  );
  const why = t.explain(r);
  t.expectKnownOptions(why);
  return { r, t, why, tok, sessions: (atLeast = 0) => settledRouteSessions(pf, { atLeast, lab: 'tls' }) };
}


// ---------------------------------------------------------------- the matrix

const LEVELS = ['none', 'may', 'encrypt', 'fingerprint', 'verify', 'secure'] as const;
type Level = (typeof LEVELS)[number];
const SERVERS = ['good', 'wrongname', 'expired', 'selfsigned', 'plain', 'badtls'] as const;
type MatrixServer = (typeof SERVERS)[number];
const COLUMN: Record<MatrixServer, string> = {
  good: 'good',
  wrongname: 'wrongname',
  expired: 'expired',
  selfsigned: 'selfsigned',
  plain: 'no STARTTLS',
  badtls: 'handshake fails',
};

const POLICY: Record<Level, TlsPolicy> = {
  none: { level: 'none' },
  may: { level: 'may' },
  encrypt: { level: 'encrypt' },
  fingerprint: { level: 'fingerprint', fingerprints: [GOOD_FINGERPRINT], fingerprintDigest: 'sha256' },
  verify: { level: 'verify', ca: T.ca },
  secure: { level: 'secure', ca: T.ca },
};

type Expected =
  /** Relayed in plaintext; `starttls`: whether STARTTLS is on the wire; `retry`: the plaintext retry of the same server. */
  | { action: 'relayed'; tls: false; starttls: boolean; retry?: boolean }
  | { action: 'relayed'; tls: true; verified: boolean }
  | { action: 'delayed'; status: '4.7.4' | '4.7.5'; reason: (server: TlsServer) => string; resultTypes: string[] };

const NOT_OFFERED = (s: TlsServer): string => `TLS is required, but was not offered by host ${host(s)}[${TLS[s]}]`;
const NOT_VERIFIED = (): string => 'Server certificate not verified';
const HANDSHAKE = (): string => 'Cannot start TLS: handshake failure';

/** What Postfix does (POSTFIX-BEHAVIOR.md §1.6 "Enforcement and fallback"), per level and server. */
function expected(level: Level, server: MatrixServer): Expected {
  if (level === 'none') return { action: 'relayed', tls: false, starttls: false };
  if (server === 'plain') {
    return level === 'may'
      ? { action: 'relayed', tls: false, starttls: false }
      : { action: 'delayed', status: '4.7.4', reason: NOT_OFFERED, resultTypes: ['starttls-not-supported'] };
  }
  if (server === 'badtls') {
    return level === 'may'
      ? { action: 'relayed', tls: false, starttls: true, retry: true }
      : { action: 'delayed', status: '4.7.5', reason: HANDSHAKE, resultTypes: ['validation-failure'] };
  }
  if (level === 'may' || level === 'encrypt') return { action: 'relayed', tls: true, verified: false };
  if (server === 'good') return { action: 'relayed', tls: true, verified: true };
  // A fingerprint mismatch has no RFC 8460 type of its own: the pinned key is the trust anchor.
  const resultTypes =
    level === 'fingerprint'
      ? ['certificate-not-trusted', 'validation-failure']
      : { wrongname: ['certificate-host-mismatch'], expired: ['certificate-expired'], selfsigned: ['certificate-not-trusted'] }[server];
  return { action: 'delayed', status: '4.7.5', reason: NOT_VERIFIED, resultTypes };
}

/** The measured cells, printed as a markdown table after the matrix. */
const measured = new Map<string, string>();
const cellKey = (level: Level, server: MatrixServer): string => `${level}/${server}`;

function describeCell(r: DeliveryResult): string {
  const x = r.recipients[0];
  if (!x) return '(no result)';
  const tls = tlsOf(x);
  if (x.action === 'relayed') return tls ? `relayed ${tls.version}${tls.verified ? ' verified' : ''}` : 'relayed, no TLS';
  return `${x.action} ${x.status} ${tlsFailureOf(x)?.resultType ?? '(no tlsFailure)'}`;
}

describe('TLS level x server matrix ([NAME.tls.test]:PORT, one server per next hop)', () => {
  afterAll(() => {
    const header = `| level \\ server | ${SERVERS.map((s) => COLUMN[s]).join(' | ')} |`;
    const rule = `|---|${SERVERS.map(() => '---').join('|')}|`;
    const rows = LEVELS.map((l) => `| ${l} | ${SERVERS.map((s) => measured.get(cellKey(l, s)) ?? '(not run)').join(' | ')} |`);
    console.log(`\nTLS matrix as measured against Postfix (mailwire results; ✗ = differs from Postfix's behavior):\n\n${[header, rule, ...rows].join('\n')}\n`);
  });

  const cases = LEVELS.flatMap((level) => SERVERS.map((server) => ({ level, server, want: expected(level, server) })));
  it.each(cases)('$level x $server', async ({ level, server, want }) => {
    const key = cellKey(level, server);
    measured.set(key, '✗ threw');
    let run_: Run;
    try {
      run_ = await run(`tls-${level}-${server}`, only(server), POLICY[level]);
    } catch (e) {
      measured.set(key, `✗ threw ${(e as Error).message.slice(0, 60)}`);
      throw e;
    }
    const { r, t, why, sessions } = run_;
    const x = r.recipients[0]!;
    const tls = tlsOf(x);
    const failure = tlsFailureOf(x);
    let ok = false;
    try {
      const sent = t.sent();
      if (want.action === 'relayed') {
        expect(x, why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS[server] });
        if (want.tls) {
          expect(tls, why).toMatchObject({ verified: want.verified, level });
          expect(tls!.version, why).toMatch(/^TLSv1\.[23]$/);
          expect(tls!.cipher, why).toBeTruthy();
          expect(sent, why).toContain('STARTTLS');
        } else {
          expect(tls, why).toBeUndefined();
          if (want.starttls) expect(sent, why).toContain('STARTTLS');
          else expect(sent, why).not.toContain('STARTTLS');
        }
        expect(failure, why).toBeUndefined();
      } else {
        expect(x, why).toMatchObject({ action: 'delayed', status: want.status });
        expect(x.reason, why).toContain(want.reason(server));
        // A session whose certificate failed the check may be reported (never as verified);
        // no STARTTLS or a failed handshake leaves none.
        if (want.status === '4.7.4' || server === 'badtls') expect(tls, why).toBeUndefined();
        else if (tls !== undefined) expect(tls.verified, why).toBe(false);
        expect(failure, why).toBeDefined();
        expect(want.resultTypes, `tlsFailure.resultType\n${why}`).toContain(failure!.resultType);
        expect(failure, why).toMatchObject({ receivingMxHostname: host(server), receivingIp: TLS[server] });
        expect(sent.filter((l) => /^(MAIL|RCPT|DATA|BDAT)\b/.test(l)), `no mail over a connection that failed its TLS check\n${why}`).toEqual([]);
      }

      // The server's side.
      const s = await sessions(want.action === 'relayed' && !want.tls && want.retry ? 2 : 1);
      expect(s.every((v) => v.server === server), why).toBe(true);
      if (want.action === 'relayed' && want.tls) {
        expect(s, why).toHaveLength(1);
        expect(s[0]!.tls, `Postfix logged no TLS connection\n${why}`).toContain(`TLS connection established from unknown[127.0.0.1]: ${tls!.version} with cipher ${tls!.cipher}`);
        expect(s[0]!.commands, why).toMatchObject({ starttls: '1', mail: '1' });
      } else if (want.action === 'relayed' && want.retry) {
        // Postfix's RETRY_AS_PLAINTEXT: the same server again, at level none.
        expect(s, why).toHaveLength(2);
        expect(s[0]!.commands.mail, `the failed TLS session must not reach MAIL\n${why}`).toBeUndefined();
        expect(s[0]!.tlsErrors.join('\n'), why).toMatch(/no shared cipher|SSL_accept error/);
        expect(s[1]!.commands, why).toMatchObject({ mail: '1' });
        expect(s[1]!.commands.starttls, why).toBeUndefined();
      } else if (want.action === 'relayed') {
        expect(s, why).toHaveLength(1);
        expect(s[0]!.tls, why).toBeUndefined();
        expect(s[0]!.commands, why).toMatchObject({ mail: '1' });
        expect(s[0]!.commands.starttls, why).toBeUndefined();
      } else {
        expect(s, why).toHaveLength(1);
        expect(reachedMail(s), `no session that failed its TLS check may reach MAIL\n${why}`).toEqual([]);
      }
      ok = true;
    } finally {
      measured.set(key, `${ok ? '' : '✗ '}${describeCell(r)}`);
    }
  });
});

// ---------------------------------------------------------------- the table is Postfix's

/**
 * posttls-finger(1) (in the postfix package) runs Postfix's own SMTP-client TLS code (tls_client.c,
 * the same level and match logic as smtp(8)) against a server and prints what it concluded. Run
 * against the same servers, it shows that the expected table above is what Postfix does here.
 */
async function postfixClient(level: Level, server: MatrixServer): Promise<string> {
  const pkix = level === 'verify' || level === 'secure';
  // usage: posttls-finger [options] [host]:port [match ...]; the match list replaces the level's default
  const args = ['-l', level, ...(pkix ? ['-F', T.caFile] : []), `[${TLS[server]}]:${PORT}`];
  if (level === 'fingerprint') args.push(GOOD_FINGERPRINT);
  if (pkix) args.push(host(server));
  try {
    const { stdout, stderr } = await execFileP('posttls-finger', args, { timeout: 15_000, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
    return `${stdout}${stderr}`;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return `${x.stdout ?? ''}${x.stderr ?? ''}`;
  }
}

describe("the expected table is Postfix's own behavior (posttls-finger, Postfix's TLS client, against the same servers)", () => {
  const cases = (['encrypt', 'fingerprint', 'verify', 'secure'] as const).flatMap((level) => SERVERS.map((server) => ({ level, server, want: expected(level, server) })));
  it.each(cases)('posttls-finger -l $level at $server', async ({ level, server, want }) => {
    const out = await postfixClient(level, server);
    const why = `posttls-finger said:\n${out}`;
    if (want.action === 'relayed' && want.tls) {
      expect(out, why).toMatch(want.verified ? /Verified TLS connection established/ : /(Untrusted|Trusted) TLS connection established/);
      expect(out, why).not.toMatch(/verification failed/);
    } else if (want.action === 'delayed' && want.status === '4.7.4') {
      expect(out, why).toMatch(/< 250 /);
      expect(out, why).not.toMatch(/< 250.STARTTLS|TLS connection established/);
    } else if (want.action === 'delayed' && server === 'badtls') {
      expect(out, why).toMatch(/SSL_connect error/);
      expect(out, why).not.toMatch(/TLS connection established/);
    } else if (want.action === 'delayed') {
      expect(out, why).toMatch(/certificate verification failed for /);
      expect(out, why).not.toMatch(/Verified TLS connection established/);
      const reason = { wrongname: /num=6[25]/, expired: /certificate has expired|num=65/, selfsigned: /self-signed certificate|num=65/ }[server as 'wrongname' | 'expired' | 'selfsigned'];
      expect(out, why).toMatch(reason);
    } else {
      throw new Error(`no posttls-finger check for ${level} x ${server}`);
    }
  });
});

// ---------------------------------------------------------------- the next MX after a TLS failure

describe('a TLS failure at MX 10 moves on to MX 20 (TLS-5: skip this server, try the next MX)', () => {
  const cases: Array<{ level: Level; domain: string; first: TlsServer; status: string; reason: string; verified: boolean }> = [
    { level: 'encrypt', domain: 'nostarttls.tls.test', first: 'plain', status: '4.7.4', reason: NOT_OFFERED('plain'), verified: false },
    { level: 'encrypt', domain: 'handshake.tls.test', first: 'badtls', status: '4.7.5', reason: HANDSHAKE(), verified: false },
    { level: 'fingerprint', domain: 'tls.test', first: 'wrongname', status: '4.7.5', reason: NOT_VERIFIED(), verified: true },
    { level: 'verify', domain: 'tls.test', first: 'wrongname', status: '4.7.5', reason: NOT_VERIFIED(), verified: true },
    // secure: the next hop is tls.test, so good.tls.test matches dot-nexthop
    { level: 'secure', domain: 'tls.test', first: 'wrongname', status: '4.7.5', reason: NOT_VERIFIED(), verified: true },
  ];
  it.each(cases)('$level, $domain: MX 10 $first fails ($status), MX 20 good relays', async ({ level, domain, first, status, reason, verified }) => {
    const { r, why, sessions } = await run(`next-${level}`, `${domain}:${PORT}`, POLICY[level]);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.good, remoteMta: `dns; ${host('good')}` });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified, level });
    expect(r.attempts.map((a) => [a.address, a.outcome]), why).toEqual([
      [TLS[first], 'session-failed'],
      [TLS.good, 'completed'],
    ]);
    expect(r.attempts[0], why).toMatchObject({ host: host(first), preference: 10, status });
    expect(r.attempts[0]!.reason, why).toContain(reason);
    const s = await sessions(2);
    expect(s.map((v) => v.server), why).toEqual([first, 'good']);
    expect(reachedMail(s), why).toEqual(['good']);
  });
});

// ---------------------------------------------------------------- match lists, CA at level may

describe('certificate name matching (TLS-9, TLS-10, TLS-11)', () => {
  it('secure to [127.0.0.61]: the next hop is an address, which the certificate does not name: 4.7.5 certificate-host-mismatch', async () => {
    const { r, why, sessions } = await run('secure-ip', `[${TLS.good}]:${PORT}`, { level: 'secure', ca: T.ca });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(r.recipients[0]!.reason, why).toContain(NOT_VERIFIED());
    expect(tlsFailureOf(r.recipients[0])?.resultType, why).toBe('certificate-host-mismatch');
    expect(reachedMail(await sessions(1)), why).toEqual([]);
  });

  it('secure to [127.0.0.61] with secureCertMatch [good.tls.test]: relayed, verified', async () => {
    const { r, why } = await run('secure-match', `[${TLS.good}]:${PORT}`, { level: 'secure', ca: T.ca, secureCertMatch: ['good.tls.test'] });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.good });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true, level: 'secure' });
  });

  it('verify with verifyCertMatch [.dane.test] at good.tls.test: mx.dane.test is a subdomain, so it matches (no hostname needed)', async () => {
    const { r, why } = await run('verify-dot', only('good'), { level: 'verify', ca: T.ca, verifyCertMatch: ['.dane.test'] });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.good });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true, level: 'verify' });
  });

  it('verify with verifyCertMatch [nexthop] at wrongname.tls.test: still a mismatch (4.7.5)', async () => {
    const { r, why } = await run('verify-nexthop', only('wrongname'), { level: 'verify', ca: T.ca, verifyCertMatch: ['nexthop'] });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(tlsFailureOf(r.recipients[0])?.resultType, why).toBe('certificate-host-mismatch');
  });

  it('may with ca: relayed over TLS, not "verified" (as Postfix, only levels that check names verify)', async () => {
    const { r, why } = await run('may-ca', only('good'), { level: 'may', ca: T.ca });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.good });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: false, level: 'may' });
  });

  it('fingerprint without colons and in lower case matches too (TLS-8)', async () => {
    const fp = GOOD_FINGERPRINT.replace(/:/g, '').toLowerCase();
    const { r, why } = await run('fp-plain', only('good'), { level: 'fingerprint', fingerprints: [fp] });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.good });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ verified: true, level: 'fingerprint' });
  });

  it('the stored copy says TLS in Postfix\'s Received header (smtpd_tls_received_header)', async () => {
    const { r, why, tok } = await run('received', only('good'), { level: 'verify', ca: T.ca });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed' });
    const file = (await waitForMaildirFile(`${P.postfixMaildirs}/example.test/alice`, tok)).toString('latin1');
    expect(file, why).toMatch(new RegExp(`\\(using ${tlsOf(r.recipients[0])!.version.replace('.', '\\.')} with cipher ${tlsOf(r.recipients[0])!.cipher}`));
  });
});

// ---------------------------------------------------------------- plaintext retry and message age

describe('level may and a failed handshake (TLS-3, POSTFIX-BEHAVIOR.md §1.6 plaintext retry)', () => {
  it('a message queued just now (queuedAt < 300 s ago): no plaintext retry, delayed 4.7.5, one session, no MAIL', async () => {
    const { r, why, sessions } = await run('young', only('badtls'), { level: 'may' }, {}, new Date());
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(r.recipients[0]!.reason, why).toContain(HANDSHAKE());
    const s = await sessions(1);
    expect(s, why).toHaveLength(1);
    expect(reachedMail(s), why).toEqual([]);
  });

  it('a message queued 10 minutes ago: the same server again in plaintext, relayed', async () => {
    const { r, why, sessions } = await run('old', only('badtls'), { level: 'may' }, {}, new Date(Date.now() - 600_000));
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.badtls });
    expect(tlsOf(r.recipients[0]), why).toBeUndefined();
    const s = await sessions(2);
    expect(s.map((v) => [v.server, v.commands.mail]), why).toEqual([
      ['badtls', undefined],
      ['badtls', '1'],
    ]);
  });
});

// ---------------------------------------------------------------- wrapper mode

describe('implicit TLS: tls.wrapperMode (TLS-21) against smtpd_tls_wrappermode=yes', () => {
  it('encrypt + wrapperMode: the handshake comes first, then the greeting; relayed over TLS (no STARTTLS)', async () => {
    const { r, t, why, sessions } = await run('smtps', only('smtps'), { level: 'encrypt', wrapperMode: true });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: TLS.smtps });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ level: 'encrypt', verified: false });
    expect(t.sent(), why).not.toContain('STARTTLS');
    const s = await sessions(1);
    expect(s, why).toHaveLength(1);
    expect(s[0]!.tls, why).toContain('TLS connection established');
    expect(s[0]!.commands.starttls, why).toBeUndefined();
    expect(s[0]!.commands.mail, why).toBe('1');
  });

  it('verify + wrapperMode with the CA: relayed, verified', async () => {
    const { r, why } = await run('smtps-verify', only('smtps'), { level: 'verify', ca: T.ca, wrapperMode: true });
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', remoteAddress: TLS.smtps });
    expect(tlsOf(r.recipients[0]), why).toMatchObject({ level: 'verify', verified: true });
  });

  it('may + wrapperMode: Postfix requires encrypt or higher, so the address is skipped: delayed 4.7.5, no connection', async () => {
    const { r, why, sessions } = await run('smtps-may', only('smtps'), { level: 'may', wrapperMode: true });
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.7.5' });
    expect(r.attempts.map((a) => a.outcome), why).toEqual(['skipped']);
    expect(await sessions(0), why).toEqual([]);
  });
});

// ---------------------------------------------------------------- session resumption

describe('TLS session resumption (TLS-26) against Postfix\'s session cache', () => {
  it('two deliveries in a row to the same server: the second resumes the first one\'s session', async () => {
    const first = await run('resume-1', only('resume'), { level: 'may' });
    expect(first.r.recipients[0], first.why).toMatchObject({ action: 'relayed', remoteAddress: TLS.resume });
    expect(tlsOf(first.r.recipients[0])?.resumed ?? false, first.why).toBe(false);
    const s1 = await first.sessions(1);
    const second = await run('resume-2', only('resume'), { level: 'may' });
    expect(second.r.recipients[0], second.why).toMatchObject({ action: 'relayed', remoteAddress: TLS.resume });
    expect(tlsOf(second.r.recipients[0])?.resumed, second.why).toBe(true);
    const s2 = await second.sessions(1);
    // Postfix's side (smtpd_tls_loglevel 2 on this listener): "Reusing old session" only the second time
    expect(s1.map((s) => s.resumed ?? false), first.why).toEqual([false]);
    expect(s2.map((s) => s.resumed ?? false), second.why).toEqual([true]);
  });
});
