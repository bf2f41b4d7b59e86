/**
 * A small MIME reader for the tests, written independently of src/content: it splits a
 * message (a latin1 string with CRLF line ends) into entities by RFC 2045/2046 and decodes
 * quoted-printable (RFC 2045 §6.7) and base64 bodies.
 */
export interface Entity {
  headers: Array<[name: string, value: string]>;
  /** Body as sent (latin1). */
  raw: string;
  parts?: Entity[];
  preamble?: string;
  epilogue?: string;
  message?: Entity;
}

export const latin1 = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
};
export const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

export function header(e: Entity, name: string): string | undefined {
  const h = e.headers.find(([n]) => n.toLowerCase() === name);
  return h?.[1];
}

export function parseEntity(text: string, defaultType = 'text/plain'): Entity {
  const lines = text.split('\r\n');
  const headers: Array<[string, string]> = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') {
      i++;
      break;
    }
    if ((line[0] === ' ' || line[0] === '\t') && headers.length > 0) {
      headers[headers.length - 1]![1] += line; // RFC 5322 §2.2.3 unfolding
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) break;
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  const raw = lines.slice(i).join('\r\n');
  const e: Entity = { headers, raw };
  const type = (header(e, 'content-type') ?? defaultType).toLowerCase();
  if (type.startsWith('multipart/')) {
    const m = /boundary\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(header(e, 'content-type') ?? '');
    const boundary = m ? (m[1] ?? m[2]!) : undefined;
    if (boundary !== undefined) {
      const partDefault = type.startsWith('multipart/digest') ? 'message/rfc822' : 'text/plain';
      const body = raw.split('\r\n');
      const chunks: string[][] = [[]];
      let closed = false;
      let epilogue: string[] = [];
      for (const line of body) {
        if (closed) {
          epilogue.push(line);
        } else if (line.replace(/[ \t]+$/, '') === `--${boundary}--`) {
          closed = true;
        } else if (line.replace(/[ \t]+$/, '') === `--${boundary}`) {
          chunks.push([]);
        } else {
          chunks[chunks.length - 1]!.push(line);
        }
      }
      e.preamble = chunks[0]!.join('\r\n');
      e.parts = chunks.slice(1).map((c) => parseEntity(c.join('\r\n'), partDefault));
      e.epilogue = epilogue.join('\r\n');
    }
  } else if (type.startsWith('message/rfc822')) {
    e.message = parseEntity(raw);
  }
  return e;
}

/** RFC 2045 §6.7 decoding; also checks the encoded lines (≤ 76 characters, 7-bit, no bare `=`). */
export function decodeQuotedPrintable(text: string): Uint8Array {
  const out: number[] = [];
  const lines = text.split('\r\n');
  lines.forEach((line0, n) => {
    if (line0.length > 76) throw new Error(`quoted-printable line longer than 76: ${line0.length}`);
    if (/[^\t\x20-\x7e]/.test(line0)) throw new Error(`octet not allowed in quoted-printable: ${JSON.stringify(line0)}`);
    if (/[ \t]$/.test(line0)) throw new Error(`trailing white space in quoted-printable: ${JSON.stringify(line0)}`);
    let line = line0;
    const soft = line.endsWith('=');
    if (soft) line = line.slice(0, -1);
    for (let i = 0; i < line.length; i++) {
      if (line[i] === '=') {
        const hex = line.slice(i + 1, i + 3);
        if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`bad escape =${hex}`);
        out.push(parseInt(hex, 16));
        i += 2;
      } else {
        out.push(line.charCodeAt(i));
      }
    }
    if (!soft && n < lines.length - 1) out.push(13, 10);
  });
  return Uint8Array.from(out);
}

/** The body of a leaf, decoded by its Content-Transfer-Encoding. */
export function decodedBody(e: Entity): Uint8Array {
  const cte = (header(e, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(e.raw);
  if (cte === 'base64') return Uint8Array.from(Buffer.from(e.raw.replace(/\s+/g, ''), 'base64'));
  return bytes(e.raw);
}
