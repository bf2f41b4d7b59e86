/**
 * DNS for routing. `Resolver` is both the interface callers may implement and the default
 * implementation (Node's resolver, optionally pointed at given servers). The routing issue
 * adds MX ordering and DNSSEC (AD bit); this holds what one-host destinations need.
 */
import { Resolver as NodeResolver } from 'node:dns/promises';

export interface MxRecord {
  exchange: string;
  priority: number;
}

/** What mailwire asks of DNS. Errors carry Node's `code` (ENOTFOUND, ENODATA, ESERVFAIL, ETIMEOUT...). */
export interface DnsResolver {
  resolveMx(name: string): Promise<MxRecord[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

export interface ResolverOptions {
  /** `host[:port]` or `[v6]:port` name servers; default: the system's. */
  servers?: string[];
  /** Per-query timeout in milliseconds (default: Node's). */
  timeout?: number;
  /** Tries per name server (default 2). */
  tries?: number;
}

export class Resolver implements DnsResolver {
  private readonly node: NodeResolver;
  constructor(options: ResolverOptions = {}) {
    this.node = new NodeResolver({
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      tries: options.tries ?? 2,
    });
    if (options.servers) this.node.setServers(options.servers);
  }
  resolveMx(name: string): Promise<MxRecord[]> {
    return this.node.resolveMx(name);
  }
  resolve4(name: string): Promise<string[]> {
    return this.node.resolve4(name);
  }
  resolve6(name: string): Promise<string[]> {
    return this.node.resolve6(name);
  }
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
      return 'retry'; // ESERVFAIL, ETIMEOUT, ECONNREFUSED, ...: try again later
  }
}
