/**
 * Connection-cache keys (Postfix smtp_key.c; POSTFIX-BEHAVIOR.md §1.5; POOL-7, POOL-10).
 * Two labels, as Postfix has: the destination label (the next hop as written) finds a
 * connection before any DNS lookup; the endpoint label (address and port) finds one during
 * the server loop. Both carry everything that must not be shared: the protocol and HELO name,
 * the TLS level and what the certificate check required, and the identity of the SASL
 * credentials (a hash, never the secret), so two callers with different credentials or TLS
 * policies never share a connection.
 */
import { createHash } from 'node:crypto';

export interface PoolKeyInput {
  protocol: 'smtp' | 'lmtp';
  heloName: string;
  /** Destination label: the next hop as written. */
  nexthop?: string;
  /** Endpoint label: address (or socket path) and port. */
  address?: string;
  port?: number;
  /** The TLS decision's identity: level, check, SNI, trust anchors, client certificate. */
  tls: string;
  /** Destination label with SASL: the sender, as the credential lookup may depend on it (POOL-7). */
  sender?: string;
  /** The SASL identity: undefined for an unauthenticated connection. */
  credentials?: { username: string; password?: string; accessToken?: string; authzid?: string } | undefined;
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 32);
}

const tlsDigests = new Map<string, string>();

/** digest() of a TLS decision, remembered for the last few hundred (never used for secrets). */
function tlsDigest(s: string): string {
  let d = tlsDigests.get(s);
  if (d === undefined) {
    d = digest(s);
    if (tlsDigests.size >= 512) tlsDigests.delete(tlsDigests.keys().next().value as string);
    tlsDigests.set(s, d);
  }
  return d;
}

/** A stable key; fields are joined by NUL after hashing the secret parts. */
export function poolKey(kind: 'destination' | 'endpoint', k: PoolKeyInput): string {
  const who = k.credentials
    ? digest([k.credentials.username, k.credentials.password ?? '', k.credentials.accessToken ?? '', k.credentials.authzid ?? ''].join('\0'))
    : '*';
  const where = kind === 'destination' ? `${k.nexthop ?? '*'}\0${k.sender === undefined ? '*' : digest(k.sender)}` : `${k.address ?? '*'}\0${k.port ?? '*'}`;
  return [kind, k.protocol, k.heloName.toLowerCase(), where, tlsDigest(k.tls), who].join('\0');
}
