/**
 * The TLS handshake on a connected socket (STARTTLS or wrapper mode) and the certificate
 * check of the level (Postfix tls_client.c): PKIX chain + names, fingerprints, or DANE.
 * Node's own verification is off (`rejectUnauthorized: false`) so that every failure can be
 * classified (RFC 8460) and the session QUITs politely as Postfix does.
 */
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket, type DetailedPeerCertificate } from 'node:tls';
import type { Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import type { TlsCheck, TlsDecision } from '../tls/tls-policy.js';
import { matchCertificate } from '../tls/cert-match.js';
import { matchFingerprint } from '../tls/fingerprint.js';
import { verifyDane } from '../tls/dane.js';
import type { TlsResultType } from '../protocol/why.js';
import type { TlsSessionStore } from '../tls/session-cache.js';

export type TlsOk = Extract<TlsDecision, { ok: true }>;

export interface TlsInfo {
  version: string;
  cipher: string;
  verified: boolean;
  level: string;
  resumed: boolean;
}

export type CheckResult = { ok: true; verified: boolean } | { ok: false; detail: string; resultType: TlsResultType };

export interface SecureOptions {
  decision: TlsOk;
  sessions?: { store: TlsSessionStore; key: string; ttlMs: number } | undefined;
}

/** Node TLS options for a decision: no SNI unless asked (TLS-20), our own checks afterwards. */
export function tlsOptionsFor(o: SecureOptions): ConnectionOptions {
  const d = o.decision;
  // Our own checks decide (checkPeer); Node's name check is off, or it would make `authorized`
  // false for a name mismatch against whatever SNI is (not) sent.
  const opts: ConnectionOptions = { rejectUnauthorized: false, servername: d.servername ?? '', checkServerIdentity: () => undefined };
  if (d.minVersion) opts.minVersion = d.minVersion;
  if (d.maxVersion) opts.maxVersion = d.maxVersion;
  if (d.ciphers) opts.ciphers = d.ciphers;
  if (d.ca !== undefined) opts.ca = (Array.isArray(d.ca) ? d.ca : [d.ca]).map(toPem);
  if (d.cert !== undefined && d.key !== undefined) {
    opts.cert = toPem(d.cert);
    opts.key = toPem(d.key);
  }
  const cached = o.sessions?.store.get(o.sessions.key);
  if (cached) opts.session = Buffer.from(cached.session);
  return opts;
}

function toPem(v: string | Uint8Array): string | Buffer {
  return typeof v === 'string' ? v : Buffer.from(v);
}

/** What the peer check runs on: the live handshake, or what a resumed session's full handshake saw. */
export interface PeerView {
  chain: X509Certificate[];
  authorized: boolean;
  authorizationError?: string;
}

/** Start TLS over `raw`; resolves once the handshake is done (or failed). */
export function startTls(
  raw: Socket,
  o: SecureOptions,
): { socket: TLSSocket; ready: Promise<{ ok: true; peer: PeerView } | { ok: false; detail: string }> } {
  const offered = o.sessions?.store.get(o.sessions.key);
  const socket = tlsConnect({ ...tlsOptionsFor(o), socket: raw });
  let peer: PeerView | undefined;
  const view = (): PeerView => {
    if (socket.isSessionReused() && offered) {
      return {
        chain: offered.chain.flatMap((der) => {
          try {
            return [new X509Certificate(der)];
          } catch {
            return [];
          }
        }),
        authorized: offered.authorized,
        ...(offered.authorizationError ? { authorizationError: offered.authorizationError } : {}),
      };
    }
    const err = socket.authorizationError;
    return { chain: peerChain(socket), authorized: socket.authorized, ...(err ? { authorizationError: String(err) } : {}) };
  };
  if (o.sessions && o.sessions.ttlMs > 0) {
    const { store, key, ttlMs } = o.sessions;
    socket.on('session', (session: Buffer) => {
      const p = peer ?? view();
      if (p.chain.length === 0) return; // nothing to check a resumption against
      store.set(key, { session: new Uint8Array(session), chain: p.chain.map((c) => new Uint8Array(c.raw)), authorized: p.authorized, ...(p.authorizationError ? { authorizationError: p.authorizationError } : {}) }, ttlMs);
    });
  }
  const ready = new Promise<{ ok: true; peer: PeerView } | { ok: false; detail: string }>((resolve) => {
    let done = false;
    socket.once('secureConnect', () => {
      peer = view();
      if (!done) resolve({ ok: true, peer });
      done = true;
    });
    socket.once('error', (err: Error) => {
      if (!done) resolve({ ok: false, detail: err.message });
      done = true;
    });
    socket.once('close', () => {
      if (!done) resolve({ ok: false, detail: 'connection closed during the TLS handshake' });
      done = true;
    });
  });
  return { socket, ready };
}

/** The peer's chain as presented, leaf first. */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert && cert.raw && out.length < 20) {
    const fp = cert.fingerprint256;
    if (seen.has(fp)) break;
    seen.add(fp);
    try {
      out.push(new X509Certificate(cert.raw));
    } catch {
      break;
    }
    cert = cert.issuerCertificate;
  }
  return out;
}

const AUTH_ERRORS: Record<string, TlsResultType> = {
  CERT_HAS_EXPIRED: 'certificate-expired',
  CERT_NOT_YET_VALID: 'certificate-expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'certificate-not-trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate-not-trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate-not-trusted',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate-not-trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate-not-trusted',
  CERT_UNTRUSTED: 'certificate-not-trusted',
  CERT_REVOKED: 'certificate-not-trusted',
};

/** Run the level's certificate check on what the handshake presented. */
export function checkPeer(peer: PeerView, check: TlsCheck): CheckResult {
  if (check.kind === 'none') return { ok: true, verified: false };
  const chain = peer.chain;
  const leaf = chain[0];
  if (!leaf) return { ok: false, detail: 'the server sent no certificate', resultType: 'validation-failure' };
  switch (check.kind) {
    case 'pkix': {
      if (!peer.authorized) {
        const code = String(peer.authorizationError ?? 'UNKNOWN');
        return { ok: false, detail: `certificate verification failed: ${code}`, resultType: AUTH_ERRORS[code] ?? 'validation-failure' };
      }
      if (!matchCertificate(leaf, check.names)) {
        return { ok: false, detail: `certificate name does not match ${check.names.join(', ')}`, resultType: 'certificate-host-mismatch' };
      }
      return { ok: true, verified: true };
    }
    case 'fingerprint':
      return matchFingerprint(leaf, check.values, check.digest)
        ? { ok: true, verified: true }
        : { ok: false, detail: `certificate fingerprint (${check.digest}) does not match`, resultType: 'certificate-not-trusted' };
    case 'dane': {
      const r = verifyDane({ chain, tlsa: check.tlsa, names: check.names });
      if (r.ok) return { ok: true, verified: !check.halfDane };
      return { ok: false, detail: `DANE: ${r.detail}`, resultType: r.resultType };
    }
  }
}

/** The level reported in results: what was applied (dane may have fallen back); dane-only stays dane-only. */
export function appliedLevel(d: TlsOk): string {
  return d.requested === 'dane-only' && d.level === 'dane' ? 'dane-only' : d.level;
}

export function tlsInfo(socket: TLSSocket, level: string, verified: boolean): TlsInfo {
  return {
    version: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    verified,
    level,
    resumed: socket.isSessionReused(),
  };
}
