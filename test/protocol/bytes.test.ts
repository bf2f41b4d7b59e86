import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { concatBytes, hasEightBit, utf8Bytes } from '../../src/protocol/bytes.js';

describe('bytes', () => {
  it('hasEightBit agrees with a byte-by-byte scan at any offset and length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat({ max: 7 }), fc.nat({ max: 7 }), (raw, a, b) => {
        // Mostly 7-bit data with the odd high byte, viewed through unaligned windows.
        const data = raw.map((x) => (x % 13 === 0 ? x | 0x80 : x & 0x7f));
        const view = data.subarray(Math.min(a, data.length), Math.max(Math.min(a, data.length), data.length - b));
        expect(hasEightBit(view)).toBe(view.some((x) => x >= 0x80));
      }),
      { numRuns: 2000 },
    );
  });

  it('utf8Bytes encodes as TextEncoder does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect([...utf8Bytes(s)]).toEqual([...new TextEncoder().encode(s)]);
      }),
    );
  });

  it('concatBytes joins in order', () => {
    expect([...concatBytes(Uint8Array.of(1), Uint8Array.of(), Uint8Array.of(2, 3))]).toEqual([1, 2, 3]);
  });
});
