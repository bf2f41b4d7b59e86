/**
 * Destination → the servers to try, in order (Postfix smtp_connect.c, smtp_addr.c;
 * POSTFIX-BEHAVIOR.md §1.1). This is the routing seam: one-host forms are complete here;
 * the routing issue refines MX ordering (balancing, self-detection) and DNSSEC.
 */
import { lookup as nativeLookupAll } from 'node:dns/promises';
import type { Destination } from '../destination/destination.js';
import type { Why } from '../protocol/why.js';
import { Resolver, dnsErrorClass, type DnsResolver, type MxRecord } from './resolver.js';
import { lookupHostAddresses, shuffle, type HostAddress } from './host-addresses.js';

/** One server to try: a TCP endpoint or a unix socket. */
export type Server =
  | { kind: 'tcp'; host: string; address: string; family: 4 | 6; port: number; preference?: number }
  | { kind: 'unix'; host: string; path: string };

export interface PlanOptions {
  resolver?: DnsResolver | undefined;
  dnsSupportLevel: 'disabled' | 'enabled' | 'dnssec';
  mxAddressLimit: number;
  randomizeAddresses: boolean;
  /** Our own name: what Postfix logs as the host of a unix-socket server. */
  myHostname: string;
  random?: () => number;
}

let defaultResolver: Resolver | undefined;

async function nativeLookup(host: string): Promise<HostAddress[]> {
  const all = await nativeLookupAll(host, { all: true });
  return all.map((a) => ({ host, address: a.address, family: a.family === 6 ? 6 : 4 }));
}

export async function planServers(dest: Destination, options: PlanOptions): Promise<{ ok: true; servers: Server[] } | { ok: false; why: Why }> {
  switch (dest.kind) {
    case 'unix':
      return { ok: true, servers: [{ kind: 'unix', host: options.myHostname, path: dest.path }] };
    case 'address':
      return { ok: true, servers: [{ kind: 'tcp', host: dest.address, address: dest.address, family: dest.family, port: dest.port }] };
    case 'host': {
      const r = await hostServers(dest.host, dest.port, options);
      return r;
    }
    case 'mx': {
      if (options.dnsSupportLevel === 'disabled') return hostServers(dest.host, dest.port, options);
      return mxServers(dest.host, dest.port, options);
    }
  }
}

function resolverOf(options: PlanOptions): DnsResolver {
  return options.resolver ?? (defaultResolver ??= new Resolver());
}

async function hostServers(host: string, port: number, options: PlanOptions): Promise<{ ok: true; servers: Server[] } | { ok: false; why: Why }> {
  const r = await lookupHostAddresses(host, resolverOf(options), {
    randomizeAddresses: options.randomizeAddresses,
    mxAddressLimit: options.mxAddressLimit,
    ...(options.random ? { random: options.random } : {}),
    // smtp_host_lookup=dns,native: the hosts file too, unless the caller brought a resolver.
    ...(options.resolver ? {} : { nativeLookup }),
  });
  if (!r.ok) return r;
  return { ok: true, servers: r.addresses.map((a) => ({ kind: 'tcp', host: a.host, address: a.address, family: a.family, port })) };
}

/** MX lookup, preference order, implicit MX, null MX (RFC 5321 §5.1, RFC 7505). */
async function mxServers(domain: string, port: number, options: PlanOptions): Promise<{ ok: true; servers: Server[] } | { ok: false; why: Why }> {
  const resolver = resolverOf(options);
  let mx: MxRecord[];
  try {
    mx = await resolver.resolveMx(domain);
  } catch (err) {
    const cls = dnsErrorClass(err);
    if (cls !== 'notfound') return { ok: false, why: { kind: 'lookup', name: domain, rrtype: 'MX', error: cls } };
    mx = [];
  }
  if (mx.length === 0) return hostServers(domain, port, options); // implicit MX (RFC 5321 §5.1)
  if (mx.some((r) => r.exchange === '' || r.exchange === '.')) {
    return { ok: false, why: { kind: 'lookup', name: domain, rrtype: 'MX', error: 'nullmx' } };
  }
  const random = options.random ?? Math.random;
  const records = mx.slice();
  if (options.randomizeAddresses) shuffle(records, random);
  records.sort((a, b) => a.priority - b.priority); // stable: equal preferences keep the shuffle
  const servers: Server[] = [];
  let soft: Why | undefined;
  let hard: Why | undefined;
  for (const rec of records) {
    const r = await lookupHostAddresses(rec.exchange.replace(/\.$/, ''), resolver, {
      randomizeAddresses: options.randomizeAddresses,
      mxAddressLimit: 0,
      random,
    });
    if (!r.ok) {
      // A soft error dominates past and future hard errors (smtp_addr.c:smtp_addr_one).
      if (r.why.kind === 'lookup' && r.why.error === 'retry') soft ??= r.why;
      else hard ??= r.why;
      continue;
    }
    for (const a of r.addresses) servers.push({ kind: 'tcp', host: a.host, address: a.address, family: a.family, port, preference: rec.priority });
  }
  if (servers.length === 0) return { ok: false, why: soft ?? hard ?? { kind: 'lookup', name: domain, rrtype: 'MX', error: 'notfound' } };
  const limit = options.mxAddressLimit;
  return { ok: true, servers: limit > 0 ? servers.slice(0, limit) : servers };
}
