/**
 * Ordering of the addresses to try, as Postfix does it (smtp_addr.c:smtp_domain_addr and
 * smtp_host_addr, dns_rr.c; POSTFIX-BEHAVIOR.md §1.1 "Ordering"): shuffle, stable sort by
 * preference (and address family), balance the families within the address limit, drop
 * ourselves and everything worse (self-detection), cap at the address limit. Pure; the
 * randomness is injected so tests can seed it.
 */

/** One address of one mail exchanger. */
export interface MxAddress {
  /** The MX host name (or the next-hop host for `[host]`). */
  host: string;
  address: string;
  family: 4 | 6;
  /** MX preference; 0 for implicit MX and host lists. */
  preference: number;
}

export interface OrderOptions {
  /** Postfix `smtp_randomize_addresses` (true). */
  randomizeAddresses?: boolean;
  /** Postfix `smtp_address_preference` (any): which family first at equal preference. */
  addressPreference?: 'any' | 'ipv4' | 'ipv6';
  /** Postfix `smtp_balance_inet_protocols` (true). */
  balanceInetProtocols?: boolean;
  /** Postfix `smtp_mx_address_limit` (5; 0 = no limit). */
  mxAddressLimit?: number;
  /** Random numbers in [0, 1) (default Math.random). */
  random?: () => number;
  /**
   * Sort by family at equal preference. Postfix does it for MX lists always and for host lists
   * only when both families are enabled; callers pass false for a single-family host list.
   */
  familySort?: boolean;
}

/** Postfix caps every DNS answer list at 100 records (dns_rr.c, var_dns_rr_list_limit). */
export const DNS_RR_LIST_LIMIT = 100;

/** Fisher–Yates (Postfix dns_rr_shuffle), in place. */
export function shuffle<T>(list: T[], random: () => number = Math.random): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/**
 * The address list in the order Postfix tries it, cut at the address limit:
 * shuffle the whole list, stable sort by preference then family, balance the families.
 */
export function orderMxHosts(addresses: readonly MxAddress[], options: OrderOptions = {}): MxAddress[] {
  const list = addresses.slice(0, DNS_RR_LIST_LIMIT * DNS_RR_LIST_LIMIT);
  if ((options.randomizeAddresses ?? true) && list.length > 1) shuffle(list, options.random ?? Math.random);
  const pref = options.addressPreference ?? 'any';
  const familyRank = (a: MxAddress) => (pref === 'any' || options.familySort === false ? 0 : (a.family === 6) === (pref === 'ipv6') ? 0 : 1);
  // Array.prototype.sort is stable (ES2019): equal entries keep the shuffled order.
  list.sort((a, b) => a.preference - b.preference || familyRank(a) - familyRank(b));
  const limit = options.mxAddressLimit ?? 5;
  const balanced = limit > 0 && (options.balanceInetProtocols ?? true) ? balanceInetProtocols(list, limit) : list;
  return limit > 0 ? balanced.slice(0, limit) : balanced;
}

/**
 * Postfix smtp_balance_inet_proto: when the list holds both families and more than
 * L = min(limit, 100) entries, keep enough of each family that an outage of one family does
 * not hide the other. Relative order is unchanged.
 */
export function balanceInetProtocols<T extends { family: 4 | 6 }>(list: readonly T[], limit: number): T[] {
  const L = Math.min(limit, DNS_RR_LIST_LIMIT);
  const v4 = list.filter((a) => a.family === 4).length;
  const v6 = list.length - v4;
  if (v4 === 0 || v6 === 0 || list.length <= L) return list.slice();
  let keep4: number;
  let keep6: number;
  const half = Math.floor(L / 2);
  if (v6 <= half) {
    keep6 = v6;
    keep4 = L - v6;
  } else if (v4 <= half) {
    keep4 = v4;
    keep6 = L - v4;
  } else {
    keep4 = Math.floor((L + (list[0]!.family === 4 ? 1 : 0)) / 2);
    keep6 = L - keep4;
  }
  const out: T[] = [];
  for (const a of list) {
    if (a.family === 4 ? keep4-- > 0 : keep6-- > 0) out.push(a);
  }
  return out;
}

export type SelfCheck<T extends MxAddress> =
  | { found: false; list: T[] }
  /** We are an MX: the list without us and everything at or worse than our preference. */
  | { found: true; list: T[]; preference: number };

/**
 * Postfix smtp_find_self + smtp_truncate_self (MX-6): the first entry whose address is one of
 * ours cuts the list at its preference; that entry and everything at equal or worse
 * preference goes. Postfix finds itself by address only, never by name.
 */
export function truncateSelf<T extends MxAddress>(list: readonly T[], myAddresses: ReadonlySet<string>): SelfCheck<T> {
  const self = list.find((a) => myAddresses.has(normalizeAddress(a.address)));
  if (!self) return { found: false, list: list.slice() };
  return { found: true, list: list.filter((a) => a.preference < self.preference), preference: self.preference };
}

/** Canonical text of an address (RFC 5952 for IPv6, IPv4-mapped as IPv4) for exact comparison. */
export function normalizeAddress(address: string): string {
  let a = address.toLowerCase();
  if (a.includes(':')) {
    try {
      a = new URL(`http://[${a}]/`).hostname.slice(1, -1);
    } catch {
      return a;
    }
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (!mapped) return a;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
