/**
 * The test server only ever binds to loopback: 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1
 * (RFC 4291 §2.5.3), or a unix socket.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Whether `host` is a loopback IP literal. Host names (even `localhost`) are not accepted. */
export function isLoopback(host: string): boolean {
  if (isIPv4(host)) return host.split('.')[0] === '127';
  if (isIPv6(host)) {
    const h = host.toLowerCase();
    // IPv4-mapped (RFC 4291 §2.5.5.2): loopback when the IPv4 part is.
    const mapped = /^(?:(?:0{1,4}:){5}|::)ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped) return isLoopback(mapped[1]!);
    return expandIPv6(h) === '0000:0000:0000:0000:0000:0000:0000:0001';
  }
  return false;
}

/** Throw unless `host` is a loopback IP literal. */
export function assertLoopback(host: string): void {
  if (!isLoopback(host)) {
    throw new RangeError(
      `mailwire/testing: refusing to bind to ${JSON.stringify(host)}; only 127.0.0.0/8, ::1 or a unix socket`,
    );
  }
}

function expandIPv6(h: string): string {
  const halves = h.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length > 1 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}
