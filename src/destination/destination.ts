/**
 * One next hop in Postfix's syntax, parsed (DEST-1..14). `nexthop` keeps the text as written
 * (brackets and port, no `inet:`/`unix:` prefix): the key for TLS policy, SASL credentials
 * and the connection cache (DEST-13).
 */
export type Destination =
  /** `domain`, `domain:port`: look up MX hosts (SMTP only; DEST-1). */
  | { kind: 'mx'; nexthop: string; host: string; port: number; certName: string }
  /** `[host]`, `[host]:port`, or an LMTP `inet:host[:port]`: A/AAAA only, no MX (DEST-2, DEST-6). */
  | { kind: 'host'; nexthop: string; host: string; port: number; certName: string }
  /** `[192.0.2.1]`, `[ipv6:2001:db8::1]:25`: that address, no DNS (DEST-3, DEST-4). */
  | { kind: 'address'; nexthop: string; address: string; family: 4 | 6; port: number; certName: string }
  /** LMTP `unix:/path` (DEST-5): no MX, no failover, no fallback relay. */
  | { kind: 'unix'; nexthop: string; path: string; certName: string };
