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
