/**
 * Postfix next-hop syntax → `Destination[]` (smtp_connect.c:smtp_parse_destination,
 * util/host_port.c; DEST-1..14). Pure and synchronous; every problem is a `MailwireError`
 * with code `EDESTINATION`, before any network traffic.
 */
import { domainToASCII } from 'node:url';
import { MailwireError } from '../errors.js';
import type { Destination } from './destination.js';
import { KNOWN_TCP_PORTS, resolvePort } from './known-tcp-ports.js';
import { isIPv4, isIPv6 } from '../protocol/address.js';

export interface ParseDestinationOptions {
  /** `smtp` (default) or `lmtp`: LMTP takes `inet:` and `unix:` and never looks up MX. */
  protocol?: 'smtp' | 'lmtp';
  /** Default port: `smtp_tcp_port` (25) / `lmtp_tcp_port` (24); a number or a service name. */
  port?: number | string;
  /** Postfix `known_tcp_ports`, merged over the defaults. */
  knownTcpPorts?: Record<string, number>;
  /** Our own name: the certificate name for a unix socket (`$myhostname`, DEST-14). */
  myHostname?: string;
}

function fail(message: string): never {
  throw new MailwireError('EDESTINATION', message);
}

/** Parse a next hop, or a list of them separated by commas and/or white space (DEST-8). */
export function parseDestination(input: string, options: ParseDestinationOptions = {}): Destination[] {
  if (typeof input !== 'string') fail('destination must be a string');
  const protocol = options.protocol ?? 'smtp';
  const known = { ...KNOWN_TCP_PORTS, ...(options.knownTcpPorts ?? {}) };
  const defaultPortSpec = options.port ?? (protocol === 'lmtp' ? 'lmtp' : 'smtp');
  const defaultPort = resolvePort(defaultPortSpec, known) ?? fail(`unknown default port: ${String(defaultPortSpec)}`);
  const sites = input.split(/[\s,]+/).filter((s) => s.length > 0);
  if (sites.length === 0) fail('empty destination');
  return sites.map((site) => parseSite(site, protocol, defaultPort, known, options.myHostname ?? ''));
}

function parseSite(site: string, protocol: 'smtp' | 'lmtp', defaultPort: number, known: Record<string, number>, myHostname: string): Destination {
  const lower = site.toLowerCase();
  if (lower.startsWith('unix:') || lower.startsWith('inet:')) {
    if (protocol !== 'lmtp') {
      fail(`"${site}": the unix: and inet: prefixes are for LMTP only; use protocol: 'lmtp' (DEST-7)`);
    }
    if (lower.startsWith('unix:')) {
      const path = site.slice(5);
      if (path.length === 0) fail(`"${site}": empty unix socket path`);
      if (path.includes('\0')) fail(`"${site}": NUL in unix socket path`);
      return { kind: 'unix', nexthop: path, path, certName: myHostname };
    }
    site = site.slice(5);
    if (site.length === 0) fail('"inet:" without a host');
  }
  let hostPart: string;
  let portPart: string | undefined;
  let bracketed = false;
  if (site.startsWith('[')) {
    const close = site.indexOf(']');
    if (close === -1) fail(`"${site}": missing "]"`);
    hostPart = site.slice(1, close);
    const rest = site.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) fail(`"${site}": unexpected text after "]"`);
    portPart = rest === '' ? undefined : rest.slice(1);
    bracketed = true;
  } else {
    // Without brackets the host/port split is at the last colon (DEST-4).
    const colon = site.lastIndexOf(':');
    hostPart = colon === -1 ? site : site.slice(0, colon);
    portPart = colon === -1 ? undefined : site.slice(colon + 1);
    if (hostPart.includes(':')) fail(`"${site}": an IPv6 address must be written [ipv6:${hostPart}]`);
  }
  let port = defaultPort;
  if (portPart !== undefined && portPart !== '') {
    port = resolvePort(portPart, known) ?? fail(`"${site}": bad port or unknown service "${portPart}"`);
  }
  const nexthop = site;
  if (hostPart.length === 0) fail(`"${site}": empty host`);

  // Address literals.
  if (bracketed && /^ipv6:/i.test(hostPart)) {
    const a = hostPart.slice(5);
    if (!isIPv6(a)) fail(`"${site}": malformed IPv6 address`);
    return { kind: 'address', nexthop, address: a, family: 6, port, certName: a };
  }
  if (isIPv4(hostPart)) return { kind: 'address', nexthop, address: hostPart, family: 4, port, certName: hostPart };
  if (bracketed && isIPv6(hostPart)) return { kind: 'address', nexthop, address: hostPart, family: 6, port, certName: hostPart };

  const host = toALabel(hostPart, site);
  // Brackets turn MX lookups off (DEST-2); LMTP never looks up MX (DEST-6).
  const kind = bracketed || protocol === 'lmtp' ? 'host' : 'mx';
  return { kind, nexthop, host, port, certName: host };
}

/** Validate a host name (UTF-8 allowed) and return its A-label form (DEST-11). */
function toALabel(name: string, site: string): string {
  let ascii = name;
  if (/[^\x00-\x7f]/.test(name)) {
    // UTS #46 non-transitional processing (the WHATWG URL host parser): ß and ς are kept,
    // as with Postfix's enable_idna2003_compatibility = no. Pure; no lookup happens here.
    ascii = domainToASCII(name);
    if (ascii === '') fail(`"${site}": invalid international domain name`);
  }
  if (ascii.length > 255) fail(`"${site}": host name longer than 255 octets`);
  for (const label of ascii.split('.')) {
    if (label.length === 0) fail(`"${site}": empty label in host name`);
    if (label.length > 63) fail(`"${site}": host name label longer than 63 octets`);
    // Postfix valid_hostname: letters, digits, '-' and '_', no hyphen at either end.
    if (!/^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(label)) fail(`"${site}": invalid host name`);
  }
  if (/^\d+$/.test(ascii.split('.').pop()!)) fail(`"${site}": invalid host name (numeric top-level label)`);
  return ascii;
}
