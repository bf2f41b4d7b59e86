/**
 * One next hop → the servers to try, in order, or why there are none (Postfix smtp_addr.c,
 * smtp_connect.c; POSTFIX-BEHAVIOR.md §1.1; MX-1..18). MX lookup with implicit and null MX,
 * address lookups by DNS and/or the system's resolver, ordering and limits (mx-order.ts),
 * and self-detection by address when the caller says which addresses are its own.
 */
import { lookup as nativeLookupAll } from 'node:dns/promises';
import type { Destination } from '../destination/destination.js';
import type { Why } from '../protocol/why.js';
import { Resolver, dnsErrorClass, type DnsResolver, type MxRecord } from './resolver.js';
import { DNS_RR_LIST_LIMIT, balanceInetProtocols, normalizeAddress, orderMxHosts, truncateSelf, type MxAddress } from './mx-order.js';

/** One server to try: a TCP endpoint or a unix socket. */
export type Server =
  | {
      kind: 'tcp';
      host: string;
      address: string;
      family: 4 | 6;
      port: number;
      preference: number;
      /** The host's address answer was DNSSEC-validated (DANE looks up TLSA only then). */
      addressSecure: boolean;
    }
  | { kind: 'unix'; host: string; path: string };

export interface PlanOptions {
  protocol: 'smtp' | 'lmtp';
  resolver?: DnsResolver | undefined;
  /** Postfix `smtp_dns_support_level`: `disabled` = no MX lookups, addresses from the system resolver. */
  dnsSupportLevel: 'disabled' | 'enabled' | 'dnssec';
  /** Postfix `smtp_host_lookup` (dns): how host addresses are found. */
  hostLookup: ReadonlyArray<'dns' | 'native'>;
  /** Postfix `inet_protocols` (all). */
  inetProtocols: 'all' | 'ipv4' | 'ipv6';
  mxAddressLimit: number;
  randomizeAddresses: boolean;
  balanceInetProtocols: boolean;
  addressPreference: 'any' | 'ipv4' | 'ipv6';
  /** Our own addresses (MX-6); empty: no self-detection (a library is not the MX). */
  myAddresses: ReadonlySet<string>;
  /** Postfix `smtp_defer_if_no_mx_address_found` (false). */
  deferIfNoMxAddressFound: boolean;
  /** Postfix `ignore_mx_lookup_error` (false). */
  ignoreMxLookupError: boolean;
  /** Our own name: what Postfix logs as the host of a unix-socket server. */
  myHostname: string;
  random?: (() => number) | undefined;
  signal?: AbortSignal | undefined;
}

export type Plan =
  | {
      ok: true;
      servers: Server[];
      /** We are an MX for this domain (Postfix i_am_mx): no fallback relays after it. */
      iAmMx: boolean;
      /** The best MX preference in the list (for the EHLO loop check's BEST_MX). */
      bestPreference: number;
      /** The MX answer was DNSSEC-validated; a bracketed or LMTP next hop is statically secure (MX-17). */
      mxSecure: boolean;
    }
  /** `final`: a loop status (x.4.6): no later next hop is tried (Postfix FINAL_NEXTHOP). */
  | { ok: false; why: Why; final: boolean };

let defaultResolver: Resolver | undefined;

/** The resolver routing uses: the caller's, or one shared default (the system's name servers). */
export function resolverFor(resolver: DnsResolver | undefined): DnsResolver {
  return resolver ?? (defaultResolver ??= new Resolver());
}

function resolverOf(options: PlanOptions): DnsResolver {
  return resolverFor(options.resolver);
}

/** Self-detection applies to SMTP on port 25 only (Postfix SMTP_MISC_FLAG_LOOP_DETECT). */
function loopDetect(options: PlanOptions, port: number): boolean {
  return options.protocol === 'smtp' && port === 25 && options.myAddresses.size > 0;
}

export async function planServers(dest: Destination, options: PlanOptions): Promise<Plan> {
  switch (dest.kind) {
    case 'unix':
      return { ok: true, servers: [{ kind: 'unix', host: options.myHostname, path: dest.path }], iAmMx: false, bestPreference: 0, mxSecure: true };
    case 'address': {
      if (!familyEnabled(dest.family, options)) {
        return { ok: false, why: { kind: 'lookup', name: dest.address, rrtype: dest.family === 6 ? 'AAAA' : 'A', error: 'notfound' }, final: false };
      }
      const a: MxAddress & { secure: boolean } = { host: dest.address, address: dest.address, family: dest.family, preference: 0, secure: true };
      if (loopDetect(options, dest.port) && options.myAddresses.has(normalizeAddress(a.address))) {
        return { ok: false, why: { kind: 'loop', nexthop: dest.certName }, final: true };
      }
      return { ok: true, servers: [toServer(a, dest.port)], iAmMx: false, bestPreference: 0, mxSecure: true };
    }
    case 'host':
      return hostPlan(dest.host, dest.port, dest.nexthop, options, true);
    case 'mx':
      if (options.dnsSupportLevel === 'disabled') return hostPlan(dest.host, dest.port, dest.host, options, false);
      return mxPlan(dest.host, dest.port, options);
  }
}

function toServer(a: MxAddress & { secure?: boolean }, port: number): Server {
  return { kind: 'tcp', host: a.host, address: a.address, family: a.family, port, preference: a.preference, addressSecure: a.secure === true };
}

function familyEnabled(family: 4 | 6, options: PlanOptions): boolean {
  return options.inetProtocols === 'all' || (family === 4) === (options.inetProtocols === 'ipv4');
}

/** Postfix smtp_host_addr: `[host]`, LMTP `inet:host`, implicit MX, DNS lookups disabled. */
async function hostPlan(host: string, port: number, nexthop: string, options: PlanOptions, mxSecure: boolean): Promise<Plan> {
  const r = await lookupHost(host, 0, options);
  if (!r.ok) return { ok: false, why: r.why, final: false };
  let list = r.addresses;
  // Postfix smtp_host_addr: any of our own addresses means mail loops back to us (5.4.6).
  if (loopDetect(options, port) && list.some((a) => options.myAddresses.has(normalizeAddress(a.address)))) {
    return { ok: false, why: { kind: 'loop', nexthop }, final: true };
  }
  list = orderMxHosts(list, {
    randomizeAddresses: options.randomizeAddresses,
    addressPreference: options.addressPreference,
    balanceInetProtocols: options.balanceInetProtocols,
    mxAddressLimit: options.mxAddressLimit,
    familySort: options.inetProtocols === 'all',
    ...(options.random ? { random: options.random } : {}),
  });
  return { ok: true, servers: list.map((a) => toServer(a, port)), iAmMx: false, bestPreference: 0, mxSecure };
}

/** MX lookup, preference order, implicit MX, null MX (RFC 5321 §5.1, RFC 7505). */
async function mxPlan(domain: string, port: number, options: PlanOptions): Promise<Plan> {
  let mx: MxRecord[] & { authenticated?: boolean };
  try {
    mx = await resolverOf(options).resolveMx(domain, options.signal ? { signal: options.signal } : undefined);
  } catch (err) {
    const cls = dnsErrorClass(err);
    if (cls === 'notfound' || options.ignoreMxLookupError) {
      // No MX (NXDOMAIN or no MX records): the domain is its own mail exchanger, preference 0.
      // ignore_mx_lookup_error forces the same A/AAAA lookup (against RFC 5321, MX-4).
      return implicitMx(domain, port, options);
    }
    return { ok: false, why: { kind: 'lookup', name: domain, rrtype: 'MX', error: cls }, final: false };
  }
  if (mx.length === 0) return implicitMx(domain, port, options);
  // RFC 7505 null MX: no A/AAAA fallback. (Postfix checks for any MX whose target is ".")
  if (mx.some((r) => r.exchange === '' || r.exchange === '.')) {
    return { ok: false, why: { kind: 'lookup', name: domain, rrtype: 'MX', error: 'nullmx' }, final: false };
  }
  const records = mx
    .slice(0, DNS_RR_LIST_LIMIT)
    .map((r) => ({ exchange: r.exchange.replace(/\.$/, '').toLowerCase(), priority: r.priority }))
    .sort((a, b) => a.priority - b.priority);
  const bestInDns = records[0]!.priority;
  // Address lookups per MX host in preference order (smtp_addr_list); a soft error dominates.
  const lookups = await Promise.all(records.map((r) => lookupHost(r.exchange, r.priority, options)));
  let why: Extract<Why, { kind: 'lookup' }> | undefined;
  const found: MxAddress[] = [];
  for (const l of lookups) {
    if (l.ok) found.push(...l.addresses);
    else why = dominate(why, l.why);
  }
  if (found.length === 0) {
    // "no MX host for X has a valid address record": the last lookup's error decides.
    let w = why ?? { kind: 'lookup' as const, name: domain, rrtype: 'MX', error: 'notfound' as const };
    if (options.deferIfNoMxAddressFound) w = { ...w, forceSoft: true };
    return { ok: false, why: w, final: false };
  }
  // Shuffle and sort (no cut yet), balance the families within the limit, then self-detection
  // on that list, then the cut at the address limit (Postfix's connect loop counts addresses).
  let list = orderMxHosts(found, {
    randomizeAddresses: options.randomizeAddresses,
    addressPreference: options.addressPreference,
    mxAddressLimit: 0,
    ...(options.random ? { random: options.random } : {}),
  });
  if (options.mxAddressLimit > 0 && options.balanceInetProtocols) list = balanceInetProtocols(list, options.mxAddressLimit);
  let iAmMx = false;
  if (loopDetect(options, port)) {
    const bestFound = list[0]!.preference;
    const self = truncateSelf(list, options.myAddresses);
    if (self.found) {
      iAmMx = true;
      list = self.list;
      if (list.length === 0) {
        // Better MX hosts exist in DNS but none has an address: 4.4.4; else we are the best MX: 5.4.6.
        return { ok: false, why: { kind: 'loop', nexthop: domain, noPrimaryRelay: bestInDns < bestFound }, final: true };
      }
    }
  }
  if (options.mxAddressLimit > 0) list = list.slice(0, options.mxAddressLimit);
  return { ok: true, servers: list.map((a) => toServer(a, port)), iAmMx, bestPreference: list[0]!.preference, mxSecure: mx.authenticated === true };
}

async function implicitMx(domain: string, port: number, options: PlanOptions): Promise<Plan> {
  // Implicit MX: there is no MX RRset to validate; DANE then relies on the address answer.
  return hostPlan(domain, port, domain, options, false);
}

/** Postfix smtp_addr_one: once a soft status is recorded, later hard errors keep class 4. */
function dominate(prev: Extract<Why, { kind: 'lookup' }> | undefined, next: Why): Extract<Why, { kind: 'lookup' }> {
  const n = next as Extract<Why, { kind: 'lookup' }>;
  const prevSoft = prev !== undefined && (prev.error === 'retry' || prev.forceSoft === true);
  return prevSoft && n.error !== 'retry' ? { ...n, forceSoft: true } : n;
}

type HostLookup = { ok: true; addresses: Array<MxAddress & { secure?: boolean }> } | { ok: false; why: Extract<Why, { kind: 'lookup' }> };

/**
 * A and AAAA for one host (smtp_addr_one): DNS first when enabled, the system's resolver
 * (getaddrinfo) with `native` or when DNS lookups are disabled. Answers are capped at 100.
 */
export async function lookupHost(host: string, preference: number, options: PlanOptions): Promise<HostLookup> {
  const useDns = options.dnsSupportLevel !== 'disabled' && options.hostLookup.includes('dns');
  const useNative = options.dnsSupportLevel === 'disabled' || options.hostLookup.includes('native');
  let error: 'notfound' | 'retry' | 'fail' | 'inval' = 'notfound';
  if (useDns) {
    const resolver = resolverOf(options);
    const opts = options.signal ? { signal: options.signal } : undefined;
    const families: Array<4 | 6> = options.inetProtocols === 'ipv4' ? [4] : options.inetProtocols === 'ipv6' ? [6] : [4, 6];
    const answers = await Promise.allSettled(families.map((f) => (f === 4 ? resolver.resolve4(host, opts) : resolver.resolve6(host, opts))));
    const addresses: Array<MxAddress & { secure?: boolean }> = [];
    const errors: Array<'notfound' | 'retry' | 'fail' | 'inval'> = [];
    answers.forEach((a, i) => {
      if (a.status === 'fulfilled') {
        const secure = (a.value as string[] & { authenticated?: boolean }).authenticated === true;
        for (const address of a.value.slice(0, DNS_RR_LIST_LIMIT)) addresses.push({ host, address, family: families[i]!, preference, secure });
      } else {
        errors.push(dnsErrorClass(a.reason));
      }
    });
    if (addresses.length > 0) return { ok: true, addresses };
    error = errors.includes('retry') ? 'retry' : errors.includes('fail') ? 'fail' : errors.includes('inval') ? 'inval' : 'notfound';
    // Only "not found" falls through to the native lookup; a temporary failure defers.
    if (error !== 'notfound' || !useNative) {
      return { ok: false, why: { kind: 'lookup', name: host, rrtype: 'A', error } };
    }
  }
  if (useNative) {
    try {
      const family = options.inetProtocols === 'ipv4' ? 4 : options.inetProtocols === 'ipv6' ? 6 : 0;
      const all = await nativeLookupAll(host, { all: true, family });
      const addresses = all
        .slice(0, DNS_RR_LIST_LIMIT)
        .map((a) => ({ host, address: a.address, family: (a.family === 6 ? 6 : 4) as 4 | 6, preference }));
      if (addresses.length > 0) return { ok: true, addresses };
    } catch (err) {
      const code = (err as { code?: string }).code;
      error = code === 'EAI_AGAIN' ? 'retry' : 'notfound';
    }
  }
  return { ok: false, why: { kind: 'lookup', name: host, rrtype: 'A', error } };
}
