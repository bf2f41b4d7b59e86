import type { Reply } from './reply.js';
import { leadingEnhancedStatus, replyStatus } from './enhanced-status.js';

export interface ReplyParserOptions {
  /**
   * Longest reply line kept, in octets (Postfix `line_length_limit`, 2048). A longer line is
   * cut there, the rest of it is read and dropped, and the reply is flagged as a protocol error.
   */
  lineLengthLimit?: number;
  /**
   * Most lines in one reply. A server that sends more has broken the protocol: the parser
   * stops and reports `overflow` (bounded memory: a reply can never grow without end).
   */
  maxReplyLines?: number;
  /** Postfix `smtp_reply_filter`: rewrite each line (CR LF removed) before it is parsed. */
  replyFilter?: (line: string) => string;
}

const DEFAULT_LINE_LIMIT = 2048;
const DEFAULT_MAX_LINES = 256;
const LF = 0x0a;
const CR = 0x0d;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A reply line is exactly three digits, then `-`, a space, or the end (Postfix smtp_chat_resp). */
const REPLY_LINE = /^(\d{3})([ -]|$)/;

/**
 * Incremental SMTP/LMTP reply parser: bytes in, complete replies out. Pure and bounded.
 *
 * Postfix's rules (POSTFIX-BEHAVIOR.md §1.4): a line that is not a reply line is garbage; it
 * is kept in the text and flags a protocol error, but never ends a reply. The code and the
 * enhanced status come from the last line only.
 */
export class ReplyParser {
  private readonly lineLimit: number;
  private readonly maxLines: number;
  private readonly filter: ((line: string) => string) | undefined;
  private line: Uint8Array;
  private lineLength = 0;
  private lineCut = false;
  private lines: string[] = [];
  private flagged = false;
  private done: Reply[] = [];
  /** Set once a reply exceeded `maxReplyLines`; the parser then ignores all input. */
  overflow = false;

  constructor(options: ReplyParserOptions = {}) {
    this.lineLimit = options.lineLengthLimit ?? DEFAULT_LINE_LIMIT;
    this.maxLines = options.maxReplyLines ?? DEFAULT_MAX_LINES;
    this.filter = options.replyFilter;
    this.line = new Uint8Array(Math.min(this.lineLimit, 512));
  }

  /** Feed received bytes; returns the replies they completed, in order. */
  feed(bytes: Uint8Array): Reply[] {
    if (this.overflow) return [];
    let start = 0;
    while (start < bytes.length) {
      const lf = bytes.indexOf(LF, start);
      const end = lf === -1 ? bytes.length : lf;
      this.append(bytes, start, end);
      if (lf === -1) break;
      this.endLine();
      if (this.overflow) break;
      start = lf + 1;
    }
    const out = this.done;
    this.done = [];
    return out;
  }

  /** True when part of a reply has been received but not its last line. */
  get partial(): boolean {
    return this.lineLength > 0 || this.lineCut || this.lines.length > 0;
  }

  /** Drop everything buffered (after STARTTLS: RFC 3207 §4.2, CVE-2011-0411). */
  reset(): void {
    this.lineLength = 0;
    this.lineCut = false;
    this.lines = [];
    this.flagged = false;
    this.done = [];
  }

  private append(bytes: Uint8Array, start: number, end: number): void {
    const room = this.lineLimit + 1 - this.lineLength; // + 1: room for the CR of CR LF
    const n = Math.min(room, end - start);
    if (n < end - start) this.lineCut = true;
    if (n <= 0) return;
    if (this.lineLength + n > this.line.length) {
      const grown = new Uint8Array(Math.min(this.lineLimit + 1, Math.max(this.line.length * 2, this.lineLength + n)));
      grown.set(this.line.subarray(0, this.lineLength));
      this.line = grown;
    }
    this.line.set(bytes.subarray(start, start + n), this.lineLength);
    this.lineLength += n;
  }

  private endLine(): void {
    let len = this.lineLength;
    if (len > 0 && this.line[len - 1] === CR && !this.lineCut) len--;
    if (len > this.lineLimit) {
      len = this.lineLimit;
      this.lineCut = true;
    }
    let text = printable(this.line.subarray(0, len));
    if (this.filter) text = this.filter(text);
    if (this.lineCut) this.flagged = true;
    this.lineLength = 0;
    this.lineCut = false;
    this.lines.push(text);
    if (this.lines.length > this.maxLines) {
      this.overflow = true;
      return;
    }
    const m = REPLY_LINE.exec(text);
    if (!m) {
      this.flagged = true; // garbage: kept, flagged, never ends a reply
      return;
    }
    if (m[2] === '-') return;
    this.done.push(buildReply(Number(m[1]), this.lines, this.flagged));
    this.lines = [];
    this.flagged = false;
  }
}

function buildReply(code: number, lines: string[], protocolError: boolean): Reply {
  const last = lines[lines.length - 1] ?? '';
  const rest = last.slice(4);
  const status = replyStatus(code, rest);
  const sent = leadingEnhancedStatus(rest);
  const enhanced = sent !== undefined && sent === status ? sent : undefined;
  return enhanced === undefined
    ? { code, lines, status, protocolError }
    : { code, lines, status, enhanced, protocolError };
}

/**
 * Bytes to text as Postfix prints them: valid UTF-8 is kept (SMTPUTF8), anything else and
 * every control character becomes `?`.
 */
function printable(bytes: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    text = String.fromCharCode(...Array.from(bytes, (b) => (b < 0x80 ? b : 0x3f)));
  }
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, '?');
}

/**
 * Parse one complete reply from text or bytes (CR LF or LF line ends). Throws when the
 * input does not end with a complete reply, or holds more than one.
 */
export function parseReply(input: string | Uint8Array, options?: ReplyParserOptions): Reply {
  const parser = new ReplyParser(options);
  let bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  if (bytes.length > 0 && bytes[bytes.length - 1] !== LF) {
    const withLf = new Uint8Array(bytes.length + 2);
    withLf.set(bytes);
    withLf.set([CR, LF], bytes.length);
    bytes = withLf;
  }
  const replies = parser.feed(bytes);
  if (parser.overflow) throw new RangeError('reply has more lines than maxReplyLines');
  if (replies.length !== 1 || parser.partial) {
    throw new SyntaxError(`expected exactly one complete reply, got ${replies.length}${parser.partial ? ' and a partial one' : ''}`);
  }
  return replies[0]!;
}
