/**
 * MTA-STS policy fetch (RFC 8461 §3.3): `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`
 * over HTTP/1.1, with the policy host resolved through mailwire's `DnsResolver`, the server
 * certificate checked against the Web PKI (Node's roots plus optional extra anchors) for the
 * DNS-ID `mta-sts.<domain>`, no redirects, no HTTP caching, bounded in time and size.
 *
 * The TLS handshake is done first with `rejectUnauthorized: false` so that a certificate problem
 * can be told apart from a network problem exactly (`sts-webpki-invalid` vs
 * `sts-policy-fetch-error`); nothing is written to the connection until the chain and the name
 * have been checked. Node's HTTP client then runs over the verified socket.
 */
import http from 'node:http';
import { raceAbort } from '../abort.js';
import tls from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { DnsResolver } from '../routing/resolver.js';
import type { MtaStsFailure } from './mta-sts-policy.js';

/** The well-known path of the policy file (RFC 8461 §3.2). */
export const MTA_STS_WELL_KNOWN_PATH = '/.well-known/mta-sts.txt';

/** `https://<policyHost>[:port]/.well-known/mta-sts.txt`, as failure details name it. */
export function policyUrl(policyHost: string, port = 443): string {
  return `https://${policyHost}${port === 443 ? '' : `:${port}`}${MTA_STS_WELL_KNOWN_PATH}`;
}

/** Addresses of the policy host tried per family, at most. */
const MAX_ADDRESSES_PER_FAMILY = 4;

export interface PolicyFetchOptions {
  resolver: DnsResolver;
  /** HTTPS port (443 in production). */
  port: number;
  /** Extra trust anchors, PEM, added to Node's root store. */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** Whole fetch (address lookup, connect, handshake, request, body), ms. */
  timeout: number;
  /** Largest body accepted, octets. */
  maxSize: number;
  /** Aborting rejects the fetch with the signal's reason. */
  signal?: AbortSignal;
}

export type PolicyFetchResult = { ok: true; text: string } | { ok: false; failure: MtaStsFailure };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = errorCode(err);
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** Node's default trust store plus `extra` (the `ca` option of TLS replaces the default, so both are given). */
function trustAnchors(extra: PolicyFetchOptions['ca']): Array<string | Buffer> | undefined {
  if (extra === undefined) return undefined; // Node's default store (which also honors NODE_EXTRA_CA_CERTS)
  const list = (Array.isArray(extra) ? extra : [extra]).map((c) => (typeof c === 'string' ? c : Buffer.from(c)));
  const getCA = (tls as unknown as { getCACertificates?: (type?: string) => string[] }).getCACertificates;
  const roots = typeof getCA === 'function' ? getCA('default') : tls.rootCertificates;
  return [...roots, ...list];
}

/** Rejects with the signal's reason when it aborts before `p` settles. */

const fail = (resultType: MtaStsFailure['resultType'], detail: string): PolicyFetchResult => ({ ok: false, failure: { resultType, detail } });

function dnsNames(cert: X509Certificate): string {
  const san = cert.subjectAltName;
  return san ? san : '(no subject alternative names)';
}

type Connected = { socket: tls.TLSSocket } | { retry: string } | { webpki: string };

/** TCP + TLS to one address; resolves once the chain and the name are checked. */
function connectTls(address: string, host: string, port: number, ca: Array<string | Buffer> | undefined, signal: AbortSignal): Promise<Connected> {
  return new Promise<Connected>((resolve, reject) => {
    const where = `${host}[${address}]:${port}`;
    const socket = tls.connect({
      host: address,
      port,
      servername: host, // SNI must name the policy host (RFC 8461 §7.1)
      ...(ca ? { ca } : {}),
      rejectUnauthorized: false, // checked below, before anything is sent
      checkServerIdentity: () => undefined, // the name is checked below, DNS-IDs only (Node's check falls back to the CN)
      ALPNProtocols: ['http/1.1'],
    });
    socket.on('error', () => {}); // later errors reach the HTTP request's own listener
    const cleanup = () => {
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('secureConnect', onSecure);
    };
    const onAbort = () => {
      cleanup();
      socket.destroy();
      reject(signal.reason);
    };
    const onError = (err: Error) => {
      cleanup();
      socket.destroy();
      resolve({ retry: `${where}: ${describeError(err)}` });
    };
    const onSecure = () => {
      cleanup();
      if (!socket.authorized) {
        const why = socket.authorizationError as unknown; // an OpenSSL verify code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE
        socket.destroy();
        resolve({ webpki: `certificate of ${where} is not trusted: ${describeError(why)}` });
        return;
      }
      const cert = socket.getPeerX509Certificate();
      // RFC 8461 §3.3: DNS-IDs only (never the subject CN), '*' only as the whole left-most label.
      const matched = cert?.checkHost(host, {
        subject: 'never',
        wildcards: true,
        partialWildcards: false,
        multiLabelWildcards: false,
        singleLabelSubdomains: false,
      });
      if (!cert || matched === undefined) {
        socket.destroy();
        resolve({ webpki: `certificate of ${where} is not valid for ${host}: ${cert ? dnsNames(cert) : 'no certificate'}` });
        return;
      }
      resolve({ socket });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('secureConnect', onSecure);
  });
}

/** HTTP/1.1 GET of the well-known path over a verified socket. */
function httpGet(socket: tls.TLSSocket, host: string, port: number, url: string, maxSize: number, signal: AbortSignal, stage: (s: string) => void): Promise<PolicyFetchResult> {
  return new Promise<PolicyFetchResult>((resolve, reject) => {
    let settled = false;
    const finish = (r: PolicyFetchResult | { error: unknown }) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      socket.destroy();
      if ('error' in r) reject(r.error);
      else resolve(r);
    };
    const onAbort = () => finish({ error: signal.reason });
    const req = http.request({
      createConnection: () => socket,
      method: 'GET',
      path: MTA_STS_WELL_KNOWN_PATH,
      headers: {
        host: port === 443 ? host : `${host}:${port}`,
        accept: 'text/plain',
        'user-agent': 'mailwire (MTA-STS)',
      },
    });
    req.on('error', (err) => finish(fail('sts-policy-fetch-error', `${url}: ${describeError(err)}`)));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        const location = res.headers.location;
        finish(fail('sts-policy-fetch-error', `${url}: HTTP ${status}${location ? ` to ${location}` : ''}, redirects are not followed`));
        return;
      }
      if (status !== 200) {
        finish(fail('sts-policy-fetch-error', `${url}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`));
        return;
      }
      const type = res.headers['content-type'];
      const media = type?.split(';')[0]?.trim().toLowerCase();
      if (media !== 'text/plain') {
        finish(fail('sts-policy-invalid', `${url}: Content-Type ${type === undefined ? '(none)' : JSON.stringify(type)} is not text/plain`));
        return;
      }
      const declared = res.headers['content-length'];
      if (declared !== undefined && Number(declared) > maxSize) {
        finish(fail('sts-policy-invalid', `${url}: policy of ${declared} octets is larger than ${maxSize}`));
        return;
      }
      stage('reading the policy');
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        size += chunk.length;
        if (size > maxSize) {
          finish(fail('sts-policy-invalid', `${url}: policy is larger than ${maxSize} octets`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        let text: string;
        try {
          text = utf8.decode(Buffer.concat(chunks));
        } catch {
          finish(fail('sts-policy-invalid', `${url}: policy is not valid UTF-8`));
          return;
        }
        finish({ ok: true, text });
      });
      res.on('error', (err) => finish(fail('sts-policy-fetch-error', `${url}: ${describeError(err)} while reading the policy`)));
      res.on('close', () => finish(fail('sts-policy-fetch-error', `${url}: connection closed before the end of the policy`)));
    });
    signal.addEventListener('abort', onAbort, { once: true });
    stage('waiting for the HTTP response');
    req.end();
  });
}

/**
 * Fetches the policy text from `https://<policyHost>/.well-known/mta-sts.txt`. The policy host
 * is resolved with `options.resolver` (A records first, then AAAA), and up to four addresses
 * per family are tried in order while connecting fails; a certificate problem, an HTTP answer
 * or a timeout ends the fetch. Resolves with the body, or with a failure classified for TLS-RPT:
 *
 * - `sts-webpki-invalid`: chain not trusted (Node's roots plus `ca`), or no DNS-ID for the host;
 * - `sts-policy-invalid`: `Content-Type` other than `text/plain`, body above `maxSize`, not UTF-8;
 * - `sts-policy-fetch-error`: everything else (no address, connection, TLS handshake, non-200
 *   status including every 3xx, timeout).
 *
 * Never rejects except with `options.signal`'s reason when it aborts.
 */
export async function fetchStsPolicyText(policyHost: string, options: PolicyFetchOptions): Promise<PolicyFetchResult> {
  const { resolver, port, timeout, maxSize } = options;
  const outer = options.signal;
  outer?.throwIfAborted();
  const url = policyUrl(policyHost, port);
  const controller = new AbortController();
  const signal = controller.signal;
  let timedOut = false;
  let stage = `looking up ${policyHost}`;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('timeout'));
  }, timeout);
  const onOuterAbort = () => controller.abort(outer!.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  const ca = trustAnchors(options.ca);
  try {
    let lastProblem: string | undefined;
    let tried = 0;
    for (const type of ['A', 'AAAA'] as const) {
      stage = `looking up ${policyHost} ${type}`;
      let addresses: string[];
      try {
        const lookup = type === 'A' ? resolver.resolve4(policyHost, { signal }) : resolver.resolve6(policyHost, { signal });
        addresses = await raceAbort(Promise.resolve(lookup), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        const code = errorCode(err);
        if (code !== 'ENOTFOUND' && code !== 'ENODATA') lastProblem = `${policyHost} ${type} lookup failed: ${describeError(err)}`;
        if (code === 'ENOTFOUND') break; // NXDOMAIN: no other type exists either
        continue;
      }
      for (const address of addresses.slice(0, MAX_ADDRESSES_PER_FAMILY)) {
        tried++;
        stage = `connecting to ${policyHost}[${address}]:${port}`;
        const connected = await connectTls(address, policyHost, port, ca, signal);
        if ('webpki' in connected) return fail('sts-webpki-invalid', `${url}: ${connected.webpki}`);
        if ('retry' in connected) {
          lastProblem = connected.retry;
          continue;
        }
        return await httpGet(connected.socket, policyHost, port, url, maxSize, signal, (s) => (stage = s));
      }
    }
    if (tried === 0) return fail('sts-policy-fetch-error', `${url}: ${lastProblem ?? `${policyHost} has no A or AAAA record`}`);
    return fail('sts-policy-fetch-error', `${url}: ${lastProblem ?? 'no connection'}`);
  } catch (err) {
    if (outer?.aborted) throw outer.reason;
    if (timedOut) return fail('sts-policy-fetch-error', `${url}: timed out after ${timeout} ms while ${stage}`);
    return fail('sts-policy-fetch-error', `${url}: ${describeError(err)}`);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}
