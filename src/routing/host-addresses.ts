/**
 * Addresses of one host for `[host]` and LMTP `inet:host` next hops (Postfix
 * smtp_addr.c:smtp_host_addr): A and AAAA, shuffled when `randomizeAddresses`, capped at
 * `mxAddressLimit`. A soft lookup error dominates a hard one (§1.0 I-2).
 */
import type { DnsResolver } from './resolver.js';
import { dnsErrorClass } from './resolver.js';
import type { Why } from '../protocol/why.js';

export interface HostAddress {
  host: string;
  address: string;
  family: 4 | 6;
}

export interface HostLookupOptions {
  /** Postfix `smtp_randomize_addresses` (true). */
  randomizeAddresses?: boolean;
  /** Postfix `smtp_mx_address_limit` (5; 0 = no limit). */
  mxAddressLimit?: number;
  /** For tests: a deterministic shuffle. */
  random?: () => number;
  /** Fall back to the system's name lookup (hosts file) when DNS finds nothing (smtp_host_lookup=dns,native). */
  nativeLookup?: (host: string) => Promise<HostAddress[]>;
}

export async function lookupHostAddresses(
  host: string,
  resolver: DnsResolver,
  options: HostLookupOptions = {},
): Promise<{ ok: true; addresses: HostAddress[] } | { ok: false; why: Why }> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  let list: HostAddress[] = [];
  if (v4.status === 'fulfilled') list.push(...v4.value.map((address) => ({ host, address, family: 4 as const })));
  if (v6.status === 'fulfilled') list.push(...v6.value.map((address) => ({ host, address, family: 6 as const })));
  if (list.length === 0) {
    const errors = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [dnsErrorClass(r.reason)] : []));
    const soft = errors.includes('retry');
    if (!soft && options.nativeLookup) {
      try {
        list = await options.nativeLookup(host);
      } catch {
        list = [];
      }
    }
    if (list.length === 0) {
      const error = soft ? 'retry' : errors.includes('fail') ? 'fail' : errors.includes('inval') ? 'inval' : 'notfound';
      return { ok: false, why: { kind: 'lookup', name: host, rrtype: 'A', error } };
    }
  }
  if (options.randomizeAddresses ?? true) shuffle(list, options.random ?? Math.random);
  const limit = options.mxAddressLimit ?? 5;
  if (limit > 0 && list.length > limit) list = list.slice(0, limit);
  return { ok: true, addresses: list };
}

/** Fisher-Yates (Postfix dns_rr_shuffle). */
export function shuffle<T>(list: T[], random: () => number): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
}
