/**
 * Server side of the SASL mechanisms the test server offers through AUTH (RFC 4954). Each
 * mechanism is a small state machine: a response line in, a challenge or an outcome out. The
 * session does the framing (334 lines, `*` to cancel) and decides the final reply.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthAttempt } from './options.js';

/** What the session does next. */
export type SaslStep =
  /** Send `334 <data>` (data is base64 already, or empty) and read a response. */
  | { kind: 'challenge'; data: string }
  /**
   * The client has identified itself: decide. On success, `successData` (if any) is sent as
   * one more 334 challenge before the 235 (RFC 4954 §4, SCRAM's server-final message). On
   * failure, `failureData` (if any) is sent as a 334 first (XOAUTH2/OAUTHBEARER error JSON,
   * RFC 7628 §3.2.2).
   */
  | { kind: 'verify'; attempt: AuthAttempt; successData?: string; failureData?: string }
  /** A malformed exchange: send this reply and stop. */
  | { kind: 'fail'; reply: string };

export interface SaslMechanism {
  /** Start with the initial response of the AUTH command (decoded), or undefined if none. */
  start(initial: Buffer | undefined): SaslStep;
  /** The next response (decoded). */
  next(response: Buffer): SaslStep;
}

/** Mechanisms this server implements. */
export const SERVER_MECHANISMS = [
  'PLAIN',
  'LOGIN',
  'CRAM-MD5',
  'SCRAM-SHA-1',
  'SCRAM-SHA-256',
  'XOAUTH2',
  'OAUTHBEARER',
  'EXTERNAL',
  'ANONYMOUS',
] as const;

const MALFORMED = '535 5.7.8 Error: authentication failed: malformed response';

/** Decode a base64 response line strictly (RFC 4954 §4). `=` alone is an empty initial response. */
export function decodeSaslBase64(s: string): Buffer | undefined {
  if (s === '=' || s === '') return Buffer.alloc(0);
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

interface MechanismContext {
  users: Record<string, string> | undefined;
  hostname: string;
  /** SHA-256 of the client certificate, if TLS gave one (EXTERNAL). */
  peerCertificate: string | undefined;
}

/** Create the server side of `name`, or undefined when this server does not implement it. */
export function createSaslMechanism(name: string, ctx: MechanismContext): SaslMechanism | undefined {
  switch (name) {
    case 'PLAIN':
      return plain(ctx);
    case 'LOGIN':
      return login(ctx);
    case 'CRAM-MD5':
      return cramMd5(ctx);
    case 'SCRAM-SHA-1':
      return scram(ctx, 'sha1');
    case 'SCRAM-SHA-256':
      return scram(ctx, 'sha256');
    case 'XOAUTH2':
      return xoauth2();
    case 'OAUTHBEARER':
      return oauthBearer();
    case 'EXTERNAL':
      return external(ctx);
    case 'ANONYMOUS':
      return anonymous();
    default:
      return undefined;
  }
}

function passwordCheck(users: Record<string, string> | undefined, user: string, password: string): boolean | undefined {
  if (users === undefined || !Object.prototype.hasOwnProperty.call(users, user)) return undefined;
  return users[user] === password;
}

/** PLAIN, RFC 4616 §2: [authzid] NUL authcid NUL passwd. */
function plain(ctx: MechanismContext): SaslMechanism {
  const decide = (r: Buffer): SaslStep => {
    const parts = r.toString('utf8').split('\0');
    if (parts.length !== 3 || parts[1] === '') return { kind: 'fail', reply: MALFORMED };
    const [authzid, username, password] = parts as [string, string, string];
    const attempt: AuthAttempt = { mechanism: 'PLAIN', username, password };
    if (authzid !== '') attempt.authzid = authzid;
    const v = passwordCheck(ctx.users, username, password);
    if (v !== undefined) attempt.verified = v;
    return { kind: 'verify', attempt };
  };
  return {
    start: (initial) => (initial === undefined ? { kind: 'challenge', data: '' } : decide(initial)),
    next: decide,
  };
}

/** LOGIN (draft-murchison-sasl-login): "Username:" and "Password:" challenges. */
function login(ctx: MechanismContext): SaslMechanism {
  let username: string | undefined;
  const askPassword: SaslStep = { kind: 'challenge', data: b64('Password:') };
  return {
    start(initial) {
      if (initial === undefined) return { kind: 'challenge', data: b64('Username:') };
      username = initial.toString('utf8');
      return askPassword;
    },
    next(r) {
      if (username === undefined) {
        username = r.toString('utf8');
        return askPassword;
      }
      const password = r.toString('utf8');
      const attempt: AuthAttempt = { mechanism: 'LOGIN', username, password };
      const v = passwordCheck(ctx.users, username, password);
      if (v !== undefined) attempt.verified = v;
      return { kind: 'verify', attempt };
    },
  };
}

/** CRAM-MD5, RFC 2195: challenge `<random.time@host>`, response `user hex(HMAC-MD5(pw, challenge))`. */
function cramMd5(ctx: MechanismContext): SaslMechanism {
  const challenge = `<${randomBytes(8).readBigUInt64BE()}.${Date.now()}@${ctx.hostname}>`;
  return {
    start: (initial) =>
      initial !== undefined && initial.length > 0
        ? { kind: 'fail', reply: MALFORMED }
        : { kind: 'challenge', data: b64(challenge) },
    next(r) {
      const m = /^(.+) ([0-9a-f]{32})$/.exec(r.toString('utf8'));
      if (!m) return { kind: 'fail', reply: MALFORMED };
      const username = m[1]!;
      const attempt: AuthAttempt = { mechanism: 'CRAM-MD5', username };
      if (ctx.users !== undefined && Object.prototype.hasOwnProperty.call(ctx.users, username)) {
        const want = createHmac('md5', ctx.users[username]!).update(challenge).digest('hex');
        attempt.verified = want === m[2];
      }
      return { kind: 'verify', attempt };
    },
  };
}

/** SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677), without channel binding. */
function scram(ctx: MechanismContext, hash: 'sha1' | 'sha256'): SaslMechanism {
  const mechanism = hash === 'sha1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256';
  const keyLength = hash === 'sha1' ? 20 : 32;
  const iterations = 4096;
  const salt = randomBytes(16);
  let clientFirstBare = '';
  let serverFirst = '';
  let nonce = '';
  let username = '';
  let authzid: string | undefined;
  let phase: 'first' | 'final' = 'first';
  const hmac = (key: Buffer, data: string): Buffer => createHmac(hash, key).update(data).digest();

  const first = (r: Buffer): SaslStep => {
    // gs2-header: "n,," or "y,," (no channel binding) with an optional "a=authzid".
    const m = /^([ny]),(?:a=([^,]*))?,(.*)$/s.exec(r.toString('utf8'));
    if (!m) return { kind: 'fail', reply: MALFORMED };
    if (m[2] !== undefined && m[2] !== '') authzid = saslName(m[2]);
    clientFirstBare = m[3]!;
    const attrs = scramAttributes(clientFirstBare);
    const n = attrs.get('n');
    const r0 = attrs.get('r');
    if (n === undefined || r0 === undefined || r0 === '') return { kind: 'fail', reply: MALFORMED };
    username = saslName(n);
    nonce = r0 + randomBytes(18).toString('base64');
    serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    phase = 'final';
    return { kind: 'challenge', data: b64(serverFirst) };
  };

  const final = (r: Buffer): SaslStep => {
    const clientFinal = r.toString('utf8');
    const p = clientFinal.lastIndexOf(',p=');
    if (p === -1) return { kind: 'fail', reply: MALFORMED };
    const withoutProof = clientFinal.slice(0, p);
    const attrs = scramAttributes(withoutProof);
    if (attrs.get('r') !== nonce) return { kind: 'fail', reply: MALFORMED };
    const proof = Buffer.from(clientFinal.slice(p + 3), 'base64');
    const attempt: AuthAttempt = { mechanism, username };
    if (authzid !== undefined) attempt.authzid = authzid;
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    let successData: string | undefined;
    if (ctx.users !== undefined && Object.prototype.hasOwnProperty.call(ctx.users, username)) {
      const salted = pbkdf2Sync(ctx.users[username]!.normalize('NFKC'), salt, iterations, keyLength, hash);
      const clientKey = hmac(salted, 'Client Key');
      const storedKey = createHash(hash).update(clientKey).digest();
      const signature = hmac(storedKey, authMessage);
      const expected = Buffer.alloc(keyLength);
      for (let i = 0; i < keyLength; i++) expected[i] = clientKey[i]! ^ signature[i]!;
      attempt.verified = proof.length === keyLength && timingSafeEqual(proof, expected);
      const serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
      successData = b64(`v=${serverSignature.toString('base64')}`);
    }
    const step: SaslStep = { kind: 'verify', attempt };
    if (successData !== undefined) step.successData = successData;
    return step;
  };

  return {
    start: (initial) => (initial === undefined || initial.length === 0 ? { kind: 'challenge', data: '' } : first(initial)),
    next: (r) => (phase === 'first' ? first(r) : final(r)),
  };
}

function scramAttributes(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** RFC 5802 §5.1 saslname: "=2C" is ",", "=3D" is "=". */
function saslName(s: string): string {
  return s.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const OAUTH_ERROR = b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}');

/** XOAUTH2 (Google): `user=U ^A auth=Bearer T ^A ^A`. */
function xoauth2(): SaslMechanism {
  const decide = (r: Buffer): SaslStep => {
    const fields = kv(r.toString('utf8').split('\x01'));
    const user = fields.get('user');
    const auth = fields.get('auth');
    if (user === undefined || auth === undefined || !/^Bearer /i.test(auth)) return { kind: 'fail', reply: MALFORMED };
    return { kind: 'verify', attempt: { mechanism: 'XOAUTH2', username: user, password: auth.slice(7) }, failureData: OAUTH_ERROR };
  };
  return {
    start: (initial) => (initial === undefined ? { kind: 'challenge', data: '' } : decide(initial)),
    next: decide,
  };
}

/** OAUTHBEARER, RFC 7628 §3.1: gs2 header `n,a=U,` then `^A key=value ... ^A ^A`. */
function oauthBearer(): SaslMechanism {
  const decide = (r: Buffer): SaslStep => {
    const s = r.toString('utf8');
    const m = /^[ny],(?:a=([^,]*))?,\x01(.*)$/s.exec(s);
    if (!m) return { kind: 'fail', reply: MALFORMED };
    const fields = kv(m[2]!.split('\x01'));
    const auth = fields.get('auth');
    if (auth === undefined || !/^Bearer /i.test(auth)) return { kind: 'fail', reply: MALFORMED };
    const username = m[1] !== undefined ? saslName(m[1]) : '';
    return { kind: 'verify', attempt: { mechanism: 'OAUTHBEARER', username, password: auth.slice(7) }, failureData: OAUTH_ERROR };
  };
  return {
    start: (initial) => (initial === undefined ? { kind: 'challenge', data: '' } : decide(initial)),
    next: decide,
  };
}

function kv(parts: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq > 0) out.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return out;
}

/** EXTERNAL, RFC 4422 App. A: the identity comes from TLS; the response is an optional authzid. */
function external(ctx: MechanismContext): SaslMechanism {
  const decide = (r: Buffer): SaslStep => {
    const authzid = r.toString('utf8');
    const attempt: AuthAttempt = { mechanism: 'EXTERNAL', username: ctx.peerCertificate ?? '', verified: ctx.peerCertificate !== undefined };
    if (authzid !== '') attempt.authzid = authzid;
    return { kind: 'verify', attempt };
  };
  return {
    start: (initial) => (initial === undefined ? { kind: 'challenge', data: '' } : decide(initial)),
    next: decide,
  };
}

/** ANONYMOUS, RFC 4505: an optional trace string. */
function anonymous(): SaslMechanism {
  const decide = (r: Buffer): SaslStep => ({ kind: 'verify', attempt: { mechanism: 'ANONYMOUS', username: r.toString('utf8') } });
  return {
    start: (initial) => (initial === undefined ? { kind: 'challenge', data: '' } : decide(initial)),
    next: decide,
  };
}
