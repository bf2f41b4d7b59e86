/**
 * Streaming reader for a DATA body (RFC 5321 §4.1.1.4, §4.5.2): finds the end-of-data line
 * (`.` CRLF at the start of a line, so the wire shows CRLF "." CRLF) and removes the leading
 * "." of every other line that starts with one. Lines are CRLF-delimited; a bare LF does not
 * start a line. The scan jumps between occurrences of CRLF "." with `Buffer.indexOf`, so the
 * cost per chunk is one native search plus a few byte checks at chunk boundaries; the content
 * is passed on as slices of the input, never copied here.
 */

const CRLF_DOT = Buffer.from('\r\n.');
const CR = Buffer.from('\r');

/** Where the reader stands between chunks. */
const enum Pending {
  /** Nothing undecided. */
  None,
  /** A "." at the start of a line: stuffing, or the first octet of the end line. */
  Dot,
  /** "." CR at the start of a line: the end line if LF follows. */
  DotCr,
}

export class DotUnstuffer {
  /** The next octet starts a line (the body starts at a line start: RFC 5321 §4.1.1.4). */
  private lineStart = true;
  /** The last content octet was CR (to see CRLF split across chunks). */
  private lastCr = false;
  private pending = Pending.None;
  private finished = false;

  /** @param emit receives the unstuffed content, in order, as slices of the input chunks. */
  constructor(private readonly emit: (content: Buffer) => void) {}

  /** True once the end-of-data line was seen. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * Feed one chunk. Returns how many octets of it belong to the body, end line included; when
   * that is less than `chunk.length` (or {@link done} is true) the rest is what followed the
   * end of data (pipelined commands).
   */
  push(chunk: Buffer): number {
    if (this.finished) return 0;
    const n = chunk.length;
    let i = 0;
    let seg = 0; // start of the content slice not yet emitted
    if (this.lastCr && n > 0) {
      this.lastCr = false;
      if (chunk[0] === 0x0a) {
        i = 1;
        this.lineStart = true;
      }
    }
    for (;;) {
      if (this.pending === Pending.Dot) {
        if (i >= n) return n;
        if (chunk[i] === 0x0d) {
          this.pending = Pending.DotCr;
          i++;
          continue;
        }
        // "." then something else: a stuffed dot, dropped (RFC 5321 §4.5.2).
        this.pending = Pending.None;
        seg = i;
      } else if (this.pending === Pending.DotCr) {
        if (i >= n) return n;
        if (chunk[i] === 0x0a) {
          this.finished = true;
          this.pending = Pending.None;
          return i + 1;
        }
        // "." CR then not LF: the dot was stuffing; the CR is content.
        this.pending = Pending.None;
        this.emit(CR);
        seg = i;
      } else if (this.lineStart) {
        if (i >= n) {
          if (seg < n) this.emit(chunk.subarray(seg, n));
          return n;
        }
        this.lineStart = false;
        if (chunk[i] === 0x2e) {
          if (seg < i) this.emit(chunk.subarray(seg, i));
          this.pending = Pending.Dot;
          i++;
          continue;
        }
      }
      const j = chunk.indexOf(CRLF_DOT, i);
      if (j === -1) {
        if (seg < n) this.emit(chunk.subarray(seg, n));
        // Remember a line end split across chunks: "...CR" | "LF." or "...CRLF" | ".".
        if (n - i >= 1 && chunk[n - 1] === 0x0d) this.lastCr = true;
        else if (n - i >= 2 && chunk[n - 1] === 0x0a && chunk[n - 2] === 0x0d) this.lineStart = true;
        return n;
      }
      // Content up to and including the CRLF; the dot at j + 2 starts a line.
      this.emit(chunk.subarray(seg, j + 2));
      this.pending = Pending.Dot;
      i = j + 3;
      seg = i;
    }
  }
}
