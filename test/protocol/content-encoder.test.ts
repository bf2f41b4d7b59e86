import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ContentEncoder, encodeContent } from '../../src/protocol/content-encoder.js';

const enc = new TextEncoder();
const dec = new TextDecoder('latin1');
const latin1 = (b: Uint8Array) => dec.decode(b);
const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** What a receiver does: remove dot-stuffing, then join Postfix's folds (CRLF SPACE after a full line). */
function decode(wire: string, limit: number, stuffed: boolean): string {
  const lines = wire.split('\r\n');
  if (lines.at(-1) === '') lines.pop();
  const out: string[] = [];
  let prevLen = -1;
  for (let line of lines) {
    if (stuffed && line.startsWith('.')) line = line.slice(1);
    if (limit > 0 && prevLen === limit && line.startsWith(' ')) {
      out[out.length - 1] += line.slice(1);
      prevLen = line.length;
      continue;
    }
    out.push(line);
    prevLen = line.length;
  }
  return out.map((l) => l + '\r\n').join('');
}

/** Normalize line ends as the encoder promises: bare CR and bare LF become CRLF; a last line gets one. */
function canonical(s: string): string {
  let t = s.replace(/\r\n|\r|\n/g, '\r\n');
  if (t.length > 0 && !t.endsWith('\r\n')) t += '\r\n';
  return t;
}

describe('ContentEncoder', () => {
  it('dot-stuffs every line that starts with "."', () => {
    expect(latin1(encodeContent(enc.encode('.a\r\n..b\r\nc.\r\n.\r\n')).bytes)).toBe('..a\r\n...b\r\nc.\r\n..\r\n');
  });

  it('bare LF and bare CR become CRLF; a last line without a line end gets CRLF', () => {
    expect(latin1(encodeContent(enc.encode('a\nb\rc\r\nd')).bytes)).toBe('a\r\nb\r\nc\r\nd\r\n');
  });

  it('a CR at the end of one chunk and LF at the start of the next is one line end', () => {
    const e = new ContentEncoder();
    const out = latin1(e.write(enc.encode('a\r'))) + latin1(e.write(enc.encode('\nb'))) + latin1(e.end());
    expect(out).toBe('a\r\nb\r\n');
  });

  it('folds a long line blind at 998 octets with CRLF SPACE; the space counts (Postfix smtp_text_out)', () => {
    const line = 'x'.repeat(5000);
    const wire = latin1(encodeContent(enc.encode(line)).bytes);
    const pieces = wire.split('\r\n').slice(0, -1);
    expect(pieces[0]!.length).toBe(998);
    for (const p of pieces.slice(1)) {
      expect(p.startsWith(' ')).toBe(true);
      expect(p.length).toBeLessThanOrEqual(998);
    }
    expect(pieces.map((p, i) => (i === 0 ? p : p.slice(1))).join('')).toBe(line);
  });

  it('a line of exactly 998 octets is not folded; 999 is', () => {
    expect(latin1(encodeContent(enc.encode('y'.repeat(998))).bytes)).toBe('y'.repeat(998) + '\r\n');
    expect(latin1(encodeContent(enc.encode('y'.repeat(999))).bytes)).toBe('y'.repeat(998) + '\r\n y\r\n');
  });

  it('no dot-stuffing for BDAT; 8-bit bytes pass unchanged and are detected', () => {
    const r = encodeContent(Uint8Array.of(0x2e, 0x41, 0xe9, 0x0a), { dotStuff: false });
    expect(Array.from(r.bytes)).toEqual([0x2e, 0x41, 0xe9, 0x0d, 0x0a]);
    expect(r.eightBit).toBe(true);
    expect(encodeContent(enc.encode('plain')).eightBit).toBe(false);
  });

  it('size counts canonical octets without the stuffing dots (RFC 1870)', () => {
    expect(encodeContent(enc.encode('.a\n')).size).toBe(4);
  });

  it('lineLengthLimit 0 turns folding off', () => {
    const wire = latin1(encodeContent(enc.encode('z'.repeat(3000)), { lineLengthLimit: 0 }).bytes);
    expect(wire).toBe('z'.repeat(3000) + '\r\n');
  });

  it('property: decode(encode(x)) is x with canonical line ends, for any chunking', () => {
    const limit = 20;
    const charArb = fc.constantFrom('a', 'b', '.', ' ', '\r', '\n', '\u00e9', '\u00ff', 'z');
    fc.assert(
      fc.property(fc.array(charArb, { maxLength: 300 }).map((a) => a.join('')), fc.array(fc.nat({ max: 300 }), { maxLength: 6 }), fc.boolean(), (text, cuts, stuff) => {
        const input = bytesOf(text);
        const canon = canonical(text);
        // Folding is ambiguous when an input line of exactly `limit` octets is followed by a
        // line that starts with a space (Postfix's folding has the same property): skip those.
        const lines = canon.split('\r\n');
        fc.pre(!lines.some((l, i) => i > 0 && l.startsWith(' ') && lines[i - 1]!.length >= limit));
        const e = new ContentEncoder({ lineLengthLimit: limit, dotStuff: stuff });
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
        let wire = '';
        let prev = 0;
        for (const c of [...points, input.length]) {
          wire += latin1(e.write(input.subarray(prev, c)));
          prev = c;
        }
        wire += latin1(e.end());
        // Every line on the wire is within the limit (plus a stuffing dot) and ends in CRLF.
        for (const l of wire.split('\r\n').slice(0, -1)) {
          expect(l.length).toBeLessThanOrEqual(limit + (stuff ? 1 : 0));
          expect(l.includes('\r') || l.includes('\n')).toBe(false);
        }
        if (stuff) for (const l of wire.split('\r\n')) expect(l.startsWith('.') ? l.startsWith('..') : true).toBe(true);
        expect(decode(wire, limit, stuff)).toBe(canon);
      }),
      { numRuns: 500 },
    );
  });

  it('encodeContent gives the streaming encoder\'s bytes, and passes canonical input through without a copy', () => {
    // Lines biased towards the canonical form, so both the pass-through and the encoding path run.
    const lineArb = fc.tuple(fc.array(fc.constantFrom('a', '.', ' ', '\u00e9', '\r', '\n'), { maxLength: 12 }), fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r', ''));
    fc.assert(
      fc.property(fc.array(lineArb, { maxLength: 20 }), fc.constantFrom(0, 5, 8, 998), fc.boolean(), (lines, limit, stuff) => {
        const input = bytesOf(lines.map(([cs, end]) => cs.join('') + end).join(''));
        const e = new ContentEncoder({ lineLengthLimit: limit, dotStuff: stuff });
        const expected = latin1(e.write(input)) + latin1(e.end());
        const got = encodeContent(input, { lineLengthLimit: limit, dotStuff: stuff });
        expect(latin1(got.bytes)).toBe(expected);
        expect(got.size).toBe(e.size);
        expect(got.eightBit).toBe(e.eightBit);
        if (expected === latin1(input)) expect(got.bytes).toBe(input);
      }),
      { numRuns: 1000 },
    );
  });
});
