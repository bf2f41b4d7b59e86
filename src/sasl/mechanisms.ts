/**
 * The SASL client mechanisms, pure (challenge in, response out; go-sasl's start/next shape;
 * protocol/sasl-exchange.ts runs them inside AUTH). `node:crypto` is used for hashes only.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SaslMechanism } from '../protocol/sasl-exchange.js';
import { saslPrep, type SaslCredentials } from './credentials.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** RFC 4616 PLAIN: authzid NUL authcid NUL password, as the initial response. */
export function plain(c: SaslCredentials): SaslMechanism {
  return {
    name: 'PLAIN',
    start: () => enc.encode(`${c.authzid ?? ''}\0${c.username}\0${c.password ?? ''}`),
    next: () => new Error('PLAIN expects no challenge'),
  };
}

/** LOGIN (draft-murchison-sasl-login): username, then password, one per challenge. */
export function login(c: SaslCredentials): SaslMechanism {
  let step = 0;
  return {
    name: 'LOGIN',
    start: () => undefined,
    next: (challenge) => {
      const text = dec.decode(challenge).toLowerCase();
      step++;
      if (text.startsWith('user') || (step === 1 && !text.startsWith('pass'))) return enc.encode(c.username);
      if (text.startsWith('pass') || step === 2) return enc.encode(c.password ?? '');
      return new Error('unexpected LOGIN challenge');
    },
  };
}

/** RFC 2195 CRAM-MD5: `username SP hex(HMAC-MD5(password, challenge))`. */
export function cramMd5(c: SaslCredentials): SaslMechanism {
  let done = false;
  return {
    name: 'CRAM-MD5',
    start: () => undefined,
    next: (challenge) => {
      if (done) return new Error('unexpected second CRAM-MD5 challenge');
      done = true;
      const digest = createHmac('md5', c.password ?? '').update(challenge).digest('hex');
      return enc.encode(`${c.username} ${digest}`);
    },
  };
}

/** Iteration counts a server may ask for; more is a denial of service on the client. */
const SCRAM_MAX_ITERATIONS = 1_000_000;

function saslName(s: string): string {
  return saslPrep(s).replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/**
 * RFC 5802 SCRAM (RFC 7677 for SHA-256), without channel binding (gs2 `n`). The server
 * signature is verified: a server that does not prove it knows the password fails the exchange.
 */
export function scram(c: SaslCredentials, hash: 'sha1' | 'sha256', options: { nonce?: string } = {}): SaslMechanism & { verified(): boolean } {
  const cnonce = options.nonce ?? randomBytes(18).toString('base64');
  const gs2 = c.authzid ? `n,a=${saslName(c.authzid)},` : 'n,,';
  const clientFirstBare = `n=${saslName(c.username)},r=${cnonce}`;
  let serverSignature: Buffer | undefined;
  let verified = false;
  let step = 0;
  const H = (data: Buffer) => createHash(hash).update(data).digest();
  const HMAC = (key: Buffer, data: string) => createHmac(hash, key).update(data).digest();
  return {
    name: hash === 'sha1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256',
    start: () => enc.encode(gs2 + clientFirstBare),
    next: (challenge) => {
      step++;
      const text = dec.decode(challenge);
      const attrs = new Map<string, string>();
      for (const part of text.split(',')) {
        const eq = part.indexOf('=');
        if (eq === 1) attrs.set(part[0]!, part.slice(2));
      }
      if (step === 1) {
        const nonce = attrs.get('r');
        const salt = attrs.get('s');
        const iterations = Number(attrs.get('i'));
        if (attrs.has('m')) return new Error('SCRAM: unsupported mandatory extension');
        if (!nonce || !nonce.startsWith(cnonce) || nonce.length === cnonce.length) return new Error('SCRAM: bad server nonce');
        if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > SCRAM_MAX_ITERATIONS) return new Error('SCRAM: bad salt or iteration count');
        const saltedPassword = pbkdf2Sync(saslPrep(c.password ?? ''), Buffer.from(salt, 'base64'), iterations, hash === 'sha1' ? 20 : 32, hash);
        const clientFinalWithoutProof = `c=${Buffer.from(gs2).toString('base64')},r=${nonce}`;
        const authMessage = `${clientFirstBare},${text},${clientFinalWithoutProof}`;
        const clientKey = HMAC(saltedPassword, 'Client Key');
        const clientSignature = HMAC(H(clientKey), authMessage);
        const proof = Buffer.alloc(clientKey.length);
        for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
        serverSignature = HMAC(HMAC(saltedPassword, 'Server Key'), authMessage);
        return enc.encode(`${clientFinalWithoutProof},p=${proof.toString('base64')}`);
      }
      if (step === 2) {
        if (attrs.has('e')) return new Error(`SCRAM: server error ${attrs.get('e')}`);
        const v = Buffer.from(attrs.get('v') ?? '', 'base64');
        if (!serverSignature || v.length !== serverSignature.length || !timingSafeEqual(v, serverSignature)) {
          return new Error('SCRAM: the server signature does not verify');
        }
        verified = true;
        return new Uint8Array(0); // RFC 4954: an empty response to the additional data
      }
      return new Error('SCRAM: unexpected challenge');
    },
    finish: () => (verified ? undefined : new Error('SCRAM: the server never proved its signature')),
    verified: () => verified,
  };
}

/**
 * RFC 7628 OAUTHBEARER. On failure the server sends a JSON error as a challenge; the client
 * answers with a lone %x01 and the server then fails the exchange (§3.2.3).
 */
export function oauthBearer(c: SaslCredentials, ctx: { host?: string; port?: number } = {}): SaslMechanism {
  let errorSeen = false;
  return {
    name: 'OAUTHBEARER',
    start: () => {
      const gs2 = `n,${c.authzid ?? c.username ? `a=${saslName(c.authzid ?? c.username)}` : ''},`;
      const kv = [ctx.host ? `host=${ctx.host}` : '', ctx.port ? `port=${ctx.port}` : '', `auth=Bearer ${c.accessToken ?? ''}`].filter((x) => x);
      return enc.encode(`${gs2}\x01${kv.join('\x01')}\x01\x01`);
    },
    next: () => {
      if (errorSeen) return new Error('OAUTHBEARER: unexpected challenge');
      errorSeen = true;
      return Uint8Array.of(1); // the error challenge: acknowledge, the server then says 5xx
    },
  };
}

/** Google/Microsoft XOAUTH2: `user=… ^A auth=Bearer … ^A ^A`; an error challenge gets an empty reply. */
export function xoauth2(c: SaslCredentials): SaslMechanism {
  let errorSeen = false;
  return {
    name: 'XOAUTH2',
    start: () => enc.encode(`user=${c.username}\x01auth=Bearer ${c.accessToken ?? ''}\x01\x01`),
    next: () => {
      if (errorSeen) return new Error('XOAUTH2: unexpected challenge');
      errorSeen = true;
      return new Uint8Array(0);
    },
  };
}

/** RFC 4422 Appendix A EXTERNAL: identity from the TLS client certificate; authzid if given. */
export function external(c: SaslCredentials): SaslMechanism {
  return { name: 'EXTERNAL', start: () => enc.encode(c.authzid ?? ''), next: () => new Error('EXTERNAL expects no challenge') };
}

/** RFC 4505 ANONYMOUS: a trace string (the username, when given). */
export function anonymous(c: SaslCredentials | undefined): SaslMechanism {
  return { name: 'ANONYMOUS', start: () => enc.encode(c?.username ?? ''), next: () => new Error('ANONYMOUS expects no challenge') };
}
