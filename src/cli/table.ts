/**
 * The per-recipient table `mailwire` prints, and the exit code a result gives. Pure.
 */
import type { DeliveryResult, RecipientResult } from '../results/delivery-result.js';
import { EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE } from './exit-codes.js';

/**
 * Make server-supplied text safe for a terminal: control characters (ESC, CR, LF, NUL, ...)
 * become `\xNN`, so a reply cannot move the cursor or forge table rows.
 */
export function printable(text: string): string {
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** `host[address]` from a result's remote MTA (`dns; host`) and address; `-` when no server spoke. */
export function remoteMtaOf(r: RecipientResult): string {
  const host = r.remoteMta?.replace(/^dns;\s*/i, '');
  if (host === undefined) return r.remoteAddress ?? '-';
  if (r.remoteAddress === undefined || r.remoteAddress === host) return host;
  return `${host}[${r.remoteAddress}]`;
}

const COLUMNS = ['RECIPIENT', 'ACTION', 'STATUS', 'REMOTE MTA', 'REASON'] as const;

/** One row per recipient, columns aligned; the reason is last and never cut. Ends with a newline. */
export function formatTable(result: DeliveryResult): string {
  const rows: string[][] = result.recipients.map((r) => [
    printable(r.recipient === '' ? '<>' : r.recipient),
    r.action,
    r.status,
    printable(remoteMtaOf(r)),
    printable(r.reason.replace(/\r?\n/g, ' ')),
  ]);
  const all = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  return all
    .map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n') + '\n';
}

/**
 * sysexits: 0 when every recipient was delivered or relayed, 69 EX_UNAVAILABLE when any failed,
 * else 75 EX_TEMPFAIL (some delayed).
 */
export function exitCodeFor(result: DeliveryResult): number {
  if (result.recipients.some((r) => r.action === 'failed')) return EX_UNAVAILABLE;
  if (result.recipients.some((r) => r.action === 'delayed')) return EX_TEMPFAIL;
  return EX_OK;
}

/** `2 relayed, 1 failed` (for the verbose summary line). */
export function summary(result: DeliveryResult): string {
  const counts = new Map<string, number>();
  for (const r of result.recipients) counts.set(r.action, (counts.get(r.action) ?? 0) + 1);
  return [...counts].map(([a, n]) => `${n} ${a}`).join(', ');
}
