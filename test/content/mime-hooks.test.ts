/** MimeState's content hooks on their own (REW-2 .. REW-6): parts, actions, raw bytes. */
import { describe, expect, it } from 'vitest';
import { MimeState, ContentHookError, type CheckReport } from '../../src/content/mime-state.js';
import type { HeaderPart } from '../../src/content/hooks.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
function run(message: string, o: ConstructorParameters<typeof MimeState>[0]): string {
  const m = new MimeState(o);
  return dec.decode(m.write(enc.encode(message))) + dec.decode(m.end());
}

const nested = [
  'From: a@x.test',
  'Content-Type: multipart/mixed; boundary="B"',
  '',
  '--B',
  'Content-Type: text/plain',
  '',
  'part one',
  '--B',
  'Content-Type: message/rfc822',
  '',
  'Subject: inner',
  '',
  'inner body',
  '--B--',
  '',
].join('\r\n');

describe('MimeState content hooks', () => {
  it('tells primary, MIME part and nested message headers and bodies apart', () => {
    const headers: string[] = [];
    const bodies: string[] = [];
    run(nested, {
      headerCheck: (h, ctx) => {
        headers.push(`${ctx.part}:${h.name}`);
        return undefined;
      },
      bodyCheck: (l, ctx) => {
        if (l.text !== '' && !l.text.startsWith('--')) bodies.push(`${ctx.part}:${l.text}`);
        return undefined;
      },
    });
    expect(headers).toEqual(['primary:From', 'primary:Content-Type', 'mime:Content-Type', 'mime:Content-Type', 'nested:Subject']);
    expect(bodies).toEqual(['mime:part one', 'nested:inner body']);
  });

  it('with no action the message passes byte for byte; raw bytes come beside the decoded value', () => {
    const raws: Uint8Array[] = [];
    const msg = 'Subject: caf\u00e9\r\n folded\r\n\r\nbody\r\n';
    const out = run(msg, { headerCheck: (h) => (raws.push(h.raw), undefined) });
    expect(out).toBe(msg);
    expect(dec.decode(raws[0])).toBe('Subject: café\r\n folded');
  });

  it('every action, and reports for what it did', () => {
    const reports: CheckReport[] = [];
    const out = run('A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\nkeep\r\ndrop\r\n', {
      onCheck: (r) => reports.push(r),
      headerCheck: (h) =>
        ({ A: { action: 'prepend', text: 'P: 0' }, B: { action: 'replace', text: 'B: two' }, C: { action: 'strip', text: 'why' }, D: { action: 'info' }, E: { action: 'warn', text: 'odd' } } as const)[h.name as 'A'],
      bodyCheck: (l) => (l.text === 'drop' ? { action: 'ignore' } : undefined),
    });
    expect(out).toBe('P: 0\r\nA: 1\r\nB: two\r\nD: 4\r\nE: 5\r\n\r\nkeep\r\n');
    expect(reports.map((r) => `${r.hook}:${r.action}:${r.part as HeaderPart}`)).toEqual([
      'headerCheck:prepend:primary',
      'headerCheck:replace:primary',
      'headerCheck:strip:primary',
      'headerCheck:info:primary',
      'headerCheck:warn:primary',
      'bodyCheck:ignore:primary',
    ]);
  });

  it('a throwing hook stops the pass with ContentHookError, and again on the next call', () => {
    const m = new MimeState({ bodyCheck: () => { throw new Error('nope'); } });
    expect(() => m.write(enc.encode('S: x\r\n\r\nline\r\n'))).toThrow(ContentHookError);
    expect(() => m.end()).toThrow(/bodyCheck failed: nope/);
  });

  it('address rewriting touches primary sender/recipient headers only', () => {
    const out = run('From: <u@old.test>\r\nSubject: u@old.test\r\nContent-Type: message/rfc822\r\n\r\nFrom: u@old.test\r\n\r\nx\r\n', {
      rewriteAddress: (a) => a.replace('@old.test', '@new.test'),
    });
    expect(out).toBe('From: <u@new.test>\r\nSubject: u@old.test\r\nContent-Type: message/rfc822\r\n\r\nFrom: u@old.test\r\n\r\nx\r\n');
  });
});
