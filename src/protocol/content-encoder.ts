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
import { hasEightBit } from './bytes.js';

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
    const len = chunk.length;
    let o = 0;
    let i = 0;
    // Runs without CR or LF are copied whole; the next CR and LF are found with indexOf and
    // remembered, so a chunk is scanned once whatever its line ends.
    let nextCR = -2;
    let nextLF = -2;
    if (this.pendingCR && len > 0) {
      this.pendingCR = false;
      out[o++] = CR;
      out[o++] = LF;
      this.size += 2;
      this.col = 0;
      if (chunk[0] === LF) i = 1;
    }
    while (i < len) {
      if (nextCR !== -1 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      let brk = len;
      if (nextCR !== -1) brk = nextCR;
      if (nextLF !== -1 && nextLF < brk) brk = nextLF;
      if (brk > i) o = this.copyRun(chunk, i, brk, out, o);
      if (brk === len) break;
      if (chunk[brk] === CR) {
        if (brk + 1 === len) {
          this.pendingCR = true; // CR LF may straddle two chunks
          break;
        }
        i = chunk[brk + 1] === LF ? brk + 2 : brk + 1;
      } else {
        i = brk + 1;
      }
      out[o++] = CR;
      out[o++] = LF;
      this.size += 2;
      this.col = 0;
    }
    return out.subarray(0, o);
  }

  /** Copy a run with no CR or LF: dot-stuff at a line start, cut at the line length limit. */
  private copyRun(chunk: Uint8Array, start: number, end: number, out: Uint8Array, o: number): number {
    if (!this.eightBit && hasEightBit(chunk.subarray(start, end))) this.eightBit = true;
    const limit = this.limit;
    let col = this.col;
    let stuffed = 0;
    let i = start;
    const o0 = o;
    while (i < end) {
      if (limit > 0 && col === limit) {
        out[o++] = CR;
        out[o++] = LF;
        out[o++] = SP;
        col = 1;
        this.folded++;
      }
      if (col === 0 && this.dotStuff && chunk[i] === DOT) {
        out[o++] = DOT;
        stuffed++;
      }
      const take = limit > 0 ? Math.min(limit - col, end - i) : end - i;
      out.set(chunk.subarray(i, i + take), o);
      o += take;
      col += take;
      i += take;
    }
    this.col = col;
    this.size += o - o0 - stuffed;
    return o;
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

/**
 * Encode a whole in-memory message at once. A message that is already canonical comes back as
 * the same array (no copy). `known.eightBit`: the caller has already scanned it for 8-bit octets.
 */
export function encodeContent(message: Uint8Array, options?: ContentEncoderOptions, known?: { eightBit: boolean }): { bytes: Uint8Array; eightBit: boolean; size: number } {
  // Most messages are already canonical: the bytes go out as they are, no copy.
  if (isCanonical(message, options?.lineLengthLimit ?? 998, options?.dotStuff ?? true)) {
    return { bytes: message, eightBit: known?.eightBit ?? hasEightBit(message), size: message.length };
  }
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

/**
 * True when encoding would not change a byte: every line ends in CR LF (the last one too), no
 * bare CR or LF, no line over the limit, and (with dot-stuffing) none starting with ".".
 */
function isCanonical(m: Uint8Array, limit: number, dotStuff: boolean): boolean {
  const len = m.length;
  if (len === 0) return true;
  if (len < 2 || m[len - 2] !== CR || m[len - 1] !== LF) return false;
  let start = 0;
  while (start < len) {
    const lf = m.indexOf(LF, start);
    // The first CR of the line must be the one just before its LF.
    if (lf < 1 || m.indexOf(CR, start) !== lf - 1) return false;
    if (limit > 0 && lf - 1 - start > limit) return false;
    if (dotStuff && m[start] === DOT) return false;
    start = lf + 1;
  }
  return true;
}
