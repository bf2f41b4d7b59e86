/** Byte helpers shared by the pure modules (no Node built-ins). */

/** The parts, one after the other, in one array (the part itself when there is only one). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const textEncoder = new TextEncoder();
type BufferFrom = (s: string, encoding: 'utf8') => Uint8Array;
const nodeBuffer = (globalThis as { Buffer?: { from: BufferFrom } }).Buffer;

/**
 * UTF-8 bytes of a string. Under Node this is `Buffer.from`, which carves small strings out of
 * a shared pool instead of allocating an ArrayBuffer for each (commands are written by the
 * thousand); elsewhere `TextEncoder`.
 */
export const utf8Bytes: (s: string) => Uint8Array = nodeBuffer ? (s) => nodeBuffer.from(s, 'utf8') : (s) => textEncoder.encode(s);

/** A byte with the high bit set (RFC 6152: 8-bit content); read four bytes at a time. */
export function hasEightBit(m: Uint8Array): boolean {
  const n = m.length;
  let i = 0;
  while (i < n && ((m.byteOffset + i) & 3) !== 0) if (m[i++]! & 0x80) return true;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const u = new Uint32Array(m.buffer, m.byteOffset + i, words);
    for (let w = 0; w < words; w++) if (u[w]! & 0x80808080) return true;
    i += words * 4;
  }
  while (i < n) if (m[i++]! & 0x80) return true;
  return false;
}
