import type { ByteSink } from './byte-sink.js';

/**
 * Streaming quoted-printable encoder for one body, line by line (RFC 2045 §6.7), as Postfix
 * downgrades 8-bit text (global/mime_state.c:mime_state_downgrade):
 *
 * - octets below 32 other than HTAB, `=`, and octets above 126 become `=XX` (upper-case hex);
 * - once an encoded line is longer than 72 characters, the next octet starts a new line after
 *   a soft line break `=`, so no encoded line exceeds 76 characters (rule 5);
 * - at a hard line break (end of an input line) a trailing SP or HTAB becomes `=20` / `=09`
 *   (rule 3), and the line ends with CRLF;
 * - a line may arrive in pieces (`hardBreak` false): the encoded line continues across them.
 *
 * A leading `.` and a leading `From ` are left alone, as in Postfix: dot-stuffing belongs to
 * the SMTP content encoder, and RFC 2049 §3 only recommends encoding `From `.
 */
export class QuotedPrintableEncoder {
  /** The encoded line being built: at most 72 + 3 characters, plus a final `=XX` fix-up. */
  private line = new Uint8Array(80);
  private len = 0;

  encode(input: Uint8Array, hardBreak: boolean, out: ByteSink): void {
    const line = this.line;
    let len = this.len;
    for (let i = 0; i < input.length; i++) {
      if (len > 72) {
        out.write(line.subarray(0, len));
        out.write(SOFT_BREAK);
        len = 0;
      }
      const ch = input[i]!;
      if ((ch < 32 && ch !== TAB) || ch === EQ || ch > 126) {
        line[len++] = EQ;
        line[len++] = HEX[ch >> 4]!;
        line[len++] = HEX[ch & 0xf]!;
      } else {
        line[len++] = ch;
      }
    }
    if (hardBreak) {
      const last = len > 0 ? line[len - 1]! : -1;
      if (last === SP || last === TAB) {
        line[len - 1] = EQ;
        line[len++] = HEX[last >> 4]!;
        line[len++] = HEX[last & 0xf]!;
      }
      out.write(line.subarray(0, len));
      out.write(CRLF);
      len = 0;
    }
    this.len = len;
  }

  /** True while part of a line waits for its hard line break. */
  get pending(): boolean {
    return this.len > 0;
  }
}

const TAB = 0x09;
const SP = 0x20;
const EQ = 0x3d;
const HEX = Uint8Array.from('0123456789ABCDEF', (c) => c.charCodeAt(0));
const CRLF = Uint8Array.of(0x0d, 0x0a);
const SOFT_BREAK = Uint8Array.of(EQ, 0x0d, 0x0a);
