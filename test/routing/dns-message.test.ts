import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DnsError,
  TYPE,
  decodeHeaderAndQuestion,
  decodeMessage,
  encodeMessage,
  encodeQuery,
  formatIPv6,
  nameToLabels,
  normalizeName,
  parseIPv6,
  type MessageInput,
  type RecordInput,
} from '../../src/routing/dns-message.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DnsError);
    expect((err as DnsError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('encodeQuery', () => {
  it('writes a recursive query with EDNS0 (1232 octets, DO) and AD, byte for byte', () => {
    const q = encodeQuery({ id: 0x1234, name: 'Example.ORG', type: TYPE.MX, edns: { udpSize: 1232, do: true } });
    expect(Buffer.from(q).toString('hex')).toBe(
      '1234' + '0120' + '0001' + '0000' + '0000' + '0001' + // header: RD, AD; 1 question, 1 additional
        '07' + Buffer.from('Example').toString('hex') + '03' + Buffer.from('ORG').toString('hex') + '00' + '000f' + '0001' +
        '00' + '0029' + '04d0' + '00008000' + '0000', // OPT: root, type 41, 1232, DO, no options
    );
    const m = decodeMessage(q);
    expect(m).toMatchObject({ id: 0x1234, qr: false, rd: true, ad: true, questions: [{ name: 'Example.ORG', type: 15, class: 1 }] });
    expect(m.edns).toMatchObject({ udpSize: 1232, do: true, version: 0 });
  });

  it('without EDNS has no additional record', () => {
    const m = decodeMessage(encodeQuery({ id: 1, name: 'a.example', type: TYPE.A }));
    expect(m.edns).toBeUndefined();
    expect(m.additionals).toEqual([]);
  });

  it('is absolute: a trailing dot changes nothing, and the root is one zero octet', () => {
    expect(encodeQuery({ id: 1, name: 'a.example.', type: 1 })).toEqual(encodeQuery({ id: 1, name: 'a.example', type: 1 }));
    expect(decodeMessage(encodeQuery({ id: 1, name: '.', type: 2 })).questions[0]!.name).toBe('');
  });
});

describe('names', () => {
  it('accepts 63-octet labels and 253-character names, rejects longer ones (EBADNAME)', () => {
    const l63 = 'a'.repeat(63);
    expect(nameToLabels(`${l63}.example`)).toHaveLength(2);
    expectCode(() => nameToLabels(`${'a'.repeat(64)}.example`), 'EBADNAME');
    const n253 = [l63, l63, l63, 'a'.repeat(61)].join('.');
    expect(n253).toHaveLength(253);
    expect(nameToLabels(n253)).toHaveLength(4);
    expect(nameToLabels(`${n253}.`)).toHaveLength(4);
    expectCode(() => nameToLabels(`${n253}a`), 'EBADNAME');
  });

  it.each(['', '..', 'a..b', '.a', 'bücher.example', 'a b.example', 'a\tb', 'a\\256.example', 'a\\1.example', 'a\\'])(
    'rejects %j with EBADNAME',
    (name) => expectCode(() => nameToLabels(name), 'EBADNAME'),
  );

  it('takes A-labels, underscores, escapes; keeps case', () => {
    expect(normalizeName('xn--bcher-kva.Example.')).toBe('xn--bcher-kva.Example');
    expect(normalizeName('_25._tcp.mx.example')).toBe('_25._tcp.mx.example');
    expect(normalizeName('a\\.b.example')).toBe('a\\.b.example');
    expect(nameToLabels('a\\.b.example')[0]).toEqual(Uint8Array.from(Buffer.from('a.b')));
    expect(normalizeName('a\\065\\032b')).toBe('aA\\032b');
    expect(normalizeName('.')).toBe('');
  });
});

describe('IPv6 text', () => {
  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::192.0.2.1'],
    ['fe80::1:2', 'fe80::1:2'],
  ])('%s → %s', (input, out) => {
    expect(formatIPv6(parseIPv6(input)!)).toBe(out);
  });
  it('rejects bad IPv6 text', () => {
    for (const s of ['', ':', '1:2', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7:8:9', '::1.2.3']) expect(parseIPv6(s)).toBeUndefined();
  });
});

const RECORDS: RecordInput[] = [
  { name: 'example.org', type: TYPE.MX, ttl: 300, data: { kind: 'mx', priority: 10, exchange: 'mx1.example.org' } },
  { name: 'example.org', type: TYPE.MX, ttl: 300, data: { kind: 'mx', priority: 0, exchange: '' } },
  { name: 'mx1.example.org', type: TYPE.A, ttl: 60, data: { kind: 'address', address: '192.0.2.1' } },
  { name: 'mx1.example.org', type: TYPE.AAAA, ttl: 60, data: { kind: 'address', address: '2001:db8::25' } },
  { name: 'www.example.org', type: TYPE.CNAME, ttl: 60, data: { kind: 'name', name: 'example.org' } },
  { name: 'example.org', type: TYPE.TXT, ttl: 60, data: { kind: 'txt', strings: [utf8('v=spf1 -all'), new Uint8Array(0), utf8('x')] } },
  {
    name: '_25._tcp.mx1.example.org',
    type: TYPE.TLSA,
    ttl: 60,
    data: { kind: 'tlsa', usage: 3, selector: 1, matchingType: 1, data: hex('00112233445566778899aabbccddeeff') },
  },
  { name: 'example.org', type: 99, class: 1, ttl: 7, data: { kind: 'raw', bytes: hex('0102') } },
];

describe('decodeMessage', () => {
  const msg: MessageInput = {
    id: 7,
    qr: true,
    aa: true,
    rd: true,
    ra: true,
    ad: true,
    questions: [{ name: 'example.org', type: TYPE.MX, class: 1 }],
    answers: RECORDS.slice(0, 2),
    authorities: RECORDS.slice(2, 5),
    additionals: RECORDS.slice(5),
    edns: { udpSize: 4096, do: true },
  };

  it('round-trips every record type, with and without compression', () => {
    for (const compress of [true, false]) {
      const m = decodeMessage(encodeMessage({ ...msg, compress }));
      expect(m).toMatchObject({ id: 7, qr: true, aa: true, rd: true, ra: true, ad: true, tc: false, cd: false, rcode: 0 });
      expect([...m.answers, ...m.authorities, ...m.additionals]).toEqual(
        RECORDS.map((r) => ({ class: 1, ...r, data: r.data instanceof Uint8Array ? { kind: 'raw', bytes: r.data } : r.data })),
      );
      expect(m.edns).toEqual({ udpSize: 4096, do: true, version: 0, extendedRcode: 0, options: new Uint8Array(0) });
    }
  });

  it('compression makes the message smaller and is followed back', () => {
    const plain = encodeMessage({ ...msg, compress: false });
    const packed = encodeMessage(msg);
    expect(packed.length).toBeLessThan(plain.length - 40);
  });

  it('adds the EDNS extended rcode bits', () => {
    const m = decodeMessage(encodeMessage({ id: 1, qr: true, rcode: 16, edns: {} })); // BADVERS
    expect(m.rcode).toBe(16);
  });

  it('decodes a hand-made response with a pointer into the question', () => {
    // id 0xbeef, QR RD RA, 1 q, 1 an: example.com A → c00c A IN ttl 60 93.184.216.34
    const buf = hex(
      'beef 8180 0001 0001 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001' + 'c00c 0001 0001 0000003c 0004 5db8d822',
    );
    const m = decodeMessage(buf);
    expect(m.answers).toEqual([{ name: 'example.com', type: 1, class: 1, ttl: 60, data: { kind: 'address', address: '93.184.216.34' } }]);
    expect(decodeHeaderAndQuestion(buf)).toEqual({ id: 0xbeef, qr: true, opcode: 0, rcode: 0, question: { name: 'example.com', type: 1, class: 1 } });
  });

  it('escapes odd octets in names and reads them back to the same wire form', () => {
    const buf = hex('0001 8000 0001 0000 0000 0000 04 612e5c00 02 2041 00 0001 0001');
    const name = decodeMessage(buf).questions[0]!.name;
    expect(name).toBe('a\\.\\\\\\000.\\032A');
    expect(encodeQuery({ id: 1, name, type: 1 }).subarray(12, 12 + 10)).toEqual(buf.subarray(12, 22));
  });

  const header = (an = 1): string => `0001 8000 0001 ${an.toString(16).padStart(4, '0')} 0000 0000`;
  it.each([
    ['short header', '0001 8000 0000'],
    ['counts beyond the message', '0001 8000 ffff ffff ffff ffff'],
    ['pointer to itself', `${header(0)} c00c 0001 0001`],
    ['forward pointer', `${header(0)} c00e 0001 0001 00`],
    ['pointer loop of two', `${header(0)} 01 61 c00c 0001 0001`],
    ['truncated pointer', `${header(0)} c0`],
    ['extended label type', `${header(0)} 40 00 0001 0001`],
    ['label past the end', `${header(0)} 3f 6161`],
    ['truncated record', `${header()} 00 0001 0001 00 0000 0001 0001 0000`],
    ['A with 3 octets', `${header()} 00 0001 0001 00 0001 0001 00000000 0003 010203`],
    ['AAAA with 4 octets', `${header()} 00 0001 0001 00 001c 0001 00000000 0004 01020304`],
    ['MX name past rdata', `${header()} 00 0001 0001 00 000f 0001 00000000 0003 000a 01`],
    ['MX with trailing octets', `${header()} 00 0001 0001 00 000f 0001 00000000 0004 000a 00 ff`],
    ['TXT string past rdata', `${header()} 00 0001 0001 00 0010 0001 00000000 0002 05 61`],
    ['TLSA too short', `${header()} 00 0001 0001 00 0034 0001 00000000 0002 0301`],
    ['OPT in the answer', `${header()} 00 0001 0001 00 0029 04d0 00000000 0000`],
  ])('rejects %s with EBADRESP', (_what, bytes) => {
    expectCode(() => decodeMessage(hex(bytes)), 'EBADRESP');
  });

  it('rejects a name longer than 255 octets built from pointers', () => {
    // q1 = two 63-octet labels (129 octets); q2 = two more labels, then a pointer to q1: 257.
    const label = '3f' + '61'.repeat(63);
    const ok = hex(`0001 8000 0002 0000 0000 0000 ${label} ${label} 00 0001 0001 ${label} 3d${'62'.repeat(61)} c00c 0001 0001`);
    expect(decodeMessage(ok).questions[1]!.name).toHaveLength(253);
    const long = hex(`0001 8000 0002 0000 0000 0000 ${label} ${label} 00 0001 0001 ${label} ${label} c00c 0001 0001`);
    expectCode(() => decodeMessage(long), 'EBADRESP');
  });

  it('never throws anything but EBADRESP for random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (err) {
          return err instanceof DnsError && err.code === 'EBADRESP';
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws anything but EBADRESP for mutated valid messages (property)', () => {
    const base = encodeMessage(msg);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(base.length),
        (edits, cut) => {
          const b = base.slice(0, Math.max(cut, 12));
          for (const [at, v] of edits) if (at < b.length) b[at] = v;
          try {
            decodeMessage(b);
            decodeHeaderAndQuestion(b);
          } catch (err) {
            return err instanceof DnsError && err.code === 'EBADRESP';
          }
          return true;
        },
      ),
      { numRuns: 5000 },
    );
  });

  const labelArb = fc.stringMatching(/^[a-zA-Z0-9_-]{1,20}$/);
  const nameArb = fc.array(labelArb, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
  const recordArb: fc.Arbitrary<RecordInput> = fc.oneof(
    fc.record({ name: nameArb, ip: fc.ipV4() }).map(({ name, ip }) => ({ name, type: 1, ttl: 1, data: { kind: 'address' as const, address: ip } })),
    fc
      .record({ name: nameArb, b: fc.uint8Array({ minLength: 16, maxLength: 16 }) })
      .map(({ name, b }) => ({ name, type: 28, ttl: 2, data: { kind: 'address' as const, address: formatIPv6(b) } })),
    fc
      .record({ name: nameArb, p: fc.integer({ min: 0, max: 65535 }), x: nameArb })
      .map(({ name, p, x }) => ({ name, type: 15, ttl: 3, data: { kind: 'mx' as const, priority: p, exchange: x } })),
    fc.record({ name: nameArb, x: nameArb }).map(({ name, x }) => ({ name, type: 5, ttl: 4, data: { kind: 'name' as const, name: x } })),
    fc
      .record({ name: nameArb, s: fc.array(fc.uint8Array({ maxLength: 255 }), { maxLength: 4 }) })
      .map(({ name, s }) => ({ name, type: 16, ttl: 5, data: { kind: 'txt' as const, strings: s } })),
  );

  it('decode(encode(m)) keeps every record (property)', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 20 }), fc.boolean(), fc.integer({ min: 0, max: 65535 }), (records, compress, id) => {
        const m = decodeMessage(encodeMessage({ id, qr: true, answers: records, compress }));
        expect(m.id).toBe(id);
        expect(m.answers).toEqual(records.map((r) => ({ class: 1, ...r })));
      }),
      { numRuns: 500 },
    );
  });
});
