import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ReplyParser, parseReply } from '../../src/protocol/reply-parser.js';

const enc = new TextEncoder();

describe('parseReply: Postfix smtp_chat_resp rules (POSTFIX-BEHAVIOR.md §1.4)', () => {
  it('multi-line: code and status from the last line, text keeps every line', () => {
    const r = parseReply('250-mx.example\r\n250-PIPELINING\r\n250 2.0.0 done');
    expect(r.code).toBe(250);
    expect(r.status).toBe('2.0.0');
    expect(r.enhanced).toBe('2.0.0');
    expect(r.lines).toEqual(['250-mx.example', '250-PIPELINING', '250 2.0.0 done']);
    expect(r.protocolError).toBe(false);
  });

  it.each([
    ['550 5.1.1 no such user', '5.1.1', '5.1.1'],
    ['550    5.1.1 several spaces', '5.1.1', '5.1.1'],
    ['550 4.1.1 class mismatch', '5.0.0', undefined],
    ['450 5.1.1 class mismatch', '4.0.0', undefined],
    ['550 no code', '5.0.0', undefined],
    ['550 5.1.1234 four digits', '5.0.0', undefined],
    ['550 5.1.1x glued', '5.0.0', undefined],
    ['550 5.1.1.1 two fields', '5.0.0', undefined],
    ['550 5.123.456 wide', '5.123.456', '5.123.456'],
    ['250 2.0.0', '2.0.0', '2.0.0'],
    ['354 5.1.1 3xx is 5.5.0', '5.5.0', undefined],
    ['221 2.0.0 Bye', '2.0.0', '2.0.0'],
    ['199 1.0.0 weird', '5.5.0', undefined],
    ['600 6.0.0 out of range', '5.5.0', undefined],
    ['550', '5.0.0', undefined],
  ])('%s → status %s', (line, status, enhanced) => {
    const r = parseReply(line);
    expect(r.status).toBe(status);
    expect(r.enhanced).toBe(enhanced);
  });

  it('an enhanced code on an earlier line of a multi-line reply is ignored', () => {
    expect(parseReply('550-5.1.1 first\r\n550 last').status).toBe('5.0.0');
  });

  it('garbage lines are kept, flag a protocol error, and never end a reply', () => {
    const p = new ReplyParser();
    expect(p.feed(enc.encode('hello there\r\n2500 no\r\n'))).toEqual([]);
    const [r] = p.feed(enc.encode('220 ok\r\n'));
    expect(r!.code).toBe(220);
    expect(r!.lines).toEqual(['hello there', '2500 no', '220 ok']);
    expect(r!.protocolError).toBe(true);
  });

  it('a code line with nothing after it is final', () => {
    expect(parseReply('250').code).toBe(250);
  });

  it('bare LF line ends are accepted; control characters and bad UTF-8 become "?"', () => {
    const p = new ReplyParser();
    const [r] = p.feed(Uint8Array.from([...enc.encode('250 a\tb '), 0xff, 0x0a]));
    expect(r!.lines[0]).toBe('250 a?b ?');
    expect(parseReply('250 Grüße').lines[0]).toBe('250 Grüße');
  });

  it('is incremental: a reply split anywhere gives the same result', () => {
    const text = '250-one\r\n250-two\r\n250 2.1.0 three\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const p = new ReplyParser();
      const a = p.feed(enc.encode(text.slice(0, cut)));
      const b = p.feed(enc.encode(text.slice(cut)));
      const all = [...a, ...b];
      expect(all).toHaveLength(1);
      expect(all[0]!.lines).toEqual(['250-one', '250-two', '250 2.1.0 three']);
    }
  });

  it('bounded memory: a long line is cut at the limit and flagged; the reply still counts', () => {
    const p = new ReplyParser({ lineLengthLimit: 100 });
    const [r] = p.feed(enc.encode('250 ' + 'x'.repeat(10_000) + '\r\n'));
    expect(r!.lines[0]!.length).toBe(100);
    expect(r!.protocolError).toBe(true);
    expect(r!.code).toBe(250);
  });

  it('bounded memory: more lines than maxReplyLines is an overflow, and input is ignored after it', () => {
    const p = new ReplyParser({ maxReplyLines: 5 });
    p.feed(enc.encode('250-x\r\n'.repeat(6)));
    expect(p.overflow).toBe(true);
    expect(p.feed(enc.encode('250 ok\r\n'))).toEqual([]);
  });

  it('reset() drops what is buffered (STARTTLS)', () => {
    const p = new ReplyParser();
    p.feed(enc.encode('250-partial\r\n250 par'));
    p.reset();
    expect(p.partial).toBe(false);
    expect(p.feed(enc.encode('220 fresh\r\n'))[0]!.lines).toEqual(['220 fresh']);
  });

  it('replyFilter rewrites each line before parsing (smtp_reply_filter)', () => {
    const r = parseReply('550 5.7.1 blocked', { replyFilter: (l) => l.replace(/^550 5/, '450 4') });
    expect(r.code).toBe(450);
    expect(r.status).toBe('4.7.1');
  });

  it('parseReply rejects input that is not exactly one reply', () => {
    expect(() => parseReply('250-only continuation\r\n')).toThrow();
    expect(() => parseReply('250 a\r\n250 b\r\n')).toThrow();
  });
});

describe('ReplyParser properties', () => {
  const text = fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n\u0000-\u001f\u007f]/g, ''));
  const replyArb = fc.record({
    code: fc.integer({ min: 200, max: 599 }),
    lines: fc.array(text, { minLength: 1, maxLength: 6 }),
  });

  it('any sequence of well-formed replies, split at random points, parses back exactly', () => {
    fc.assert(
      fc.property(fc.array(replyArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 10 }), (replies, cuts) => {
        const wire = replies.map((r) => r.lines.map((l, i) => `${r.code}${i === r.lines.length - 1 ? ' ' : '-'}${l}\r\n`).join('')).join('');
        const bytes = enc.encode(wire);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const p = new ReplyParser();
        const got = [];
        let prev = 0;
        for (const c of [...points, bytes.length]) {
          got.push(...p.feed(bytes.subarray(prev, c)));
          prev = c;
        }
        expect(got.map((g) => g.code)).toEqual(replies.map((r) => r.code));
        expect(got.map((g) => g.lines.length)).toEqual(replies.map((r) => r.lines.length));
        for (const g of got) expect(g.protocolError).toBe(false);
      }),
    );
  });

  it('arbitrary bytes never throw, and memory stays bounded', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        const p = new ReplyParser({ lineLengthLimit: 64, maxReplyLines: 8 });
        const replies = p.feed(bytes);
        for (const r of replies) {
          expect(r.lines.length).toBeLessThanOrEqual(8);
          for (const l of r.lines) expect(l.length).toBeLessThanOrEqual(64);
          expect(/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status)).toBe(true);
        }
      }),
    );
  });

  it('the status always has the class of a 2xx/4xx/5xx code, and 5.5.0 otherwise', () => {
    fc.assert(
      fc.property(fc.integer({ min: 100, max: 999 }), fc.constantFrom('', ' 2.1.0', ' 4.4.4', ' 5.7.1', ' x.y.z'), (code, rest) => {
        const r = parseReply(`${code}${rest}`);
        const d = Math.floor(code / 100);
        if (d === 2 || d === 4 || d === 5) expect(r.status[0]).toBe(String(d));
        else expect(r.status).toBe('5.5.0');
      }),
    );
  });
});
