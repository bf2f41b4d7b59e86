/** One complete SMTP/LMTP reply (RFC 5321 §4.2), as the reply parser builds it. */
export interface Reply {
  /** Reply code of the last line (RFC 5321 §4.2: the last line carries the code). */
  readonly code: number;
  /** Every line as received, code included, CR LF removed, unprintable octets as `?`. */
  readonly lines: readonly string[];
  /**
   * RFC 3463 status the reply stands for: its enhanced code when valid and of the reply's
   * class, else `<d>.0.0`; 5.5.0 for a code that is not 2xx/4xx/5xx (POSTFIX-BEHAVIOR.md §1.4).
   */
  readonly status: string;
  /** The enhanced code exactly as the server sent it, only when valid and of the reply's class. */
  readonly enhanced?: string;
  /**
   * Lines that were not reply lines (garbage) or that were cut at the line limit: Postfix
   * keeps them in the text and flags a protocol error (no reuse of the connection).
   */
  readonly protocolError: boolean;
}

/** All lines joined by a space, as Postfix writes a reply into a reason or a DSN. */
export function replyText(reply: Reply): string {
  return reply.lines.join(' ');
}
