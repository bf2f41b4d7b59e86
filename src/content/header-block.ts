/**
 * The primary header block of a message, read before the message is sent: where it ends,
 * the Delivered-To addresses in it (Postfix global/delivered_hdr.c, for the flag D loop
 * check, DSN-5), and whether a header really carries UTF-8 (Postfix's SMTPUTF8
 * autodetection in cleanup, PROTO-12). Pure; bytes in.
 */

import { hasEightBit } from '../protocol/bytes.js';

const LF = 0x0a;
const CR = 0x0d;

/** The offset just after the empty line that ends the header block, or -1 when not (yet) seen. */
export function headerBlockEnd(bytes: Uint8Array): number {
  let start = 0;
  for (;;) {
    const lf = bytes.indexOf(LF, start);
    if (lf < 0) return -1;
    const empty = lf === start || (lf === start + 1 && bytes[start] === CR);
    if (empty) return lf + 1;
    start = lf + 1;
  }
}

/** Physical lines of the header block (without line ends), stopping at the empty line. */
function* headerLines(bytes: Uint8Array): Generator<Uint8Array> {
  let start = 0;
  while (start < bytes.length) {
    let lf = bytes.indexOf(LF, start);
    if (lf < 0) lf = bytes.length;
    let end = lf;
    if (end > start && bytes[end - 1] === CR) end--;
    if (end === start) return; // the empty line
    yield bytes.subarray(start, end);
    start = lf + 1;
  }
}

/** Postfix is_header(): a name of printable ASCII other than ":", then optional blanks, then ":". */
export function headerNameLength(line: Uint8Array): number {
  let i = 0;
  while (i < line.length && line[i]! > 0x20 && line[i]! < 0x7f && line[i] !== 0x3a) i++;
  if (i === 0) return 0;
  let j = i;
  while (j < line.length && (line[j] === 0x20 || line[j] === 0x09)) j++;
  return line[j] === 0x3a ? i : 0;
}

const latin1 = new TextDecoder('latin1');
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Postfix DELIVERED_HDR_LIMIT: more Delivered-To headers are not looked at. */
const DELIVERED_HDR_LIMIT = 1000;

/**
 * Delivered-To addresses of the primary header block, lowercased (FOLD_ADDR_ALL), as Postfix's
 * delivered_hdr_init() collects them: the first line of each such header, leading blanks
 * removed; continuation lines are not read.
 */
export function deliveredToAddresses(header: Uint8Array): Set<string> {
  const out = new Set<string>();
  for (const line of headerLines(header)) {
    if (out.size >= DELIVERED_HDR_LIMIT) break;
    const n = headerNameLength(line);
    if (n === 0) {
      if (line[0] === 0x20 || line[0] === 0x09) continue; // a continuation line
      break; // not a header: the header block is over
    }
    if (latin1.decode(line.subarray(0, n)).toLowerCase() !== 'delivered-to') continue;
    const colon = line.indexOf(0x3a, n);
    const value = new TextDecoder().decode(line.subarray(colon + 1)).replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    out.add(value.toLowerCase());
  }
  return out;
}

/**
 * PROTO-12: a header line that is not ASCII and is valid UTF-8 needs SMTPUTF8 (Postfix's
 * autodetection; 8-bit octets that are not UTF-8 do not ask for it).
 */
export function headerNeedsUtf8(header: Uint8Array): boolean {
  if (!hasEightBit(header)) return false;
  for (const line of headerLines(header)) {
    if (line.every((b) => b < 0x80)) continue;
    try {
      utf8Strict.decode(line);
      return true;
    } catch {
      /* 8-bit but not UTF-8 */
    }
  }
  return false;
}
