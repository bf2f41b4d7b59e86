import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { MimeConversionError, MimeDowngrade, downgradeMime, type MimeDowngradeOptions } from '../../src/content/mime-state.js';
import { bytes, decodeQuotedPrintable, decodedBody, header, latin1, parseEntity, type Entity } from './mime-reader.js';

const utf8 = (s: string) => new TextEncoder().encode(s);
const crlf = (s: string) => s.replace(/\n/g, '\r\n');

/** Convert a latin1 (or, with `asUtf8`, UTF-8) string message written with "\n"; output as latin1. */
function convert(msg: string, options?: MimeDowngradeOptions, asUtf8 = true): { out: string; changed: boolean } {
  const r = downgradeMime(asUtf8 ? utf8(msg) : bytes(msg), options);
  return { out: latin1(r.bytes), changed: r.changed };
}

/** UTF-8 text as it appears in a latin1 view of the output. */
const u = (s: string) => latin1(utf8(s));

describe('MimeDowngrade: leaf entities', () => {
  it('encodes an 8bit text/plain body as quoted-printable and relabels it', () => {
    const { out, changed } = convert(
      'From: a@example.org\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße, Zoë = 1\nplain line\n',
    );
    expect(out).toBe(
      crlf(
        'From: a@example.org\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe, Zo=C3=AB =3D 1\nplain line\n',
      ),
    );
    expect(changed).toBe(true);
  });

  it('moves the new Content-Transfer-Encoding to the end of the header block, as Postfix does', () => {
    const { out } = convert('Content-Transfer-Encoding: 8bit\nContent-Type: text/plain\nSubject: x\n\né\n');
    expect(out).toBe(crlf('Content-Type: text/plain\nSubject: x\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n'));
  });

  it('treats binary like 8bit, and leaves 7bit, quoted-printable, base64 and unknown encodings alone', () => {
    expect(convert('Content-Transfer-Encoding: BINARY\n\nnul\0 é\n').out).toBe(
      crlf('Content-Transfer-Encoding: quoted-printable\n\nnul=00 =C3=A9\n'),
    );
    for (const cte of ['7bit', 'quoted-printable', 'base64', 'x-uuencode']) {
      const msg = `Content-Transfer-Encoding: ${cte}\n\nbody é\n`;
      expect(convert(msg)).toEqual({ out: crlf(u(msg)), changed: false });
    }
  });

  it('parses folded headers, comments and case; folded 8bit labels go away whole', () => {
    const { out } = convert(
      'Content-Type: (comment) TEXT/Plain;\n\tcharset="utf-8"\nContent-Transfer-Encoding:\n  (really) 8Bit\nX-Other: 1\n\nü\n',
    );
    expect(out).toBe(
      crlf(
        'Content-Type: (comment) TEXT/Plain;\n\tcharset="utf-8"\nX-Other: 1\nContent-Transfer-Encoding: quoted-printable\n\n=C3=BC\n',
      ),
    );
  });

  it('writes the obsolete "name :" form as "name:" (Postfix mime_state)', () => {
    const { out, changed } = convert('Subject : hi\nContent-Transfer-Encoding : 7bit\n\nx\n');
    expect(out).toBe(crlf('Subject: hi\nContent-Transfer-Encoding: 7bit\n\nx\n'));
    expect(changed).toBe(true);
  });

  it('leaves 8-bit headers, and 8-bit bodies not declared 8bit, unchanged (Postfix cannot downgrade them)', () => {
    const msg = 'Subject: Grüße\nContent-Type: text/plain; charset=utf-8\n\nGrüße\n';
    expect(convert(msg)).toEqual({ out: crlf(u(msg)), changed: false });
  });

  it('adds the empty line after primary headers that run into body text (Postfix)', () => {
    const { out, changed } = convert('Subject: x\nContent-Transfer-Encoding: 8bit\nnot a header é\n');
    expect(out).toBe(crlf('Subject: x\nContent-Transfer-Encoding: quoted-printable\n\nnot a header =C3=A9\n'));
    expect(changed).toBe(true);
  });
});

describe('MimeDowngrade: quoted-printable lines', () => {
  const qpBody = (body: string, raw = false) => {
    const { out } = convert(`Content-Transfer-Encoding: 8bit\n\n${body}`, undefined, !raw);
    return out.slice(out.indexOf('\r\n\r\n') + 4);
  };

  it('breaks lines softly so that no encoded line exceeds 76 characters', () => {
    expect(qpBody('a'.repeat(80) + '\n')).toBe(`${'a'.repeat(73)}=\r\n${'a'.repeat(7)}\r\n`);
    const body = qpBody('é'.repeat(60) + ' x'.repeat(50) + '\n');
    for (const line of body.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect(decodeQuotedPrintable(body.slice(0, -2))).toEqual(utf8('é'.repeat(60) + ' x'.repeat(50)));
  });

  it('encodes trailing spaces and tabs, and keeps inner ones', () => {
    expect(qpBody('a b \nc\t\n \n\t\t\n \t x\n')).toBe('a b=20\r\nc=09\r\n=20\r\n\t=09\r\n \t x\r\n');
  });

  it('encodes "=", controls, DEL and every 8-bit octet; never emits an 8-bit octet', () => {
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i))
      .join('')
      .replace(/[\r\n]/g, '');
    const body = qpBody(all + '\n', true);
    expect(/[^\t\r\n\x20-\x7e]/.test(body)).toBe(false);
    expect(body).toContain('=3D');
    expect(body).toContain('=7F');
    expect(body).toContain('=FF');
    expect(decodeQuotedPrintable(body.slice(0, -2))).toEqual(bytes(all));
  });

  it('keeps a lone "." and "From " lines as they are: dot-stuffing belongs to the SMTP encoder', () => {
    expect(qpBody('.\nFrom me\n..\n>From x é\n')).toBe('.\r\nFrom me\r\n..\r\n>From x =C3=A9\r\n');
  });

  it('keeps a bare CR inside a line as data (=0D); CRLF and LF are line ends', () => {
    expect(qpBody('a\rb\r\nc\n', true)).toBe('a=0Db\r\nc\r\n');
  });
});

describe('MimeDowngrade: multipart and message entities', () => {
  const mixed = crlf(
    [
      'From: a@example.org',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="=_outer"',
      'Content-Transfer-Encoding: 8bit',
      '',
      'This is a MIME message. Préambule.',
      '--=_outer',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Grüße',
      '--=_outer',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      '',
      'AAECAwQF',
      '--=_outer--',
      'Épilogue.',
      '',
    ].join('\n'),
  );

  it('converts the 8bit part, relabels the multipart 7bit, and keeps base64, preamble and epilogue', () => {
    const { out } = convert(mixed);
    expect(out).toBe(
      u(
        mixed
          .replace('Content-Transfer-Encoding: 8bit\r\n\r\nThis', 'Content-Transfer-Encoding: 7bit\r\n\r\nThis')
          .replace('Content-Transfer-Encoding: 8bit\r\n\r\nGrüße', 'Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe'),
      ),
    );
    // Headers of the multipart: the 8bit label is replaced at the end of the block.
    expect(out.startsWith(crlf('From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="=_outer"\nContent-Transfer-Encoding: 7bit\n\n'))).toBe(true);
  });

  it('decodes back with mailparser', async () => {
    const parsed = await simpleParser(Buffer.from(downgradeMime(utf8(mixed)).bytes));
    expect(parsed.text?.trim()).toBe('Grüße');
    expect([...parsed.attachments[0]!.content]).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('follows nested multiparts and returns to the outer boundary', () => {
    const msg = [
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: multipart/alternative;',
      ' boundary="inner"',
      '',
      '--inner',
      'Content-Transfer-Encoding: 8bit',
      '',
      'ä',
      '--inner',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      '<p>ö</p>',
      '--inner--',
      '--outer',
      'Content-Transfer-Encoding: 8bit',
      '',
      'ü',
      '--outer--',
      '',
    ].join('\n');
    const { out } = convert(msg);
    const e = parseEntity(out.slice(0, -2));
    const alt = e.parts![0]!;
    expect(alt.parts!.map((p) => latin1(decodedBody(p)))).toEqual([u('ä'), u('<p>ö</p>')]);
    expect(alt.parts!.map((p) => header(p, 'content-transfer-encoding'))).toEqual(['quoted-printable', 'quoted-printable']);
    expect(latin1(decodedBody(e.parts![1]!))).toBe(u('ü'));
    expect(/[\x80-\xff]/.test(out)).toBe(false);
  });

  it('reads message/rfc822 headers and converts the enclosed 8bit body', () => {
    const msg = [
      'Content-Type: message/rfc822',
      'Content-Transfer-Encoding: 8bit',
      '',
      'From: b@example.org',
      'Subject: Grüße',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Grüße',
      '',
    ].join('\n');
    expect(convert(msg).out).toBe(
      crlf(
        [
          'Content-Type: message/rfc822',
          'Content-Transfer-Encoding: 7bit',
          '',
          'From: b@example.org',
          `Subject: ${u('Grüße')}`,
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: quoted-printable',
          '',
          'Gr=C3=BC=C3=9Fe',
          '',
        ].join('\n'),
      ),
    );
  });

  it('gives multipart/digest parts the default type message/rfc822 (RFC 2046 §5.1.5)', () => {
    const msg = [
      'Content-Type: multipart/digest; boundary=d',
      '',
      '--d',
      '',
      'Subject: one',
      'Content-Transfer-Encoding: 8bit',
      '',
      'é',
      '--d--',
      '',
    ].join('\n');
    const { out } = convert(msg);
    expect(out).toContain(crlf('Subject: one\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--d--'));
  });

  it('Departure: an explicit application/* type in a digest is a leaf, not message/rfc822', () => {
    const msg = ['Content-Type: multipart/digest; boundary=d', '', '--d', 'Content-Type: application/x-thing', 'Content-Transfer-Encoding: 8bit', '', 'é', '--d--', ''].join('\n');
    expect(convert(msg).out).toContain(crlf('Content-Type: application/x-thing\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n'));
  });

  it('message/global declared 8bit is a leaf: quoted-printable (RFC 6532 §3.5, Postfix)', () => {
    const msg = 'Content-Type: message/global\nContent-Transfer-Encoding: 8bit\n\nSubject: é\n\né\n';
    expect(convert(msg).out).toBe(crlf('Content-Type: message/global\nContent-Transfer-Encoding: quoted-printable\n\nSubject: =C3=A9\n\n=C3=A9\n'));
  });

  it('Departure: message/partial declared 8bit is labeled quoted-printable, the way it is encoded', () => {
    const msg = 'Content-Type: message/partial; id="x"; number=1\nContent-Transfer-Encoding: 8bit\n\né\n';
    expect(convert(msg).out).toBe(
      crlf('Content-Type: message/partial; id="x"; number=1\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n'),
    );
  });

  it('compares boundaries on at most boundaryLengthLimit characters, and ignores what follows', () => {
    const msg = [
      'Content-Type: multipart/mixed; boundary="0123456789abc"',
      '',
      '--0123456789abc',
      'Content-Transfer-Encoding: 8bit',
      '',
      'é',
      '--0123456789XYZ', // the same boundary for a limit of 10
      'Content-Type: text/plain',
      '',
      'ü',
      '--0123456789abc--',
      '',
    ].join('\n');
    const limited = convert(msg, { boundaryLengthLimit: 10 }).out;
    expect(limited).toContain(crlf('=C3=A9\n--0123456789XYZ\nContent-Type: text/plain\n\n') + u('ü'));
    // With the default limit the line is body text of the 8bit part.
    expect(convert(msg).out).toContain(crlf('=C3=A9\n--0123456789XYZ\nContent-Type: text/plain\n\n=C3=BC\n'));
  });

  it('handles a boundary longer than the limit and than a Postfix record', () => {
    const b = 'b'.repeat(3000);
    const msg = `Content-Type: multipart/mixed; boundary="${b}"\n\n--${b}\nContent-Transfer-Encoding: 8bit\n\né\n--${b}\nContent-Transfer-Encoding: 8bit\n\nü\n--${b}--\n`;
    const { out } = convert(msg);
    expect(out).toContain(crlf(`--${b}\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n--${b}\n`));
    expect(out).toContain(crlf('=C3=BC\n--'));
    expect(/[\x80-\xff]/.test(out)).toBe(false);
  });

  it('a boundary is not seen in the middle of a long line cut into records', () => {
    const msg = `Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: 8bit\n\n${'x'.repeat(2048)}--b--é\n--b--\n`;
    const { out } = convert(msg);
    const e = parseEntity(out.slice(0, -2));
    expect(latin1(decodedBody(e.parts![0]!))).toBe('x'.repeat(2048) + u('--b--é'));
  });
});

describe('MimeDowngrade: nesting limit (mime_nesting_limit)', () => {
  const nested = (depth: number) => {
    let msg = '';
    for (let i = 0; i < depth; i++) msg += `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n`;
    msg += 'Content-Transfer-Encoding: 8bit\n\né\n';
    for (let i = depth - 1; i >= 0; i--) msg += `--b${i}--\n`;
    return msg;
  };

  it('passes nestingLimit + 2 levels, as Postfix (its counter starts at -1)', () => {
    expect(convert(nested(4), { nestingLimit: 2 }).out).toContain('=C3=A9');
    expect(convert(nested(102)).out).toContain('=C3=A9');
  });

  it('fails the next level with 5.6.0 "MIME nesting exceeds safety limit"', () => {
    for (const [depth, options] of [
      [5, { nestingLimit: 2 }],
      [103, {}],
    ] as const) {
      let err: unknown;
      try {
        convert(nested(depth), options);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MimeConversionError);
      expect((err as MimeConversionError).status).toBe('5.6.0');
      expect((err as MimeConversionError).detail).toBe('MIME nesting exceeds safety limit');
    }
  });

  it('sibling multiparts do not add up', () => {
    const inner = (i: number) => `--o\nContent-Type: multipart/mixed; boundary=i${i}\n\n--i${i}\n\nx\n--i${i}--\n`;
    const msg = `Content-Type: multipart/mixed; boundary=o\n\n${[1, 2, 3, 4, 5].map(inner).join('')}--o--\n`;
    expect(() => convert(msg, { nestingLimit: 1 })).not.toThrow();
  });

  it('after the error, write() and end() throw it again', () => {
    const d = new MimeDowngrade({ nestingLimit: 1 });
    expect(() => d.write(utf8(nested(4)))).toThrow(MimeConversionError);
    expect(() => d.end()).toThrow('MIME nesting exceeds safety limit');
  });
});

describe('MimeDowngrade: line ends, identity, limits', () => {
  const sevenBit = 'From: a@example.org\r\nSubject: hello\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi =\r\n.\r\n--x--\r\n';

  it('passes a 7-bit message byte for byte, changed === false', () => {
    expect(convert(sevenBit)).toEqual({ out: sevenBit, changed: false });
  });

  it('turns LF into CRLF, and ends a last line without a line end, without counting that as a change', () => {
    expect(convert(sevenBit.replace(/\r\n/g, '\n'))).toEqual({ out: sevenBit, changed: false });
    expect(convert('Subject: x\n\nno line end')).toEqual({ out: 'Subject: x\r\n\r\nno line end\r\n', changed: false });
    expect(convert('')).toEqual({ out: '', changed: false });
  });

  it('gives the same output for CRLF and LF input with 8-bit parts', () => {
    const msg = 'Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Transfer-Encoding: 8bit\n\né  \n--x--\n';
    expect(convert(msg).out).toBe(convert(crlf(msg)).out);
  });

  it('accepts chunks split inside CRLF and inside a multi-byte character', () => {
    const msg = utf8(crlf('Content-Transfer-Encoding: 8bit\n\nGrüße\n'));
    const d = new MimeDowngrade();
    const parts = [...msg].map((b) => d.write(Uint8Array.of(b)));
    parts.push(d.end());
    expect(latin1(Uint8Array.from(parts.flatMap((p) => [...p])))).toBe(crlf('Content-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n'));
  });

  it('Departure: a header longer than headerSizeLimit is sent whole; only its start is parsed', () => {
    const long = `X-Long: ${'a'.repeat(50)}\n ${'b'.repeat(50)}\n ${'c'.repeat(50)}\n`;
    const msg = `${long}Content-Transfer-Encoding: 8bit\n\né\n`;
    expect(convert(msg, { headerSizeLimit: 60 }).out).toBe(crlf(`${long}Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n`));
    // An oversized 8bit label is still dropped, continuation lines and all.
    const cte = `Content-Transfer-Encoding: 8bit\n ${'(comment) '.repeat(20)}\n (more)\n\né\n`;
    expect(convert(cte, { headerSizeLimit: 40 }).out).toBe(crlf('Content-Transfer-Encoding: quoted-printable\n\n=C3=A9\n'));
  });

  it('streams: a long line comes out as it goes in, never held whole', () => {
    const d = new MimeDowngrade();
    d.write(utf8('Content-Transfer-Encoding: 8bit\n\n'));
    const chunk = utf8('é'.repeat(32768)); // 64 KiB, no line end
    let written = 0;
    for (let i = 0; i < 64; i++) {
      written += d.write(chunk).length;
      // Everything but the last record (2048 octets) is out: 3 encoded characters per octet, plus soft breaks.
      expect(written).toBeGreaterThanOrEqual((chunk.length * (i + 1) - 2048) * 3);
    }
    expect(latin1(d.end()).endsWith('=C3=A9\r\n')).toBe(true);
  });

  it('rejects limits that are not positive integers', () => {
    expect(() => new MimeDowngrade({ nestingLimit: 0 })).toThrow(/nestingLimit/);
    expect(() => new MimeDowngrade({ boundaryLengthLimit: 1.5 })).toThrow(/boundaryLengthLimit/);
  });
});

describe('MimeDowngrade: eightBitMessage (mailwire extension)', () => {
  it('labels a message without MIME headers as text/plain; charset=unknown-8bit and encodes it', () => {
    const { out, changed } = convert('From: a@example.org\nSubject: x\n\nGrüße\n', { eightBitMessage: true });
    expect(out).toBe(
      crlf(
        'From: a@example.org\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n',
      ),
    );
    expect(changed).toBe(true);
  });

  it('also for a message that is only headers, or only body', () => {
    expect(convert('Subject: x\n', { eightBitMessage: true }).out).toBe(
      crlf('Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\nContent-Transfer-Encoding: quoted-printable\n'),
    );
    expect(convert('é\n', { eightBitMessage: true }).out).toBe(
      crlf('MIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9\n'),
    );
    expect(convert('', { eightBitMessage: true }).out).toBe('');
  });

  it('does nothing when any of MIME-Version, Content-Type, Content-Transfer-Encoding is present, or without the option', () => {
    for (const h of ['MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit']) {
      const msg = `Subject: x\n${h}\n\nGrüße\n`;
      expect(convert(msg, { eightBitMessage: true })).toEqual({ out: crlf(u(msg)), changed: false });
    }
    const msg = 'Subject: x\n\nGrüße\n';
    expect(convert(msg)).toEqual({ out: crlf(u(msg)), changed: false });
  });

  it('leaves enclosed messages to Postfix rules (only the primary header block counts)', () => {
    const msg = 'Content-Type: message/rfc822\n\nSubject: inner\n\nGrüße\n';
    expect(convert(msg, { eightBitMessage: true }).out).toBe(crlf(u(msg)));
  });
});

// ---- properties -------------------------------------------------------------------------------

type Cte = string | null;
type Node =
  | { kind: 'leaf'; type: string; cte: Cte; lines: Uint8Array[] }
  | { kind: 'base64'; data: Uint8Array }
  | { kind: 'multi'; subtype: string; cte: Cte; fold: boolean; parts: Node[]; preamble: Uint8Array[]; epilogue: Uint8Array[] }
  | { kind: 'message'; cte: Cte; inner: Node };

const CONVERTED = ['8bit', '8BIT', 'binary'];

/** A line without CR or LF that does not start with "-" (so it is never a boundary). */
function line(source: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return source.map((b) => {
    const c = b.map((x) => (x === 0x0a || x === 0x0d ? 0x78 : x));
    if (c[0] === 0x2d) c[0] = 0x78;
    return c;
  });
}
const asciiLine = line(
  fc.oneof(
    fc.string({ unit: 'grapheme-ascii', maxLength: 100 }).map((s) => utf8(s)),
    fc.constantFrom('.', 'From here', 'trailing  ', 'tab\t', '=3D', '', ' ').map((s) => utf8(s)),
  ),
);
const eightBitLine = line(
  fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 100 }).map((s) => utf8(s)),
    fc.uint8Array({ maxLength: 120 }),
    fc.uint8Array({ minLength: 900, maxLength: 2500 }), // longer than a QP line and than a record
    asciiLine,
  ),
);

function tree(otherLine: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Node> {
  const { node } = fc.letrec<{ node: Node; leaf: Node; multi: Node; message: Node }>((tie) => ({
    node: fc.oneof({ maxDepth: 3, depthIdentifier: 'mime' }, tie('leaf'), tie('multi'), tie('message')),
    leaf: fc.oneof(
      fc.record({
        kind: fc.constant('leaf' as const),
        type: fc.constantFrom('text/plain; charset=utf-8', 'application/octet-stream', 'text/html'),
        cte: fc.constantFrom(...CONVERTED),
        lines: fc.array(eightBitLine, { maxLength: 6 }),
      }),
      fc.record({
        kind: fc.constant('leaf' as const),
        type: fc.constantFrom('text/plain', 'text/plain; charset=us-ascii'),
        cte: fc.constantFrom('7bit', null),
        lines: fc.array(otherLine, { maxLength: 4 }),
      }),
      fc.record({ kind: fc.constant('base64' as const), data: fc.uint8Array({ maxLength: 200 }) }),
    ),
    multi: fc.record({
      kind: fc.constant('multi' as const),
      subtype: fc.constantFrom('mixed', 'alternative', 'related'),
      cte: fc.constantFrom('8bit', 'binary', '7bit', null),
      fold: fc.boolean(),
      parts: fc.array(tie('node'), { minLength: 1, maxLength: 3 }),
      preamble: fc.array(otherLine, { maxLength: 2 }),
      epilogue: fc.array(otherLine, { maxLength: 2 }),
    }),
    message: fc.record({ kind: fc.constant('message' as const), cte: fc.constantFrom('8bit', '7bit', null), inner: tie('node') }),
  }));
  return node;
}

/** The entity as lines without line ends; boundaries are numbered per message. */
function render(n: Node, counter: { n: number }): Uint8Array[] {
  const h = (s: string) => bytes(s);
  const cte = (c: Cte) => (c === null ? [] : [h(`Content-Transfer-Encoding: ${c}`)]);
  switch (n.kind) {
    case 'leaf':
      return [h(`Content-Type: ${n.type}`), ...cte(n.cte), h(''), ...n.lines];
    case 'base64': {
      const b64 = Buffer.from(n.data).toString('base64').match(/.{1,76}/g) ?? [];
      return [h('Content-Type: application/octet-stream'), h('Content-Transfer-Encoding: base64'), h(''), ...b64.map(h)];
    }
    case 'message':
      return [h('Content-Type: message/rfc822'), ...cte(n.cte), h(''), h('From: inner@example.org'), h('Subject: enclosed'), ...render(n.inner, counter)];
    case 'multi': {
      const b = `=_mw${counter.n++}.${'x'.repeat(counter.n % 3)}`;
      const type = n.fold ? [h(`Content-Type: multipart/${n.subtype};`), h(`\tboundary="${b}"`)] : [h(`Content-Type: multipart/${n.subtype}; boundary="${b}"`)];
      const out = [...type, ...cte(n.cte), h(''), ...n.preamble];
      for (const p of n.parts) out.push(h(`--${b}`), ...render(p, counter));
      out.push(h(`--${b}--`), ...n.epilogue);
      return out;
    }
  }
}

function join(lines: Uint8Array[], nl: string): Uint8Array {
  const sep = bytes(nl);
  const total = lines.reduce((s, l) => s + l.length + sep.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const l of lines) {
    out.set(l, o);
    o += l.length;
    out.set(sep, o);
    o += sep.length;
  }
  return out;
}

const joinCrlf = (lines: Uint8Array[]) => latin1(join(lines, '\r\n')).slice(0, -2);

function message(n: Node, nl: string): Uint8Array {
  return join([bytes('From: a@example.org'), bytes('MIME-Version: 1.0'), ...render(n, { n: 0 })], nl);
}

/** Each entity of the output decodes to what the generator put in. */
function checkEntity(n: Node, e: Entity): void {
  const cte = header(e, 'content-transfer-encoding');
  switch (n.kind) {
    case 'leaf':
      if (n.cte !== null && CONVERTED.includes(n.cte)) expect(cte).toBe('quoted-printable');
      else expect(cte).toBe(n.cte ?? undefined);
      expect(latin1(decodedBody(e))).toBe(joinCrlf(n.lines));
      return;
    case 'base64':
      expect(decodedBody(e)).toEqual(n.data);
      return;
    case 'message':
      expect(cte).toBe(n.cte === '8bit' ? '7bit' : (n.cte ?? undefined));
      expect(header(e.message!, 'subject')).toBe('enclosed');
      checkEntity(n.inner, e.message!);
      return;
    case 'multi':
      expect(cte).toBe(n.cte !== null && CONVERTED.includes(n.cte) ? '7bit' : (n.cte ?? undefined));
      expect(e.preamble).toBe(joinCrlf(n.preamble));
      expect(e.epilogue).toBe(joinCrlf(n.epilogue));
      expect(e.parts).toHaveLength(n.parts.length);
      n.parts.forEach((p, i) => checkEntity(p, e.parts![i]!));
      return;
  }
}

/** Output lines of the converted leaves: 7-bit and at most 76 characters (decodeQuotedPrintable checks). */
function run(input: Uint8Array, options?: MimeDowngradeOptions, cuts: number[] = []): { out: string; changed: boolean } | { error: string } {
  try {
    const d = new MimeDowngrade(options);
    const pieces: Uint8Array[] = [];
    let at = 0;
    for (const c of [...cuts].sort((a, b) => a - b)) {
      pieces.push(d.write(input.subarray(at, c)));
      at = c;
    }
    pieces.push(d.write(input.subarray(at)), d.end());
    return { out: pieces.map(latin1).join(''), changed: d.changed };
  } catch (e) {
    return { error: String(e) };
  }
}

/** Inputs that are not well-formed MIME: header-like lines, boundaries, long lines, CRs. */
const soup = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'Content-Type: multipart/mixed; boundary=b',
        'Content-Type: multipart/digest; boundary="c"',
        'Content-Type: message/rfc822',
        'Content-Type : text/plain',
        'Content-Transfer-Encoding: 8bit',
        'Content-Transfer-Encoding: binary',
        'MIME-Version: 1.0',
        ' folded',
        '--b',
        '--b--',
        '--c',
        '--c--',
        '',
        '.',
        'From x',
        'é  ',
        '\r',
      ),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme-ascii', minLength: 2040, maxLength: 2100 }),
    ),
    { maxLength: 30 },
  )
  .chain((ls) => fc.tuple(fc.constant(ls), fc.constantFrom('\n', '\r\n'), fc.boolean()))
  .map(([ls, nl, last]) => utf8(ls.join(nl) + (last ? nl : '')));

const cutsOf = (input: Uint8Array) => fc.array(fc.integer({ min: 0, max: input.length }), { maxLength: 12 });

describe('MimeDowngrade properties', () => {
  it('(1) the output does not depend on how the input is cut into chunks', () => {
    const input = fc.oneof(
      fc.tuple(tree(eightBitLine), fc.constantFrom('\n', '\r\n')).map(([n, nl]) => message(n, nl)),
      soup,
    );
    fc.assert(
      fc.property(
        input.chain((i) => fc.tuple(fc.constant(i), cutsOf(i), fc.boolean())),
        ([i, cuts, eightBitMessage]) => {
          const options = { eightBitMessage, nestingLimit: 1, boundaryLengthLimit: 3 };
          expect(run(i, options, cuts)).toEqual(run(i, options));
          // One byte at a time.
          if (i.length < 3000) expect(run(i, options, Array.from({ length: i.length }, (_, k) => k))).toEqual(run(i, options));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('(2) every part decodes back to the original bytes (independent reader)', () => {
    fc.assert(
      fc.property(tree(eightBitLine), fc.constantFrom('\n', '\r\n'), (n, nl) => {
        const r = downgradeMime(message(n, nl));
        const out = latin1(r.bytes);
        expect(out.endsWith('\r\n')).toBe(true);
        const e = parseEntity(out.slice(0, -2));
        expect(header(e, 'mime-version')).toBe('1.0');
        checkEntity(n, e);
      }),
      { numRuns: 300 },
    );
  });

  it('(2) every part decodes back with mailparser', async () => {
    const part = fc.oneof(
      fc.record({ text: fc.array(fc.string({ unit: 'grapheme', maxLength: 90 }).map((s) => s.replace(/[\r\n]/g, ' ')), { maxLength: 5 }) }),
      fc.record({ bin: fc.array(line(fc.uint8Array({ maxLength: 150 })), { maxLength: 5 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(part, { minLength: 1, maxLength: 4 }), fc.constantFrom('\n', '\r\n'), async (parts, nl) => {
        const lines: Uint8Array[] = [bytes('From: a@example.org'), bytes('MIME-Version: 1.0'), bytes('Content-Type: multipart/mixed; boundary="=_b"'), bytes('')];
        const expected: Uint8Array[] = [];
        parts.forEach((p, i) => {
          const body = 'text' in p ? p.text.map(utf8) : p.bin;
          lines.push(
            bytes('--=_b'),
            bytes('text' in p ? 'Content-Type: text/plain; charset=utf-8' : 'Content-Type: application/octet-stream'),
            bytes(`Content-Disposition: attachment; filename="part${i}"`),
            bytes('text' in p ? 'Content-Transfer-Encoding: 8bit' : 'Content-Transfer-Encoding: binary'),
            bytes(''),
            ...body,
          );
          expected.push(bytes(joinCrlf(body)));
        });
        lines.push(bytes('--=_b--'));
        const contents = async (m: Uint8Array) => (await simpleParser(Buffer.from(m))).attachments.map((a) => new Uint8Array(a.content));
        const original = await contents(join(lines, '\r\n'));
        const converted = await contents(downgradeMime(join(lines, nl)).bytes);
        // What mailparser reads in the 8-bit original (with CRLF line ends; it keeps a lone
        // empty line of a part, so that is the reference), and the bytes the generator put in.
        expect(converted).toEqual(original);
        expected.forEach((e, i) => {
          if (e.length > 0) expect(converted[i]).toEqual(e);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('(2) the eightBitMessage extension decodes back', () => {
    fc.assert(
      fc.property(fc.array(eightBitLine, { maxLength: 8 }), (body) => {
        const input = join([bytes('Subject: x'), bytes(''), ...body], '\n');
        const out = latin1(downgradeMime(input, { eightBitMessage: true }).bytes);
        const e = parseEntity(out.slice(0, -2));
        expect(header(e, 'content-type')).toBe('text/plain; charset=unknown-8bit');
        expect(latin1(decodedBody(e))).toBe(joinCrlf(body));
        expect(/[\x80-\xff]/.test(out)).toBe(false);
      }),
    );
  });

  it('(3) with 8-bit octets only in 8bit/binary leaves, the output is 7-bit; no output line exceeds 998 octets', () => {
    fc.assert(
      fc.property(tree(asciiLine), fc.constantFrom('\n', '\r\n'), (n, nl) => {
        const out = latin1(downgradeMime(message(n, nl)).bytes);
        expect(/[\x80-\xff]/.test(out)).toBe(false);
        for (const l of out.split('\r\n')) expect(l.length).toBeLessThanOrEqual(998);
        expect(/\r(?!\n)|(?<!\r)\n/.test(out)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
