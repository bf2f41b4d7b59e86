/**
 * Streaming message encoder (Postfix smtp_proto.c:smtp_text_out; RFC 5321 §2.3.8, §4.5.2,
 * §4.5.3.1.6). Chunk in, wire bytes out; it never holds more than one chunk.
 *
 * - bare LF and bare CR become CR LF, and a last line without a line end gets one;
 * - a line longer than `lineLengthLimit` octets (not counting CR LF) is cut blind at the limit
 *   and continued after CR LF SPACE, the space counting toward the next piece, as Postfix does
 *   (`smtp_line_length_limit`). mailwire, like Postfix, does not re-fold at white space: the
 *   cut can fall inside a word or a multi-byte character, which limits the damage to MIME;
 * - with `dotStuff` (DATA), a `.` at the start of a line is doubled (RFC 5321 §4.5.2). BDAT
 *   content (RFC 3030) is not dot-stuffed.
 */
export interface ContentEncoderOptions {
  /** Postfix `smtp_line_length_limit` (998); 0 turns folding off. */
  lineLengthLimit?: number;
  /** Double a leading dot on each line (DATA). Default true. */
  dotStuff?: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const SP = 0x20;

export class ContentEncoder {
  private readonly limit: number;
  private readonly dotStuff: boolean;
  private col = 0;
  private pendingCR = false;
  /** A byte with the high bit set was seen (the body is 8-bit, RFC 6152). */
  eightBit = false;
  /** Octets of canonical content produced so far, dot-stuffing excluded (RFC 1870 SIZE). */
  size = 0;
  /** Lines cut at the line length limit so far (Postfix logs this once per message). */
  folded = 0;

  constructor(options: ContentEncoderOptions = {}) {
    this.limit = options.lineLengthLimit ?? 998;
    this.dotStuff = options.dotStuff ?? true;
  }

  /** Encode one chunk. The result may be empty (a trailing CR waits for the next chunk). */
  write(chunk: Uint8Array): Uint8Array {
    // Worst case: every byte doubles (bare CR, or "." after a line end), plus one fold per limit.
    const folds = this.limit > 0 ? Math.ceil(chunk.length / this.limit) + 1 : 0;
    const out = new Uint8Array(chunk.length * 2 + 4 + folds * 3);
    let o = 0;
    let col = this.col;
    let pendingCR = this.pendingCR;
    let stuffed = 0;
    let high = 0;
    const limit = this.limit;
    const dotStuff = this.dotStuff;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (pendingCR) {
        pendingCR = false;
        out[o++] = CR;
        out[o++] = LF;
        col = 0;
        if (b === LF) continue;
      }
      if (b === CR) {
        pendingCR = true;
        continue;
      }
      if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
        col = 0;
        continue;
      }
      if (limit > 0 && col === limit) {
        out[o++] = CR;
        out[o++] = LF;
        out[o++] = SP;
        col = 1;
        this.folded++;
      }
      if (col === 0 && b === DOT && dotStuff) {
        out[o++] = DOT;
        stuffed++;
      }
      out[o++] = b;
      high |= b;
      col++;
    }
    this.col = col;
    this.pendingCR = pendingCR;
    if (high & 0x80) this.eightBit = true;
    this.size += o - stuffed;
    return out.subarray(0, o);
  }

  /** Flush: a pending CR, and CR LF after a last line that had no line end. */
  end(): Uint8Array {
    const ends = this.pendingCR || this.col > 0;
    this.pendingCR = false;
    this.col = 0;
    if (!ends) return new Uint8Array(0);
    this.size += 2;
    return Uint8Array.of(CR, LF);
  }
}

/** Encode a whole in-memory message at once. */
export function encodeContent(message: Uint8Array, options?: ContentEncoderOptions): { bytes: Uint8Array; eightBit: boolean; size: number } {
  const enc = new ContentEncoder(options);
  const body = enc.write(message);
  const tail = enc.end();
  let bytes = body;
  if (tail.length > 0) {
    bytes = new Uint8Array(body.length + tail.length);
    bytes.set(body);
    bytes.set(tail, body.length);
  }
  return { bytes, eightBit: enc.eightBit, size: enc.size };
}
