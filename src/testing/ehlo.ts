/**
 * The EHLO/LHLO reply (RFC 5321 §4.1.1.1, RFC 2033 §4.1): the server name first, then one
 * keyword per line, in Postfix's order.
 */
import type { ResolvedOptions } from './options.js';
import { replyLines } from './reply.js';

/** The keyword lines to announce, given whether TLS is already active. */
export function ehloKeywords(o: ResolvedOptions, inTls: boolean): string[] {
  const e = o.extensions;
  const k: string[] = [];
  if (e.pipelining) k.push('PIPELINING');
  // RFC 1870 §4: SIZE 0 (here: bare SIZE, as Postfix) means no fixed limit.
  if (e.size !== false) k.push(e.size > 0 ? `SIZE ${e.size}` : 'SIZE');
  // RFC 3207 §4.2: STARTTLS is not offered again once TLS is active.
  if (e.starttls && !inTls) k.push('STARTTLS');
  if (e.auth !== false && e.auth.length > 0 && (!o.tlsAuthOnly || inTls)) k.push(`AUTH ${e.auth.join(' ')}`);
  if (e.xforward !== false && e.xforward.length > 0) k.push(`XFORWARD ${e.xforward.join(' ')}`);
  if (e.enhancedStatusCodes) k.push('ENHANCEDSTATUSCODES');
  if (e.eightBitMime) k.push('8BITMIME');
  if (e.dsn) k.push('DSN');
  if (e.smtputf8) k.push('SMTPUTF8');
  if (e.chunking) k.push('CHUNKING');
  k.push(...e.extra);
  return k;
}

/** The whole reply text (lines joined with `\n`). */
export function ehloReply(hostname: string, keywords: readonly string[], style: 'normal' | 'bare-last-line'): string {
  const lines = [hostname, ...keywords];
  if (style === 'bare-last-line') return [...lines.map((l) => `250-${l}`), '250 '].join('\n');
  return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\n');
}

/**
 * The keywords a reply actually announced (upper-case first word of every line after the
 * first), so that a fault-injected EHLO reply governs what the session then allows.
 */
export function announcedKeywords(reply: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = replyLines(reply);
  for (let i = 1; i < lines.length; i++) {
    const text = lines[i]!.slice(4).trim();
    if (text === '') continue;
    const sp = text.search(/[ =]/);
    const word = (sp === -1 ? text : text.slice(0, sp)).toUpperCase();
    if (!out.has(word)) out.set(word, sp === -1 ? '' : text.slice(sp + 1).trim());
  }
  return out;
}
