/**
 * Reply text helpers (RFC 5321 §4.2): a reply is given as lines joined with `\n`, written with
 * CRLF after each line.
 */

/** Split a reply given as text into its lines (CRLF or LF separated; a final newline is ignored). */
export function replyLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The three-digit code of a reply's first line, or 0 when it has none. */
export function replyCode(text: string): number {
  const m = /^([0-9]{3})/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Encode a reply for the wire: each line followed by CRLF, UTF-8 (RFC 6531 §3.7.4.2). */
export function encodeReply(text: string): string {
  return replyLines(text).map((l) => `${l}\r\n`).join('');
}

/**
 * Remove the enhanced status code (RFC 2034 §4, RFC 3463) after the reply code of every line,
 * as Postfix does when ENHANCEDSTATUSCODES is not announced.
 */
export function stripEnhancedCodes(text: string): string {
  return replyLines(text)
    .map((l) => l.replace(/^([0-9]{3}[ -])[245]\.[0-9]{1,3}\.[0-9]{1,3} /, '$1'))
    .join('\n');
}

/** Build a multi-line reply from a code and its lines (RFC 5321 §4.2.1). */
export function multiline(code: number, lines: readonly string[]): string {
  return lines.map((l, i) => `${code}${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\n');
}
