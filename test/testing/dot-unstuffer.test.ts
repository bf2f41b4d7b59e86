import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DotUnstuffer } from '../../src/testing/dot-unstuffer.js';

/** Feed `chunks` and return [content, octets of the input that belonged to the body, done]. */
function run(chunks: Buffer[]): { content: Buffer; used: number; done: boolean } {
  const parts: Buffer[] = [];
  const u = new DotUnstuffer((b) => parts.push(Buffer.from(b)));
  let used = 0;
  for (const c of chunks) {
    const n = u.push(c);
    used += n;
    if (u.done) break;
  }
  return { content: Buffer.concat(parts), used, done: u.done };
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** RFC 5321 §4.5.2: the sender's side, for round trips. */
function stuff(message: string): string {
  const body = message.replace(/(^|\r\n)\./g, '$1..');
  return `${body}${body === '' || body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`;
}

function splitAt(s: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(s.subarray(prev, p));
    prev = p;
  }
  out.push(s.subarray(prev));
  return out;
}

describe('DotUnstuffer', () => {
  it('ends at CRLF.CRLF and keeps the final CRLF of the content', () => {
    const r = run([b('Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n')]);
    expect(r.done).toBe(true);
    expect(r.content.toString()).toBe('Subject: x\r\n\r\nhello\r\n');
    expect(r.used).toBe('Subject: x\r\n\r\nhello\r\n.\r\n'.length);
  });

  it('takes an empty message', () => {
    const r = run([b('.\r\nNOOP\r\n')]);
    expect(r).toMatchObject({ done: true, used: 3 });
    expect(r.content.length).toBe(0);
  });

  it('removes one leading dot of a line (RFC 5321 §4.5.2)', () => {
    const r = run([b('..a\r\n.b\r\n...\r\nx.y\r\n..\r\n.\r\n')]);
    expect(r.content.toString()).toBe('.a\r\nb\r\n..\r\nx.y\r\n.\r\n');
  });

  it('does not treat a dot after a bare LF or bare CR as a line start', () => {
    const r = run([b('a\n.b\r.c\r\n.\r\n')]);
    expect(r.content.toString()).toBe('a\n.b\r.c\r\n');
  });

  it('does not end at LF.LF or at ".\\r" followed by something else', () => {
    const r = run([b('a\n.\nb\r\n.\rx\r\n.\r\n')]);
    expect(r.content.toString()).toBe('a\n.\nb\r\n\rx\r\n');
  });

  it('handles every split of the terminator and of stuffed dots', () => {
    const input = b('x\r\n..y\r\n.\r\r\n.\r\nTAIL');
    const expected = 'x\r\n.y\r\n\r\r\n';
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        const r = run([input.subarray(0, i), input.subarray(i, j), input.subarray(j)]);
        expect(r.content.toString('latin1')).toBe(expected);
        expect(r.used).toBe(input.length - 4);
      }
    }
    // one octet at a time
    const r = run([...input].map((c) => Buffer.from([c])));
    expect(r.content.toString('latin1')).toBe(expected);
  });

  it('round-trips any message through stuffing and arbitrary chunking (property)', () => {
    const alphabet = fc.constantFrom('.', '\r', '\n', '\r\n', 'a', ' ', '\x00', '\xff');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 6 }), (parts, cuts) => {
        const message = parts.join('');
        const wire = b(stuff(message) + 'RSET\r\n');
        const r = run(splitAt(wire, cuts));
        expect(r.done).toBe(true);
        const want = message === '' || message.endsWith('\r\n') ? message : `${message}\r\n`;
        expect(r.content.toString('latin1')).toBe(want);
        expect(r.used).toBe(wire.length - 'RSET\r\n'.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('passes content as slices without copying when there is nothing to unstuff', () => {
    const chunk = b('line one\r\nline two\r\n');
    const seen: Buffer[] = [];
    const u = new DotUnstuffer((x) => seen.push(x));
    u.push(chunk);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.buffer).toBe(chunk.buffer);
  });
});
