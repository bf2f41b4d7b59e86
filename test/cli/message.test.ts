/** mailwire CLI: what counts as a message (exit 65 otherwise), the built test message, --header. */
import { describe, expect, it } from 'vitest';
import { simpleParser } from 'mailparser';
import { buildMessage, checkMessage, encodeHeaderValue, replaceHeaders, rfc5322Date } from '../../src/cli/message.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('checkMessage', () => {
  it.each([
    ['header and body, CRLF', 'Subject: x\r\nFrom: <a@b>\r\n\r\nbody\r\n'],
    ['LF line ends', 'Subject: x\n\nbody\n'],
    ['folded field', 'Subject: a\r\n  long\r\n\tfolded\r\n\r\nbody'],
    ['header only, no body, no final line end', 'Subject: x'],
    ['obsolete white space before the colon', 'Subject : x\r\n\r\n'],
    ['8-bit octets in the body', 'Subject: x\r\n\r\n\xe9\xff\r\n'],
  ])('a message: %s', (_, text) => {
    expect(checkMessage(b(text))).toEqual({ ok: true });
  });

  it.each([
    ['empty', '', /empty/],
    ['white space only', ' \r\n\r\n', /only white space/],
    ['starts with an empty line', '\r\nbody\r\n', /no header fields/],
    ['plain text', 'hello world\r\n', /line 1 is not a header field/],
    ['JSON', '{\n  "a": 1\n}\n', /line 1 is not a header field/],
    ['binary', '\x89PNG\r\n\x1a\n\0\0', /line 1 is not a header field/],
    ['an mbox From line', 'From a@b Thu Jan  1 00:00:00 2026\nSubject: x\n\nbody\n', /mbox "From " separator/],
    ['body without the empty line', 'Subject: x\r\nhello there\r\n', /line 2 is neither a header field nor a folded line/],
  ])('not a message: %s', (_, text, reason) => {
    const r = checkMessage(b(text));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });
});

describe('replaceHeaders', () => {
  it('replaces a field of the same name in place (with its folded lines), appends new ones, keeps line ends and 8-bit octets', () => {
    const msg = b('From: <a@b>\nSubject: old\n  folded\nX-A: 1\nX-A: 2\n\nbody \xe9\n');
    const out = replaceHeaders(msg, [{ name: 'subject', value: 'new' }, { name: 'X-A', value: '3' }, { name: 'X-New', value: 'n' }]);
    expect(out.toString('latin1')).toBe('From: <a@b>\nsubject: new\nX-A: 3\nX-New: n\n\nbody \xe9\n');
  });

  it('keeps CRLF, and gives a header-only message without a final line end one before adding', () => {
    expect(replaceHeaders(b('Subject: a\r\n\r\nx'), [{ name: 'X-B', value: 'y' }]).toString('latin1')).toBe('Subject: a\r\nX-B: y\r\n\r\nx');
    expect(replaceHeaders(b('Subject: a'), [{ name: 'X-B', value: 'y' }]).toString('latin1')).toBe('Subject: a\r\nX-B: y\r\n');
  });

  it('non-ASCII: Subject is RFC 2047-encoded, other fields stay UTF-8 (RFC 6532)', () => {
    const out = replaceHeaders(b('Subject: a\n\nx\n'), [{ name: 'Subject', value: 'Grüße' }, { name: 'X-Name', value: 'Jörg' }]);
    expect(out.toString('latin1')).toBe(`Subject: =?UTF-8?B?${Buffer.from('Grüße').toString('base64')}?=\nX-Name: ${Buffer.from('Jörg', 'utf8').toString('latin1')}\n\nx\n`);
  });

  it('no headers: the message unchanged', () => {
    const msg = b('Subject: a\n\nx');
    expect(replaceHeaders(msg, []).equals(msg)).toBe(true);
  });
});

describe('buildMessage', () => {
  const date = new Date(Date.UTC(2026, 10, 25, 9, 5, 7));

  it('Date, Message-ID, From, To, Subject, MIME headers; CRLF; a valid message', async () => {
    const m = buildMessage({ from: 'me@a.test', to: ['x@b.test', 'y@b.test'], date, messageId: 'id1@a.test' });
    const text = m.toString('latin1');
    expect(text).toBe(
      'Date: Wed, 25 Nov 2026 09:05:07 +0000\r\n' +
        'Message-ID: <id1@a.test>\r\n' +
        'From: <me@a.test>\r\n' +
        'To: <x@b.test>, <y@b.test>\r\n' +
        'Subject: test Wed, 25 Nov 2026 09:05:07 +0000\r\n' +
        'MIME-Version: 1.0\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        'Content-Transfer-Encoding: 7bit\r\n' +
        '\r\n' +
        'This is a test mailing from mailwire.\r\n',
    );
    expect(checkMessage(m)).toEqual({ ok: true });
    const parsed = await simpleParser(m);
    expect(parsed.messageId).toBe('<id1@a.test>');
    expect(parsed.date?.toISOString()).toBe(date.toISOString());
  });

  it('--subject, --body (UTF-8, LF made CRLF) and --header overrides in place', async () => {
    const m = buildMessage({
      from: 'me@a.test',
      to: ['x@b.test'],
      subject: 'Grüße aus Köln, ein ziemlich langer Betreff mit Umlauten: äöü ÄÖÜ ß',
      body: 'zeile 1\nzeile 2 ✓',
      headers: [{ name: 'From', value: 'Me <me@a.test>' }, { name: 'X-Tag', value: 'cli' }],
      date,
      messageId: 'id2@a.test',
    });
    const text = m.toString('latin1');
    expect(text).toMatch(/^Date: .*\r\nMessage-ID: <id2@a\.test>\r\nFrom: Me <me@a\.test>\r\nTo: <x@b\.test>\r\n/);
    expect(text).toContain('Content-Transfer-Encoding: 8bit\r\nX-Tag: cli\r\n\r\n');
    expect(text.endsWith('zeile 1\r\nzeile 2 \xe2\x9c\x93\r\n')).toBe(true);
    for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    const parsed = await simpleParser(m);
    expect(parsed.subject).toBe('Grüße aus Köln, ein ziemlich langer Betreff mit Umlauten: äöü ÄÖÜ ß');
    expect(parsed.text?.trim()).toBe('zeile 1\nzeile 2 ✓');
  });

  it('helpers', () => {
    expect(rfc5322Date(new Date(Date.UTC(2027, 0, 3, 23, 59, 0)))).toBe('Sun, 03 Jan 2027 23:59:00 +0000');
    expect(encodeHeaderValue('plain ascii')).toBe('plain ascii');
    expect(encodeHeaderValue('é')).toBe('=?UTF-8?B?w6k=?=');
  });
});
