import { describe, expect, it } from 'vitest';
import { LineReader, type LineEvent } from '../../src/testing/line-reader.js';

function all(reader: LineReader, chunks: string[]): Array<string> {
  const out: string[] = [];
  for (const s of chunks) {
    const c = Buffer.from(s, 'latin1');
    let pos = 0;
    while (pos < c.length) {
      const ev: LineEvent = reader.next(c, pos);
      if (ev.kind === 'partial') break;
      if (ev.kind === 'line') out.push(ev.line.toString('latin1'));
      if (ev.kind === 'too-long') out.push('<too long>');
      pos = ev.end;
    }
  }
  return out;
}

describe('LineReader', () => {
  it('splits CRLF and bare LF lines, across chunks', () => {
    const r = new LineReader(100, 200);
    expect(all(r, ['NOOP\r\nRS', 'ET\r', '\nQUIT\n'])).toEqual(['NOOP', 'RSET', 'QUIT']);
    expect(r.pending).toBe(0);
  });

  it('reports an overlong line once and skips the rest of it, keeping memory bounded', () => {
    const r = new LineReader(16, 32);
    const long = 'X'.repeat(10);
    expect(all(r, [long, long, long, long + '\r\nNOOP\r\n'])).toEqual(['<too long>', 'NOOP']);
    expect(r.pending).toBe(0);
    expect(all(r, ['Y'.repeat(40) + '\r\nQUIT\r\n'])).toEqual(['<too long>', 'QUIT']);
  });

  it('counts the line ending in the limit', () => {
    const r = new LineReader(10, 10);
    expect(all(r, ['12345678\r\n', '123456789\r\n'])).toEqual(['12345678', '<too long>']);
  });

  it('allows AUTH lines and SASL responses up to the longer limit', () => {
    const r = new LineReader(16, 64);
    const auth = 'auth PLAIN ' + 'A'.repeat(40);
    expect(all(r, [auth.slice(0, 20), auth.slice(20) + '\r\n'])).toEqual([auth]);
    expect(all(r, ['MAIL ' + 'A'.repeat(40) + '\r\n'])).toEqual(['<too long>']);
    r.sasl = true;
    expect(all(r, ['B'.repeat(50) + '\r\n'])).toEqual(['B'.repeat(50)]);
    expect(all(r, ['B'.repeat(70) + '\r\n'])).toEqual(['<too long>']);
  });
});
