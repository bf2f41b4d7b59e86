// SASL client against real Postfix smtpd listeners that authenticate through a real Dovecot auth
// instance (the SASL lab of peers.sh): REQUIREMENTS.md SASL-1..14 and SASL-17, POSTFIX-BEHAVIOR.md
// §1.7. Each server is reached as `[NAME.sasl.test]:PORT` (an A lookup at the lab's unbound), and
// relays only for authenticated clients, so `relayed` proves that AUTH worked; Postfix's own log
// says which mechanism was used (`sasl_method=…`) and counts AUTH commands per session
// (`auth=N/M`), and the stored copy names the authenticated sender.
//
// Dovecot penalizes a client address after a failed login (the next logins from it wait 2, 4, 8,
// up to 15 s): every delivery here that sends a wrong password binds to a fresh 127.x.y.z source
// address (`bindAddress`), so that no other login of the suite is slowed.
//
// At the end, every event and result of this file is searched for the passwords and for the
// base64 forms of the PLAIN and LOGIN payloads (SASL-17).
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { deliver, MemoryAuthCache, Resolver } from '../../src/index.js';
import type { DeliverOptions, DeliveryResult } from '../../src/index.js';
import {
  LogCursor,
  SASL,
  SASL_USERS,
  Transcript,
  authAttempts,
  peers,
  plainMessage,
  routeLab,
  saslLab,
  settledRouteSessions,
  tlsLab,
  tlsOf,
  token,
  waitForMaildirFile,
  type SaslServer,
  type SmtpdSession,
} from './helpers.js';

const P = peers();
const L = routeLab();
const T = tlsLab();
const S = saslLab();
const SENDER = 'sender@client.test';
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const resolver = new Resolver({ servers: [L.dns], timeout: 2000 });
const ALICE_MAILDIR = `${P.postfixMaildirs}/example.test/alice`;

const host = (server: SaslServer): string => `${server}.${S.zone}`;
/** `[NAME.sasl.test]:PORT`: that server alone (a bracketed next hop: no MX lookup). */
const only = (server: SaslServer): string => `[${host(server)}]:${S.port}`;

/** STARTTLS with the certificate checked against submit.sasl.test (a name of the lab's good certificate). */
const VERIFY = { level: 'verify', ca: T.ca } as const;
const MAY = { level: 'may' } as const;

const USER = SASL_USERS.test;
const UTF8 = SASL_USERS.utf8;
const WRONG = ['wrong-pass-1', 'wrong-pass-2', 'wr\u00f6ng-pass-3'] as const;

/**
 * A fresh source address for each delivery that sends a wrong password (Dovecot's penalty is per
 * client address and lasts about 30 s): 127.X.Y.N with X.Y from the clock, so that runs less than
 * a few hours apart use different addresses, and N counting up within the run.
 */
const RUN_SECONDS = Math.floor(Date.now() / 1000);
let freshCount = 0;
function freshAddress(): string {
  freshCount += 1;
  return `127.${200 + (Math.floor(RUN_SECONDS / 250) % 50)}.${RUN_SECONDS % 250}.${freshCount}`;
}

/** Every event and result of this file, as JSON: the secrets test at the end searches it. */
const everything: string[] = [];
/** The credentials this file used, for the secrets test: passwords, and how each went out (mechanism). */
const used: Array<{ username: string; password: string; mechanisms: Set<string> }> = [];
function remember(username: string, password: string, mechanism?: string): void {
  let u = used.find((x) => x.username === username && x.password === password);
  if (!u) used.push((u = { username, password, mechanisms: new Set() }));
  if (mechanism) u.mechanisms.add(mechanism.toUpperCase());
}

interface Run {
  r: DeliveryResult;
  t: Transcript;
  why: string;
  tok: string;
  /** The SASL lab's smtpd sessions logged during the call (waits for them to settle). */
  sessions: (atLeast?: number) => Promise<SmtpdSession[]>;
  /** Dovecot auth's `Password mismatch` lines logged during the call (waits up to 3 s for `atLeast` of them). */
  mismatches: (atLeast?: number) => Promise<string[]>;
  /** Command lines the client sent. */
  sent: string[];
  /** The AUTH command lines sent. */
  auths: string[];
  /** The MAIL FROM lines sent. */
  mails: string[];
}

/** deliver() one message to `to` at the SASL lab server `server`. */
async function run(label: string, server: SaslServer, options: DeliverOptions, to: string[] = [ALICE]): Promise<Run> {
  const tok = token(label);
  const t = new Transcript();
  const pf = new LogCursor(P.postfixLog);
  const auth = new LogCursor(S.authLog);
  const r = await deliver({ from: SENDER, to, message: plainMessage(tok, SENDER) }, only(server), {
    resolver,
    heloName: 'client.test',
    onEvent: t.onEvent,
    ...options,
  });
  everything.push(...t.events.map((e) => JSON.stringify(e)), JSON.stringify(r));
  const why = t.explain(r);
  t.expectKnownOptions(why);
  const sent = t.sent();
  return {
    r,
    t,
    why,
    tok,
    sessions: (atLeast = 0) => settledRouteSessions(pf, { atLeast, lab: 'sasl' }),
    mismatches: async (atLeast = 0) => {
      const deadline = Date.now() + 3000;
      for (;;) {
        const lines = auth.lines().filter((l) => /Password mismatch/.test(l));
        if (lines.length >= atLeast || Date.now() > deadline) return lines;
        await sleep(50);
      }
    },
    sent,
    auths: sent.filter((l) => /^AUTH\b/i.test(l)),
    mails: sent.filter((l) => /^MAIL FROM:/i.test(l)),
  };
}

/**
 * The delivery was relayed after AUTH with `mechanism` as `username`: one AUTH command on the
 * wire (after STARTTLS when there was one), one session at `server` whose transaction Postfix
 * logged with that sasl_method and sasl_username, and a stored copy that names the authenticated
 * sender.
 */
async function expectAuthenticated(x: Run, server: SaslServer, mechanism: string, username: string): Promise<void> {
  for (const rcpt of x.r.recipients) {
    expect(rcpt, x.why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteMta: `dns; ${host(server)}` });
  }
  expect(x.auths, x.why).toHaveLength(1);
  expect(x.auths[0]!.toUpperCase().startsWith(`AUTH ${mechanism} `) || x.auths[0]!.toUpperCase() === `AUTH ${mechanism}`, x.why).toBe(true);
  const starttls = x.sent.findIndex((l) => /^STARTTLS$/i.test(l));
  if (server === 'submit') {
    expect(starttls, `${x.why}\nno STARTTLS before AUTH`).toBeGreaterThanOrEqual(0);
    expect(x.sent.indexOf(x.auths[0]!), x.why).toBeGreaterThan(starttls);
  }
  const sessions = await x.sessions(1);
  expect(sessions.map((s) => s.server), x.why).toEqual([server]);
  const s = sessions[0]!;
  expect(s.sasl, `${x.why}\nPostfix's session: ${JSON.stringify(s)}`).toEqual({ method: mechanism, username });
  expect(s.commands.auth, JSON.stringify(s)).toBe('1');
  expect(s.authFailures, JSON.stringify(s)).toEqual([]);
  const stored = (await waitForMaildirFile(ALICE_MAILDIR, x.tok)).toString('utf8');
  expect(stored, 'the stored copy').toContain(`(Authenticated sender: ${username})`);
}

/** Nothing of the session reached AUTH or MAIL, on the wire or in Postfix's log. */
async function expectNoAuthNoMail(x: Run): Promise<SmtpdSession[]> {
  expect(x.auths, `${x.why}\nAUTH must not be sent`).toEqual([]);
  expect(x.mails, `${x.why}\nMAIL must not be sent`).toEqual([]);
  const sessions = await x.sessions();
  expect(authAttempts(sessions), JSON.stringify(sessions)).toEqual({ tried: 0, accepted: 0 });
  expect(sessions.filter((s) => s.commands.mail !== undefined || s.sasl !== undefined), JSON.stringify(sessions)).toEqual([]);
  return sessions;
}

// ---------------------------------------------------------------- submit: STARTTLS, AUTH after it

describe('submit.sasl.test: STARTTLS, AUTH only after it (PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256)', () => {
  it.each([
    ['PLAIN', 'plain'],
    ['LOGIN', 'login'],
  ])('%s over verified STARTTLS (mechanismFilter [%s]): relayed, Postfix logs that sasl_method', async (mech, filter) => {
    remember(USER.username, USER.password, mech);
    const x = await run(`sasl-tls-${filter}`, 'submit', { tls: VERIFY, auth: { ...USER }, sasl: { mechanismFilter: [filter] } });
    await expectAuthenticated(x, 'submit', mech, USER.username);
    expect(tlsOf(x.r.recipients[0]), x.why).toMatchObject({ verified: true, level: 'verify' });
    // sendDummyMailAuth is off by default (Postfix 2.9+): no AUTH= on MAIL FROM
    expect(x.mails, x.why).toHaveLength(1);
    expect(x.mails[0], x.why).not.toMatch(/ AUTH=/i);
  });

  it('without a filter the strongest mechanism is chosen, not the server\'s first (PLAIN): SCRAM-SHA-256', async () => {
    remember(USER.username, USER.password, 'SCRAM-SHA-256');
    const x = await run('sasl-tls-strongest', 'submit', { tls: VERIFY, auth: { ...USER } });
    await expectAuthenticated(x, 'submit', 'SCRAM-SHA-256', USER.username);
  });

  it('PLAIN over unverified TLS (level may): allowed by mailwire\'s TLS default securityOptions noanonymous', async () => {
    remember(USER.username, USER.password, 'PLAIN');
    const x = await run('sasl-may-plain', 'submit', { tls: MAY, auth: { ...USER }, sasl: { mechanismFilter: ['plain'] } });
    await expectAuthenticated(x, 'submit', 'PLAIN', USER.username);
    expect(tlsOf(x.r.recipients[0]), x.why).toMatchObject({ verified: false });
  });

  it('tlsSecurityOptions noplaintext at level may: no acceptable mechanism among PLAIN LOGIN, delayed 4.7.0, no AUTH, no MAIL', async () => {
    remember(USER.username, USER.password);
    const x = await run('sasl-may-noplaintext', 'submit', {
      tls: MAY,
      auth: { ...USER },
      sasl: { mechanismFilter: ['plain', 'login'], tlsSecurityOptions: ['noplaintext', 'noanonymous'] },
    });
    expect(x.r.recipients[0], x.why).toMatchObject({ action: 'delayed', status: '4.7.0' });
    expect(x.r.recipients[0]!.reason, x.why).toMatch(/SASL authentication failed/);
    await expectNoAuthNoMail(x);
  });

  it('tlsVerifiedSecurityOptions noanonymous lets PLAIN through over verified TLS while tlsSecurityOptions says noplaintext', async () => {
    remember(USER.username, USER.password, 'PLAIN');
    const x = await run('sasl-verified-plain', 'submit', {
      tls: VERIFY,
      auth: { ...USER },
      sasl: { mechanismFilter: ['plain', 'login'], tlsSecurityOptions: ['noplaintext', 'noanonymous'], tlsVerifiedSecurityOptions: ['noanonymous'] },
    });
    await expectAuthenticated(x, 'submit', 'PLAIN', USER.username);
  });

  it('UTF-8 password with SCRAM-SHA-256 (SASLprep) over verified TLS: relayed', async () => {
    remember(UTF8.username, UTF8.password, 'SCRAM-SHA-256');
    const x = await run('sasl-utf8-scram', 'submit', { tls: VERIFY, auth: { ...UTF8 }, sasl: { mechanismFilter: ['scram-sha-256'] } });
    await expectAuthenticated(x, 'submit', 'SCRAM-SHA-256', UTF8.username);
  });

  it('UTF-8 password with PLAIN over verified TLS (sent as UTF-8): relayed', async () => {
    remember(UTF8.username, UTF8.password, 'PLAIN');
    const x = await run('sasl-utf8-plain', 'submit', { tls: VERIFY, auth: { ...UTF8 }, sasl: { mechanismFilter: ['plain'] } });
    await expectAuthenticated(x, 'submit', 'PLAIN', UTF8.username);
  });

  it('auth as a function gets { sender, nexthop, host, port } and its credentials are used', async () => {
    remember(SASL_USERS.alice.username, SASL_USERS.alice.password, 'SCRAM-SHA-256');
    const calls: Array<{ sender: string; nexthop: string; host: string; port: number }> = [];
    const x = await run('sasl-fn', 'submit', {
      tls: VERIFY,
      auth: (ctx) => {
        calls.push({ sender: ctx.sender, nexthop: ctx.nexthop, host: ctx.host, port: ctx.port });
        return { ...SASL_USERS.alice };
      },
    });
    await expectAuthenticated(x, 'submit', 'SCRAM-SHA-256', SASL_USERS.alice.username);
    expect(calls.length, JSON.stringify(calls)).toBeGreaterThanOrEqual(1);
    for (const c of calls) {
      expect(c, JSON.stringify(calls)).toMatchObject({ sender: SENDER, host: host('submit'), port: S.port });
      expect(c.nexthop, JSON.stringify(calls)).toContain(host('submit'));
    }
  });

  it('auth as a function that returns undefined: no credentials, an anonymous session (SASL-2); Postfix refuses the relay: failed 5.7.1', async () => {
    const x = await run('sasl-fn-none', 'submit', { tls: VERIFY, auth: () => undefined });
    expect(x.auths, x.why).toEqual([]);
    expect(x.r.recipients[0], x.why).toMatchObject({ action: 'failed', status: '5.7.1' });
    expect(x.r.recipients[0]!.reason, x.why).toMatch(
      /^host submit\.sasl\.test\[127\.0\.0\.91\] said: 554 5\.7\.1 <alice@example\.test>: Recipient address rejected: Access denied \(in reply to RCPT TO command\)$/,
    );
    const sessions = await x.sessions(1);
    expect(sessions.map((s) => [s.server, s.sasl, s.commands.auth]), JSON.stringify(sessions)).toEqual([['submit', undefined, undefined]]);
    expect(sessions[0]!.rejects.join('\n'), JSON.stringify(sessions)).toMatch(/554 5\.7\.1 <alice@example\.test>: Recipient address rejected: Access denied/);
  });

  it('tls none: the server offers no AUTH before STARTTLS, so none is sent (Postfix needs the AUTH keyword); the relay is refused: failed 5.7.1', async () => {
    remember(USER.username, USER.password);
    const x = await run('sasl-notls', 'submit', { tls: { level: 'none' }, auth: { ...USER } });
    expect(x.sent.filter((l) => /^STARTTLS$/i.test(l)), x.why).toEqual([]);
    expect(x.auths, x.why).toEqual([]);
    expect(x.r.recipients[0], x.why).toMatchObject({ action: 'failed', status: '5.7.1' });
    expect(x.r.recipients[0]!.reason, x.why).toMatch(/said: 554 5\.7\.1 <alice@example\.test>: Recipient address rejected: Access denied \(in reply to RCPT TO command\)$/);
    const sessions = await x.sessions(1);
    expect(sessions.map((s) => [s.server, s.sasl, s.commands.auth]), JSON.stringify(sessions)).toEqual([['submit', undefined, undefined]]);
  });

  it('sendDummyMailAuth: MAIL FROM:<…> AUTH=<> in an authenticated session, and Postfix accepts it', async () => {
    remember(USER.username, USER.password, 'SCRAM-SHA-256');
    const x = await run('sasl-dummy', 'submit', { tls: VERIFY, auth: { ...USER }, sasl: { sendDummyMailAuth: true } });
    await expectAuthenticated(x, 'submit', 'SCRAM-SHA-256', USER.username);
    expect(x.mails, x.why).toHaveLength(1);
    expect(x.mails[0], x.why).toMatch(/^MAIL FROM:<sender@client\.test>( \S+)* AUTH=<>( \S+)*$/);
  });
});

// ---------------------------------------------------------------- plaintext: no TLS, every mechanism

describe('plaintext.sasl.test: no TLS, PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 offered', () => {
  it.each([
    ['CRAM-MD5', 'cram-md5'],
    ['SCRAM-SHA-1', 'scram-sha-1'],
    ['SCRAM-SHA-256', 'scram-sha-256'],
  ])('%s in plaintext (mechanismFilter [%s]): relayed, Postfix logs that sasl_method', async (mech, filter) => {
    remember(USER.username, USER.password, mech);
    const x = await run(`sasl-plain-${filter}`, 'plaintext', { auth: { ...USER }, sasl: { mechanismFilter: [filter] } });
    await expectAuthenticated(x, 'plaintext', mech, USER.username);
    expect(tlsOf(x.r.recipients[0]), x.why).toBeUndefined();
  });

  it('without a filter, default securityOptions (noplaintext, noanonymous): SCRAM-SHA-256', async () => {
    remember(USER.username, USER.password, 'SCRAM-SHA-256');
    const x = await run('sasl-plain-default', 'plaintext', { auth: { ...USER } });
    await expectAuthenticated(x, 'plaintext', 'SCRAM-SHA-256', USER.username);
  });

  it.each([
    ['SCRAM-SHA-1', 'scram-sha-1'],
    ['CRAM-MD5', 'cram-md5'],
  ])('UTF-8 password with %s in plaintext: relayed', async (mech, filter) => {
    remember(UTF8.username, UTF8.password, mech);
    const x = await run(`sasl-utf8-${filter}`, 'plaintext', { auth: { ...UTF8 }, sasl: { mechanismFilter: [filter] } });
    await expectAuthenticated(x, 'plaintext', mech, UTF8.username);
  });
});

// ---------------------------------------------------------------- plainonly: no TLS, PLAIN alone

describe('plainonly.sasl.test: no TLS, only PLAIN offered', () => {
  it('default securityOptions (noplaintext): the password is never sent in plaintext; delayed 4.7.0 (SASL-8), no AUTH, no MAIL, no sasl_method', async () => {
    remember(USER.username, USER.password);
    const x = await run('sasl-plainonly', 'plainonly', { auth: { ...USER } }, [ALICE, BOB]);
    // Postfix (smtp_sasl_proto.c): credentials exist and the server offers AUTH, but no offered
    // mechanism is acceptable -> "SASL authentication failed; cannot authenticate to server …: no
    // mechanism available" (Cyrus), or "… offered no compatible authentication mechanisms for
    // this type of connection security" when nothing is left after the filter: 4.7.0, session
    // failure (next server; deferred at the last). It does not go on anonymously.
    for (const rcpt of x.r.recipients) {
      expect(rcpt, x.why).toMatchObject({ action: 'delayed', status: '4.7.0' });
      expect(rcpt.reason, x.why).toMatch(/SASL authentication failed/);
      expect(rcpt.reason, x.why).toMatch(/no mechanism available|offered no compatible authentication mechanisms/);
    }
    const sessions = await expectNoAuthNoMail(x);
    expect(sessions.map((s) => s.server), JSON.stringify(sessions)).toEqual(['plainonly']);
    expect(sessions[0]!.rejects, JSON.stringify(sessions)).toEqual([]);
  });

  it('securityOptions [noanonymous] allows PLAIN in plaintext: relayed, Postfix logs sasl_method=PLAIN', async () => {
    remember(USER.username, USER.password, 'PLAIN');
    const x = await run('sasl-plainonly-allowed', 'plainonly', { auth: { ...USER }, sasl: { securityOptions: ['noanonymous'] } });
    await expectAuthenticated(x, 'plainonly', 'PLAIN', USER.username);
  });
});

// ---------------------------------------------------------------- wrong passwords, soft bounce, failure cache

describe('wrong password (each from a fresh source address)', () => {
  it('535: every recipient delayed 4.7.8 "SASL authentication failed"; with authCache the same wrong password skips AUTH ("[CACHED]"); a corrected one authenticates', async () => {
    const authCache = new MemoryAuthCache();
    const bad = { username: USER.username, password: WRONG[0] };
    remember(bad.username, bad.password, 'SCRAM-SHA-256');
    remember(USER.username, USER.password, 'SCRAM-SHA-256');

    // 1. the server refuses: 535 5.7.8, soft-bounced (smtp_sasl_auth_soft_bounce = yes) to 4.7.8
    const fromA = freshAddress();
    const a = await run('sasl-wrong-1', 'submit', { tls: VERIFY, auth: bad, bindAddress: fromA, sasl: { authCache } }, [ALICE, BOB]);
    for (const rcpt of a.r.recipients) {
      expect(rcpt, a.why).toMatchObject({ action: 'delayed', status: '4.7.8' });
      expect(rcpt.reason, a.why).toContain('SASL authentication failed');
      expect(rcpt.reason, a.why).toContain('535 5.7.8');
      expect(rcpt.reason, a.why).not.toContain('[CACHED]');
    }
    expect(a.auths, a.why).toHaveLength(1);
    expect(a.mails, a.why).toEqual([]);
    const aSessions = await a.sessions(1);
    expect(authAttempts(aSessions), JSON.stringify(aSessions)).toEqual({ tried: 1, accepted: 0 });
    expect(aSessions.flatMap((s) => s.authFailures), JSON.stringify(aSessions)).toHaveLength(1);
    const mismatch = await a.mismatches(1);
    expect(mismatch, 'Dovecot: one Password mismatch').toHaveLength(1);
    expect(mismatch[0], 'Dovecot saw the fresh client address').toContain(`(${USER.username},${fromA}): Password mismatch`);

    // 2. the same wrong password again: the cache answers, no AUTH reaches the server
    const b = await run('sasl-wrong-2', 'submit', { tls: VERIFY, auth: bad, bindAddress: freshAddress(), sasl: { authCache } }, [ALICE, BOB]);
    for (const rcpt of b.r.recipients) {
      expect(rcpt, b.why).toMatchObject({ action: 'delayed', status: '4.7.8' });
      expect(rcpt.reason, b.why).toContain('[CACHED]');
      expect(rcpt.reason, b.why).toContain('SASL');
    }
    await expectNoAuthNoMail(b);
    expect(await b.mismatches(), 'Dovecot: no login attempt').toEqual([]);

    // 3. a corrected password is tried again (the cached entry was for another secret) and works
    const c = await run('sasl-wrong-3', 'submit', { tls: VERIFY, auth: { ...USER }, bindAddress: freshAddress(), sasl: { authCache } });
    await expectAuthenticated(c, 'submit', 'SCRAM-SHA-256', USER.username);
    expect(await c.mismatches()).toEqual([]);
  });

  it('a wrong password with PLAIN in plaintext, authSoftBounce false: failed 5.7.8', async () => {
    const bad = { username: USER.username, password: WRONG[1] };
    remember(bad.username, bad.password, 'PLAIN');
    const x = await run('sasl-wrong-hard', 'plaintext', {
      auth: bad,
      bindAddress: freshAddress(),
      sasl: { mechanismFilter: ['plain'], securityOptions: ['noanonymous'], authSoftBounce: false },
    });
    expect(x.r.recipients[0], x.why).toMatchObject({ action: 'failed', status: '5.7.8' });
    expect(x.r.recipients[0]!.reason, x.why).toContain('SASL authentication failed');
    expect(x.r.recipients[0]!.reason, x.why).toContain('535 5.7.8');
    expect(x.auths, x.why).toHaveLength(1);
    expect(x.mails, x.why).toEqual([]);
    const sessions = await x.sessions(1);
    expect(authAttempts(sessions), JSON.stringify(sessions)).toEqual({ tried: 1, accepted: 0 });
    expect(sessions.flatMap((s) => s.authFailures).join('\n'), JSON.stringify(sessions)).toMatch(/SASL PLAIN authentication failed/);
  });

  it('a wrong UTF-8 password with LOGIN over TLS: delayed 4.7.8', async () => {
    const bad = { username: UTF8.username, password: WRONG[2] };
    remember(bad.username, bad.password, 'LOGIN');
    const x = await run('sasl-wrong-login', 'submit', { tls: VERIFY, auth: bad, bindAddress: freshAddress(), sasl: { mechanismFilter: ['login'] } });
    expect(x.r.recipients[0], x.why).toMatchObject({ action: 'delayed', status: '4.7.8' });
    expect(x.r.recipients[0]!.reason, x.why).toContain('SASL authentication failed');
    const sessions = await x.sessions(1);
    expect(sessions.flatMap((s) => s.authFailures).join('\n'), JSON.stringify(sessions)).toMatch(/SASL LOGIN authentication failed/);
  });
});

// ---------------------------------------------------------------- no secret in any event or result

/** Every secret of `used` found in `all`: passwords in any byte form, base64 PLAIN/LOGIN payloads, any base64 token that decodes to a password. */
function findSecrets(all: string): string[] {
  const found: string[] = [];
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  for (const u of used) {
    // the password as is, and in the forms a careless transcript could show (JSON \u escapes, UTF-8 read as Latin-1)
    const escaped = u.password.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    for (const form of new Set([u.password, escaped, Buffer.from(u.password, 'utf8').toString('latin1')])) {
      if (all.includes(form)) found.push(`password of ${u.username} (${JSON.stringify(form)})`);
    }
    const payloads: Array<[string, string]> = [
      [`PLAIN payload of ${u.username}`, b64(`\0${u.username}\0${u.password}`)],
      [`PLAIN payload of ${u.username} with authzid`, b64(`${u.username}\0${u.username}\0${u.password}`)],
      [`LOGIN password of ${u.username}`, b64(u.password)],
    ];
    // (a CRAM-MD5 response left in clear would match too: it starts with the username)
    if (u.mechanisms.has('LOGIN')) payloads.push([`base64 of the username ${u.username} (a LOGIN payload)`, b64(u.username)]);
    for (const [what, p] of payloads) if (all.includes(p.replace(/=+$/, ''))) found.push(`${what} (${p})`);
  }
  // any base64 token at all that decodes to something holding a password
  for (const m of all.matchAll(/[A-Za-z0-9+/]{8,}={0,2}/g)) {
    const decoded = Buffer.from(m[0], 'base64');
    for (const u of used) if (decoded.includes(Buffer.from(u.password, 'utf8'))) found.push(`base64 token ${m[0]} holds the password of ${u.username}`);
  }
  return found;
}

describe('secrets (SASL-17)', () => {
  it('no password, and no base64 of a PLAIN or LOGIN payload, in any event or result of this file', () => {
    expect(everything.length, 'the tests above ran').toBeGreaterThan(0);
    // the mechanisms really were exercised, so the search covers their transcripts
    const mechs = new Set(used.flatMap((u) => [...u.mechanisms]));
    expect([...mechs].sort()).toEqual(['CRAM-MD5', 'LOGIN', 'PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256']);
    // the search finds what it looks for (leaks as an unredacted transcript would show them)
    const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
    const leaks = [
      `{"type":"send","line":"AUTH PLAIN ${b64(`\0${USER.username}\0${USER.password}`)}"}`,
      `{"type":"send","line":"${b64(UTF8.password)}"}`,
      `{"type":"send","line":"${b64(USER.username)}"}`,
      `{"type":"warning","message":"${Buffer.from(UTF8.password, 'utf8').toString('latin1')}"}`,
      `{"reason":"auth ${WRONG[0]} refused"}`,
    ];
    for (const leak of leaks) expect(findSecrets(leak), leak).not.toEqual([]);

    const found = findSecrets(everything.join('\n'));
    expect(found, `secrets in events or results:\n${found.join('\n')}`).toEqual([]);
  });
});
