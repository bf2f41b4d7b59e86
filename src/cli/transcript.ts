/**
 * `-v`: delivery events as transcript lines. `C:` what mailwire sent, `S:` what the server
 * replied, `*` everything else. Credentials are already redacted in the events
 * (`AUTH PLAIN <credentials>`); control characters from the server are escaped. Pure.
 */
import type { DeliveryEvent } from '../events.js';
import { printable } from './table.js';

const where = (host: string, address: string, port?: number): string =>
  `${host}[${address}]${port !== undefined ? `:${port}` : ''}`;

/** The line for one event (no newline), or undefined for events the transcript leaves out. */
export function formatEvent(e: DeliveryEvent): string | undefined {
  switch (e.type) {
    case 'send':
      return `C: ${printable(e.line)}`;
    case 'receive':
      return `S: ${printable(e.line)}`;
    case 'connect':
      return `* connecting to ${printable(where(e.host, e.address, e.port))} (next hop ${printable(e.nexthop)})`;
    case 'connected':
      return `* connected${e.reused === true ? ' (reused)' : ''} to ${printable(where(e.host, e.address, e.port))}${e.localAddress !== undefined ? ` from ${e.localAddress}${e.localPort !== undefined ? `:${e.localPort}` : ''}` : ''}`;
    case 'connect-failed':
      return `* connect to ${printable(where(e.host, e.address, e.port))} failed: ${printable(e.reason)}`;
    case 'tls':
      return `* TLS ${e.version} ${e.cipher}, level ${e.level}, server certificate ${e.verified ? 'verified' : 'not verified'}`;
    case 'warning':
      return `* warning: ${printable(e.message)}`;
    case 'protocol-error':
      return `* protocol error from ${printable(where(e.host, e.address))}: ${printable(e.message)}`;
    case 'closed':
      return `* connection to ${printable(where(e.host, e.address))} closed`;
    case 'recipient':
      return undefined; // the table says it
    case 'content':
      return undefined; // the send event "<n octets of message content>" says it
    default:
      return undefined;
  }
}
