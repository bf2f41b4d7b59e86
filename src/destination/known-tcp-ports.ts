/** Postfix `known_tcp_ports` (3.6+): service names without a services(5) lookup (DEST-10). */
export const KNOWN_TCP_PORTS: Readonly<Record<string, number>> = Object.freeze({
  lmtp: 24,
  smtp: 25,
  smtps: 465,
  submissions: 465,
  submission: 587,
});

/**
 * A port as Postfix reads it: a value that starts with a digit must be all digits, 1..65535;
 * anything else is a service name. Returns undefined for an unknown or malformed value.
 */
export function resolvePort(value: number | string, known: Readonly<Record<string, number>> = KNOWN_TCP_PORTS): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 65535 ? value : undefined;
  if (/^\d/.test(value)) {
    if (!/^\d+$/.test(value)) return undefined;
    const n = Number(value);
    return n >= 1 && n <= 65535 ? n : undefined;
  }
  const n = known[value.toLowerCase()];
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}
