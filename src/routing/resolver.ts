/**
 * DNS for routing. `DnsResolver` is what mailwire asks of DNS (Node's `dns.promises` has the
 * three required methods too); `Resolver` is mailwire's own stub resolver (dns-client.ts,
 * dns-message.ts), because Node's hides the AD bit, cannot abort one query, and flattens
 * error causes.
 *
 * Every query is absolute (MX-18: no search list, no ndots), answer lists are capped at 100
 * records (MX-27, Postfix var_dns_rr_list_limit), and an `AbortSignal` ends a lookup at once.
 */
import dns from 'node:dns';
import { MailwireError } from '../errors.js';
import { query, parseNameServer, formatNameServer, type NameServer } from './dns-client.js';
import { DnsError, RCODE, TYPE, CLASS_IN, lowerName, normalizeName, sameName, type DnsRecord } from './dns-message.js';

export { DnsError } from './dns-message.js';

export interface MxRecord {
  /** Without the trailing dot; '' for the null MX target "." (RFC 7505). */
  exchange: string;
  priority: number;
}

export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Uint8Array;
}

export interface LookupOptions {
  signal?: AbortSignal;
}

/**
 * What mailwire asks of DNS. Errors carry Node's `code` (ENOTFOUND, ENODATA, ESERVFAIL,
 * ETIMEOUT, ...). Node's `dns.promises` satisfies the three required methods too.
 */
export interface DnsResolver {
  resolveMx(name: string, options?: LookupOptions): Promise<MxRecord[]>;
  resolve4(name: string, options?: LookupOptions): Promise<string[]>;
  resolve6(name: string, options?: LookupOptions): Promise<string[]>;
  resolveTlsa?(name: string, options?: LookupOptions): Promise<TlsaRecord[]>;
  resolveTxt?(name: string, options?: LookupOptions): Promise<string[][]>;
}

/** Arrays returned by mailwire's Resolver carry whether the answer was DNSSEC-validated (AD bit). */
export type Answer<T> = T[] & { authenticated?: boolean };

export interface ResolverOptions {
  /** `127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:53`; default: the system's (`dns.getServers()`), else 127.0.0.1. */
  servers?: string[];
  /** Milliseconds per try (default 5000). */
  timeout?: number;
  /** Tries per server (default 2); each round asks the servers in order. */
  tries?: number;
  /** EDNS0 with a 1232-octet UDP payload and the DO bit, so a validating resolver sets AD (default true). */
  edns?: boolean;
}

/** Postfix var_dns_rr_list_limit. */
export const DNS_ANSWER_LIMIT = 100;
const EDNS_UDP_SIZE = 1232;
const MAX_CNAME_CHAIN = 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** TXT character-strings: UTF-8 when they are valid UTF-8, else Latin-1 (one char per octet). */
function txtString(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    return latin1.decode(b);
  }
}

function defaultServers(): NameServer[] {
  let list: string[] = [];
  try {
    list = dns.getServers();
  } catch {
    /* no resolver configuration */
  }
  const servers = list.map(parseNameServer).filter((s): s is NameServer => s !== undefined);
  return servers.length > 0 ? servers : [{ address: '127.0.0.1', port: 53, family: 4 }];
}

/**
 * mailwire's stub resolver: asks recursive name servers (UDP, TCP when truncated), follows
 * CNAME chains inside the answer, and reports the AD bit as `authenticated` on every answer
 * array. Lookups reject with `DnsError` (`code`, `hostname`, `syscall` as in Node):
 * ENOTFOUND (NXDOMAIN), ENODATA (no record of the type), ESERVFAIL, EREFUSED, ENOTIMP,
 * EFORMERR, EBADRESP (malformed or mismatched), ECONNREFUSED, ETIMEOUT (every try timed
 * out), ECANCELLED (aborted; `name` 'AbortError'), EBADNAME.
 *
 * A lookup takes at most `timeout` × `tries` × servers (twice that when answers are
 * truncated and TCP is slow).
 */
export class Resolver implements Required<DnsResolver> {
  readonly #servers: NameServer[];
  readonly #timeout: number;
  readonly #tries: number;
  readonly #edns: boolean;

  constructor(options: ResolverOptions = {}) {
    if (options === null || typeof options !== 'object') throw new MailwireError('EOPTION', 'Resolver options must be an object');
    const { servers, timeout = 5000, tries = 2, edns = true } = options;
    if (servers !== undefined) {
      if (!Array.isArray(servers) || servers.length === 0) throw new MailwireError('EOPTION', 'Resolver servers must be a non-empty array');
      this.#servers = servers.map((s) => {
        const parsed = parseNameServer(s);
        if (!parsed) throw new MailwireError('EOPTION', `Resolver server ${JSON.stringify(s)} is not an IP address with an optional port`);
        return parsed;
      });
    } else this.#servers = defaultServers();
    if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
      throw new MailwireError('EOPTION', 'Resolver timeout must be a positive number of milliseconds');
    }
    if (!Number.isInteger(tries) || tries < 1) throw new MailwireError('EOPTION', 'Resolver tries must be a positive integer');
    if (typeof edns !== 'boolean') throw new MailwireError('EOPTION', 'Resolver edns must be a boolean');
    this.#timeout = timeout;
    this.#tries = tries;
    this.#edns = edns;
  }

  /** The servers asked, in order, as `address:port` / `[address]:port`. */
  getServers(): string[] {
    return this.#servers.map(formatNameServer);
  }

  async resolveMx(name: string, options?: LookupOptions): Promise<Answer<MxRecord>> {
    const { records, authenticated } = await this.#lookup(name, TYPE.MX, 'queryMx', options);
    return answer(
      records.flatMap((r) => (r.data.kind === 'mx' ? [{ exchange: r.data.exchange, priority: r.data.priority }] : [])),
      authenticated,
    );
  }

  async resolve4(name: string, options?: LookupOptions): Promise<Answer<string>> {
    const { records, authenticated } = await this.#lookup(name, TYPE.A, 'queryA', options);
    return answer(records.flatMap((r) => (r.data.kind === 'address' ? [r.data.address] : [])), authenticated);
  }

  async resolve6(name: string, options?: LookupOptions): Promise<Answer<string>> {
    const { records, authenticated } = await this.#lookup(name, TYPE.AAAA, 'queryAaaa', options);
    return answer(records.flatMap((r) => (r.data.kind === 'address' ? [r.data.address] : [])), authenticated);
  }

  async resolveTxt(name: string, options?: LookupOptions): Promise<Answer<string[]>> {
    const { records, authenticated } = await this.#lookup(name, TYPE.TXT, 'queryTxt', options);
    return answer(records.flatMap((r) => (r.data.kind === 'txt' ? [r.data.strings.map(txtString)] : [])), authenticated);
  }

  async resolveTlsa(name: string, options?: LookupOptions): Promise<Answer<TlsaRecord>> {
    const { records, authenticated } = await this.#lookup(name, TYPE.TLSA, 'queryTlsa', options);
    return answer(
      records.flatMap((r) =>
        r.data.kind === 'tlsa' ? [{ usage: r.data.usage, selector: r.data.selector, matchingType: r.data.matchingType, data: r.data.data }] : [],
      ),
      authenticated,
    );
  }

  async #lookup(
    hostname: string,
    type: number,
    syscall: string,
    options: LookupOptions | undefined,
  ): Promise<{ records: DnsRecord[]; authenticated: boolean }> {
    const annotate = (err: unknown): never => {
      if (err instanceof DnsError) {
        err.hostname = hostname;
        err.syscall = syscall;
        err.message = `${syscall} ${err.code} ${hostname}${err.message ? `: ${err.message}` : ''}`;
      }
      throw err;
    };
    let qname: string;
    try {
      qname = normalizeName(hostname);
    } catch (err) {
      return annotate(err);
    }
    let message;
    try {
      message = await query(qname, type, {
        servers: this.#servers,
        timeout: this.#timeout,
        tries: this.#tries,
        edns: this.#edns ? { udpSize: EDNS_UDP_SIZE, do: true } : undefined,
        signal: options?.signal,
      });
    } catch (err) {
      return annotate(err);
    }
    if (message.rcode === RCODE.NXDOMAIN) return annotate(new DnsError('ENOTFOUND', 'no such domain (NXDOMAIN)'));
    const records = followChain(message.answers, qname, type);
    if (records.length === 0) return annotate(new DnsError('ENODATA', 'no record of the type'));
    return { records: records.slice(0, DNS_ANSWER_LIMIT), authenticated: message.ad };
  }
}

function answer<T>(list: T[], authenticated: boolean): Answer<T> {
  return Object.assign(list, { authenticated });
}

/**
 * The records of `type` for `name`, following CNAMEs within the answer section (a server
 * that resolved the chain puts each CNAME and then the data there). A loop or a chain that
 * leaves the answer section yields nothing.
 */
export function followChain(answers: readonly DnsRecord[], name: string, type: number): DnsRecord[] {
  let owner = name;
  const seen = new Set<string>([lowerName(owner)]);
  for (let hop = 0; hop <= MAX_CNAME_CHAIN; hop++) {
    const found = answers.filter((r) => r.type === type && r.class === CLASS_IN && sameName(r.name, owner));
    if (found.length > 0) return found;
    const cname = answers.find((r) => r.type === TYPE.CNAME && r.class === CLASS_IN && sameName(r.name, owner));
    if (!cname || cname.data.kind !== 'name') return [];
    owner = cname.data.name;
    if (seen.has(lowerName(owner))) return [];
    seen.add(lowerName(owner));
  }
  return [];
}

/** Postfix's DNS outcome classes (dns_lookup.c): how a failed lookup counts. */
export function dnsErrorClass(err: unknown): 'notfound' | 'retry' | 'fail' | 'inval' {
  const code = (err as { code?: string } | undefined)?.code;
  switch (code) {
    case 'ENOTFOUND':
    case 'ENODATA':
      return 'notfound';
    case 'EFORMERR':
    case 'EBADRESP':
    case 'EBADNAME':
    case 'EBADQUERY':
      return 'inval';
    case 'EREFUSED':
    case 'ENOTIMP':
      return 'fail';
    default:
      return 'retry'; // ESERVFAIL, ETIMEOUT, ECONNREFUSED, ECANCELLED, ...: try again later
  }
}
