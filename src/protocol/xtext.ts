/** RFC 3461 §4 xtext and RFC 6533 §3 utf-8-addr-xtext encoders (and the xtext decoder). */

const utf8 = new TextEncoder();

/**
 * xtext: octets 33..126 except `+` and `=` stand for themselves, everything else is `+HH`
 * (upper-case hex). Text is taken as UTF-8 octets.
 */
export function encodeXtext(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) {
    out += b >= 33 && b <= 126 && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : '+' + hex2(b);
  }
  return out;
}

/** Inverse of encodeXtext; throws on a malformed `+HH`. */
export function decodeXtext(xtext: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < xtext.length; i++) {
    const c = xtext.charCodeAt(i);
    if (c === 0x2b) {
      const h = xtext.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) throw new SyntaxError(`bad xtext escape at ${i}`);
      bytes.push(parseInt(h, 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * RFC 6533 utf-8-addr-xtext: QCHAR (printable ASCII except `+`, `=`, `\`) stands for itself;
 * every other character is `\x{HEX}` with its Unicode code point.
 */
export function encodeUtf8AddrXtext(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    out += cp >= 0x21 && cp <= 0x7e && cp !== 0x2b && cp !== 0x3d && cp !== 0x5c ? ch : `\\x{${cp.toString(16).toUpperCase()}}`;
  }
  return out;
}

function hex2(b: number): string {
  return (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
}
