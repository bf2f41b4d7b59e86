/**
 * Command line framing with a length cap. Lines end with LF (CRLF per RFC 5321 §2.3.8; a bare
 * LF is tolerated, as Postfix's smtpd does). Memory stays bounded: a partial line is kept only
 * up to the limit, and the rest of an overlong line is discarded as it arrives.
 */

/** One step of reading from a chunk. */
export type LineEvent =
  /** A complete line without its line ending; `end` is the chunk offset after the LF. */
  | { kind: 'line'; line: Buffer; end: number }
  /** A line went over the limit (reported once per line); input up to `end` is consumed. */
  | { kind: 'too-long'; end: number }
  /** The rest of an overlong line was discarded up to `end` (after its LF, or the chunk end). */
  | { kind: 'skipped'; end: number }
  /** No line end in the rest of the chunk; it was kept for the next call. */
  | { kind: 'partial' };

const AUTH = Buffer.from('AUTH ');

export class LineReader {
  private saved: Buffer[] = [];
  private savedLength = 0;
  private skipping = false;
  /** Set while a SASL exchange awaits a response line: the longer limit applies. */
  sasl = false;

  /**
   * @param limit longest command line, line ending included (Postfix `line_length_limit`).
   * @param authLimit longest AUTH command or SASL response (Postfix `smtpd_sasl_response_limit`).
   */
  constructor(
    private readonly limit: number,
    private readonly authLimit: number,
  ) {}

  /** Octets of an incomplete line kept from earlier chunks. */
  get pending(): number {
    return this.savedLength;
  }

  /** Forget any partial line (after STARTTLS, RFC 3207 §4.2). */
  clear(): void {
    this.saved = [];
    this.savedLength = 0;
    this.skipping = false;
  }

  /** Read the next line from `chunk` starting at `pos` (`pos < chunk.length`). */
  next(chunk: Buffer, pos: number): LineEvent {
    const lf = chunk.indexOf(0x0a, pos);
    if (this.skipping) {
      if (lf === -1) return { kind: 'skipped', end: chunk.length };
      this.skipping = false;
      return { kind: 'skipped', end: lf + 1 };
    }
    const available = lf === -1 ? chunk.length - pos : lf + 1 - pos;
    const total = this.savedLength + available;
    if (total > this.limit && (total > this.authLimit || !this.allowsLongLine(chunk, pos))) {
      this.saved = [];
      this.savedLength = 0;
      if (lf === -1) {
        this.skipping = true;
        return { kind: 'too-long', end: chunk.length };
      }
      return { kind: 'too-long', end: lf + 1 };
    }
    if (lf === -1) {
      // Copy: the kept part is small, the chunk it came from may be large.
      this.saved.push(Buffer.from(chunk.subarray(pos)));
      this.savedLength += chunk.length - pos;
      return { kind: 'partial' };
    }
    let end = lf;
    let line: Buffer;
    if (this.savedLength === 0) {
      if (end > pos && chunk[end - 1] === 0x0d) end--;
      line = chunk.subarray(pos, end);
    } else {
      line = Buffer.concat([...this.saved, chunk.subarray(pos, end)]);
      this.saved = [];
      this.savedLength = 0;
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    }
    return { kind: 'line', line, end: lf + 1 };
  }

  /** AUTH command lines and SASL responses may be longer than other commands. */
  private allowsLongLine(chunk: Buffer, pos: number): boolean {
    if (this.sasl) return true;
    const head = this.savedLength > 0 ? Buffer.concat([...this.saved, chunk.subarray(pos, pos + 5)]) : chunk.subarray(pos, pos + 5);
    if (head.length < 5) return false;
    for (let i = 0; i < 5; i++) {
      if ((head[i]! & 0xdf) !== AUTH[i]! && !(i === 4 && head[i] === 0x20)) return false;
    }
    return true;
  }
}
