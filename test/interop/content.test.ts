// Content against a real Postfix smtpd (test/interop/peers.sh, the content lab): the 8BITMIME
// downgrade (mimeOutputConversion), SMTPUTF8 from addresses and headers, flags D/O/R with the
// Delivered-To loop check, XFORWARD, and the content hooks (rewriteAddress, headerCheck). Every
// case reads back what Postfix stored (virtual(8) maildirs, LF line ends) or logged.
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { simpleParser, type ParsedMail } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { deliver } from '../../src/index.js';
import {
  LogCursor,
  Transcript,
  contentLab,
  esc,
  expectedContent,
  hostOf,
  maildirFilesWith,
  peers,
  queueIdOf,
  smtpNexthop,
  storedHeaders,
  token,
  waitForLogLine,
  waitForMaildirFile,
  waitForPostfixSession,
} from './helpers.js';

const P = peers();
const C = contentLab();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const SENDER = 'sender@client.test';
const maildir = (user: string): string => `${P.postfixMaildirs}/example.test/${user}`;
const CATCHALL = `${P.postfixMaildirs}/catchall`;
const base = { tls: { level: 'none' as const }, heloName: 'client.test' };
const portOf = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));

/** Lines of a stored copy whose headers are only the trace headers Postfix prepends. */
const TRACE = /^(Return-Path|X-Original-To|Delivered-To|Received):/;

// ---------------------------------------------------------------- 8BITMIME and the downgrade

const TEXT = [
  'Grüße aus Köln — naïve café, 日本語, ✓ 😀',
  '.a line that begins with a dot',
  'From the start of a line (mbox)',
  'an equals sign = and =3D, then a trailing space ',
  'a trailing tab\t',
  `a long 8-bit line: ${'ü'.repeat(150)} end`,
  'last line',
].join('\r\n');
const HTML = '<html><body><p>Grüße aus Köln — ✓</p><p>naïve café</p></body></html>';
const LATIN1 = Buffer.from('Latin-1 text: caf\xe9, na\xefve, \xdf, \xa9 2026\r\nsecond line \xfc\r\n', 'latin1');
const BINARY = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256));
const NESTED_TEXT = 'Weitergeleitet: Grüße — ✓\r\nzweite Zeile äöü';

/**
 * A multipart/mixed message with 8-bit parts at every level: multipart/alternative (text/plain
 * and text/html, UTF-8, 8bit), an 8bit ISO-8859-1 attachment, a base64 attachment (already 7-bit)
 * and an 8bit message/rfc822 whose own body is 8-bit UTF-8. Headers are ASCII (no SMTPUTF8).
 */
function eightBitMultipart(tok: string): Buffer {
  const outer = `outer-${tok}`;
  const inner = `inner-${tok}`;
  const parts: Array<string | Buffer> = [
    'From: Interop Sender <sender@client.test>\r\n',
    'To: alice@example.test\r\n',
    `Subject: mailwire mime ${tok}\r\n`,
    `Message-ID: <${tok}@client.test>\r\n`,
    'Date: Wed, 25 Nov 2026 12:00:00 +0000\r\n',
    'MIME-Version: 1.0\r\n',
    `Content-Type: multipart/mixed; boundary="${outer}"\r\n`,
    '\r\n',
    'This is a multi-part message in MIME format.\r\n',
    `--${outer}\r\n`,
    `Content-Type: multipart/alternative; boundary="${inner}"\r\n`,
    '\r\n',
    `--${inner}\r\n`,
    'Content-Type: text/plain; charset=utf-8\r\n',
    'Content-Transfer-Encoding: 8bit\r\n',
    '\r\n',
    TEXT,
    '\r\n',
    `--${inner}\r\n`,
    'Content-Type: text/html; charset=utf-8\r\n',
    'Content-Transfer-Encoding: 8bit\r\n',
    '\r\n',
    HTML,
    '\r\n',
    `--${inner}--\r\n`,
    '\r\n',
    `--${outer}\r\n`,
    'Content-Type: text/plain; charset=iso-8859-1; name="latin1.txt"\r\n',
    'Content-Disposition: attachment; filename="latin1.txt"\r\n',
    'Content-Transfer-Encoding: 8bit\r\n',
    '\r\n',
    LATIN1,
    `--${outer}\r\n`,
    'Content-Type: application/octet-stream; name="data.bin"\r\n',
    'Content-Disposition: attachment; filename="data.bin"\r\n',
    'Content-Transfer-Encoding: base64\r\n',
    '\r\n',
    (BINARY.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n'),
    '\r\n',
    `--${outer}\r\n`,
    'Content-Type: message/rfc822\r\n',
    'Content-Disposition: attachment; filename="forwarded.eml"\r\n',
    'Content-Transfer-Encoding: 8bit\r\n',
    '\r\n',
    'From: Someone <someone@client.test>\r\n',
    'Subject: forwarded\r\n',
    'MIME-Version: 1.0\r\n',
    'Content-Type: text/plain; charset=utf-8\r\n',
    'Content-Transfer-Encoding: 8bit\r\n',
    '\r\n',
    NESTED_TEXT,
    '\r\n',
    `--${outer}--\r\n`,
  ];
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
}

/**
 * What a MIME parser makes of a message: the text and HTML, and each attachment decoded: text
 * ones as octets with LF line ends (a maildir stores LF), binary ones as base64, a
 * message/rfc822 as its own decoded text (its encoding may change, its content may not).
 */
async function decoded(message: Buffer): Promise<{ text?: string; html?: string | false; attachments: Array<{ type: string; name?: string; content: string }> }> {
  const lf = (s: string): string => s.replace(/\r\n/g, '\n');
  const m: ParsedMail = await simpleParser(message);
  const attachments = await Promise.all(
    m.attachments.map(async (a) => ({
      type: a.contentType,
      ...(a.filename !== undefined ? { name: a.filename } : {}),
      content:
        a.contentType === 'message/rfc822'
          ? lf((await simpleParser(a.content)).text ?? '')
          : a.contentType.startsWith('text/')
            ? lf(a.content.toString('latin1'))
            : a.content.toString('base64'),
    })),
  );
  return { ...(m.text !== undefined ? { text: lf(m.text) } : {}), html: m.html, attachments };
}

/** Positions and values of the octets >= 0x80 in `b` (the first few), for a failure message. */
function eightBitOctets(b: Buffer): string {
  const at: string[] = [];
  for (let i = 0; i < b.length && at.length < 8; i++) if ((b[i] ?? 0) >= 0x80) at.push(`${i}:0x${(b[i] ?? 0).toString(16)}`);
  return at.join(' ');
}

describe('8BITMIME: an 8-bit multipart message', () => {
  it('without 8BITMIME (no8bitmime listener): arrives as valid 7-bit MIME that decodes to the original', async () => {
    const tok = token('mime7');
    const message = eightBitMultipart(tok);
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE], message }, smtpNexthop(C.no8bitmime), { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: hostOf(C.no8bitmime) });
    // SMTPUTF8 is hidden too: it implies 8BITMIME (Postfix smtp_proto.c, and mailwire).
    expect(t.received().filter((l) => /^250[- ](8BITMIME|SMTPUTF8)$/.test(l)), `the listener must announce neither 8BITMIME nor SMTPUTF8\n${why}`).toEqual([]);
    const mail = t.sent().find((l) => l.startsWith('MAIL FROM:'));
    expect(mail, `no BODY=8BITMIME to a server without 8BITMIME\n${why}`).not.toMatch(/BODY=8BITMIME/);

    const file = await waitForMaildirFile(maildir('alice'), tok);
    const session = await waitForPostfixSession(P.postfixLog, queueIdOf(r.recipients[0]?.diagnosticCode) ?? '?');
    expect(session.syslog).toBe('postfix-interop/no8bitmime/smtpd');

    // 7-bit: no octet >= 0x80 anywhere (Postfix's own headers are ASCII too), lines <= 998.
    expect(eightBitOctets(file), 'the stored copy still has 8-bit octets: the message was not downgraded').toBe('');
    expect(Math.max(...file.toString('latin1').split('\n').map((l) => l.length))).toBeLessThanOrEqual(998);
    // Each 8bit text part became quoted-printable; the message/rfc822 part is 7bit, its body QP.
    const stored = file.toString('latin1');
    expect(stored).not.toMatch(/^Content-Transfer-Encoding: 8bit$/im);
    expect(stored.match(/^Content-Transfer-Encoding: quoted-printable$/gim)?.length, stored).toBe(4);
    expect(stored).toMatch(/^Content-Transfer-Encoding: base64$/im);
    // The same content, for a MIME parser.
    const want = await decoded(message);
    expect(want.text).toBe(TEXT.replace(/\r\n/g, '\n'));
    expect(want.html).toBe(HTML);
    expect(want.attachments).toEqual([
      // The CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
      { type: 'text/plain', name: 'latin1.txt', content: LATIN1.toString('latin1').replace(/\r\n$/, '').replace(/\r\n/g, '\n') },
      { type: 'application/octet-stream', name: 'data.bin', content: BINARY.toString('base64') },
      { type: 'message/rfc822', name: 'forwarded.eml', content: NESTED_TEXT.replace(/\r\n/g, '\n') },
    ]);
    expect(await decoded(file)).toEqual(want);
  });

  it('with 8BITMIME (the main listener): BODY=8BITMIME and the octets arrive unchanged', async () => {
    const tok = token('mime8');
    const message = eightBitMultipart(tok);
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE], message }, smtpNexthop(P.postfix), { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0' });
    expect(t.sent().find((l) => l.startsWith('MAIL FROM:')), why).toMatch(/ BODY=8BITMIME\b/);
    const file = await waitForMaildirFile(maildir('alice'), tok);
    const want = expectedContent(message, '\n');
    const added = file.subarray(0, file.length - want.length).toString('latin1');
    expect(file.subarray(file.length - want.length).equals(want), 'the stored copy differs from the input (LF line ends)').toBe(true);
    expect(added.split('\n').slice(0, -1).every((l) => TRACE.test(l) || /^[ \t]/.test(l)), added).toBe(true);
    expect(await decoded(file)).toEqual(await decoded(message));
  });

  it('mimeOutputConversion: false (disable_mime_output_conversion) sends the 8-bit octets as they are, even without 8BITMIME', async () => {
    const tok = token('mimeoff');
    const message = eightBitMultipart(tok);
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE], message }, smtpNexthop(C.no8bitmime), { ...base, mimeOutputConversion: false, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0' });
    const file = await waitForMaildirFile(maildir('alice'), tok);
    const want = expectedContent(message, '\n');
    expect(file.subarray(file.length - want.length).equals(want), 'the stored copy differs from the input').toBe(true);
  });

  // Postfix's smtp(8) adds BODY= only when the server announced 8BITMIME (smtp_proto.c); RFC 6152
  // defines the parameter for servers that did. Postfix smtpd accepts it anyway, so only the
  // client's transcript can tell.
  it('no BODY= parameter on MAIL FROM to a server without 8BITMIME (7-bit message; 8-bit with mimeOutputConversion: false)', async () => {
    for (const [label, message, extra] of [
      ['7-bit', Buffer.from(`From: <${SENDER}>\r\nSubject: ${token('body7')}\r\n\r\nhello\r\n`), {}],
      ['8-bit, conversion off', eightBitMultipart(token('body8')), { mimeOutputConversion: false }],
    ] as const) {
      const t = new Transcript();
      const r = await deliver({ from: SENDER, to: [ALICE], message }, smtpNexthop(C.no8bitmime), { ...base, ...extra, onEvent: t.onEvent });
      const why = t.explain(r);
      expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0' });
      expect(t.sent().find((l) => l.startsWith('MAIL FROM:')), `${label}: BODY= without 8BITMIME announced\n${why}`).not.toMatch(/ BODY=/);
    }
  });
});

// ---------------------------------------------------------------- SMTPUTF8

const UTF8_RCPT = 'jörg@example.test'; // NFC; example.test's catch-all stores it
const asciiMessage = (tok: string): string =>
  `From: <${SENDER}>\r\nTo: <${UTF8_RCPT}>\r\nSubject: ${tok}\r\nMessage-ID: <${tok}@client.test>\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n\r\nhello\r\n`;
const utf8HeaderMessage = (tok: string): string =>
  `From: <${SENDER}>\r\nTo: <${ALICE}>\r\nSubject: Grüße ✓ ${tok}\r\nMessage-ID: <${tok}@client.test>\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n\r\nhello\r\n`;
const NO_SMTPUTF8 = `SMTPUTF8 is required, but was not offered by host ${hostOf(C.noSmtputf8)}[${hostOf(C.noSmtputf8)}]`;

/** The nosmtputf8 listener's next disconnect line: the session must not have reached MAIL. */
async function expectNoMailAtNoSmtputf8(cursor: LogCursor, why: string): Promise<void> {
  const d = await waitForLogLine(cursor, /postfix-interop\/nosmtputf8\/smtpd\[\d+\]: disconnect from /);
  expect(d, why).toMatch(/ ehlo=1 /);
  expect(d, `Postfix saw MAIL although SMTPUTF8 was needed and not offered\n${why}`).not.toMatch(/ mail=/);
}

describe('SMTPUTF8', () => {
  it('a UTF-8 recipient reaches Postfix with smtputf8_enable = yes (MAIL … SMTPUTF8, Received "with UTF8SMTP")', async () => {
    const tok = token('utf8rcpt');
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [UTF8_RCPT], message: asciiMessage(tok) }, smtpNexthop(P.postfix), { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ recipient: UTF8_RCPT, action: 'relayed', status: '2.0.0' });
    expect(t.sent().find((l) => l.startsWith('MAIL FROM:')), why).toMatch(/ SMTPUTF8\b/);
    expect(t.sent().find((l) => l.startsWith('RCPT TO:')), why).toMatch(new RegExp(`^RCPT TO:<${esc(UTF8_RCPT)}>( |$)`));
    const { headers } = storedHeaders(await waitForMaildirFile(CATCHALL, tok));
    expect(headers).toContain(`Delivered-To: ${UTF8_RCPT}`);
    expect(headers.find((h) => h.startsWith('Received:'))).toMatch(new RegExp(`with UTF8SMTP id ${queueIdOf(r.recipients[0]?.diagnosticCode)}\\n\\tfor <${esc(UTF8_RCPT)}>;`));
  });

  it('a UTF-8 recipient at the only server without SMTPUTF8: failed 5.6.7, nothing sent to Postfix after EHLO', async () => {
    const tok = token('utf8fail');
    const t = new Transcript();
    const cursor = new LogCursor(P.postfixLog);
    const r = await deliver({ from: SENDER, to: [UTF8_RCPT], message: asciiMessage(tok) }, smtpNexthop(C.noSmtputf8), { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'failed', status: '5.6.7', reason: NO_SMTPUTF8 });
    expect(t.received(), why).not.toContain('250-SMTPUTF8');
    expect(t.sent().filter((l) => /^(MAIL|RCPT|DATA|BDAT)/.test(l)), why).toEqual([]);
    await expectNoMailAtNoSmtputf8(cursor, why);
    expect(maildirFilesWith(CATCHALL, tok)).toEqual([]);
  });

  it('another server remains after the one without SMTPUTF8: not failed there; the next one (with SMTPUTF8) relays it', async () => {
    const tok = token('utf8next');
    const t = new Transcript();
    const first = smtpNexthop(C.noSmtputf8);
    const second = smtpNexthop(P.postfix);
    const r = await deliver({ from: SENDER, to: [UTF8_RCPT], message: asciiMessage(tok) }, `${first}, ${second}`, { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: hostOf(P.postfix) });
    expect(r.attempts.map((a) => [a.nexthop, a.port, a.status, a.reason]), why).toEqual([
      [first, portOf(C.noSmtputf8), '5.6.7', NO_SMTPUTF8],
      [second, portOf(P.postfix), undefined, undefined],
    ]);
    await waitForMaildirFile(CATCHALL, tok);
  });

  it('another server remains but cannot be reached: delayed (the 5.6.7 was soft), with the last error', async () => {
    const tok = token('utf8delay');
    const t = new Transcript();
    const closed = await closedPort();
    const first = smtpNexthop(C.noSmtputf8);
    const second = `[127.0.0.1]:${closed}`;
    const r = await deliver({ from: SENDER, to: [UTF8_RCPT], message: asciiMessage(tok) }, `${first}, ${second}`, { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'delayed', status: '4.4.1', reason: `connect to 127.0.0.1[127.0.0.1]:${closed}: Connection refused` });
    expect(r.attempts.map((a) => [a.nexthop, a.status]), why).toEqual([
      [first, '5.6.7'],
      [second, '4.4.1'],
    ]);
  });

  it('the reverse order: the server without SMTPUTF8 is the last one: failed 5.6.7', async () => {
    const tok = token('utf8last');
    const t = new Transcript();
    const closed = await closedPort();
    const r = await deliver({ from: SENDER, to: [UTF8_RCPT], message: asciiMessage(tok) }, `[127.0.0.1]:${closed}, ${smtpNexthop(C.noSmtputf8)}`, { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'failed', status: '5.6.7', reason: NO_SMTPUTF8 });
  });

  it('a UTF-8 Subject with an ASCII envelope: MAIL … SMTPUTF8 where offered (Received "with UTF8SMTP"), 5.6.7 where not', async () => {
    const tok = token('utf8hdr');
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE], message: utf8HeaderMessage(tok) }, smtpNexthop(P.postfix), { ...base, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0' });
    expect(t.sent().find((l) => l.startsWith('MAIL FROM:')), why).toMatch(/^MAIL FROM:<sender@client\.test>.* SMTPUTF8\b/);
    const { headers } = storedHeaders(await waitForMaildirFile(maildir('alice'), tok));
    expect(headers.find((h) => h.startsWith('Received:'))).toMatch(new RegExp(`with UTF8SMTP id ${queueIdOf(r.recipients[0]?.diagnosticCode)}\\n`));
    expect(headers).toContain(`Subject: Grüße ✓ ${tok}`);

    const tok2 = token('utf8hdrno');
    const t2 = new Transcript();
    const cursor = new LogCursor(P.postfixLog);
    const r2 = await deliver({ from: SENDER, to: [ALICE], message: utf8HeaderMessage(tok2) }, smtpNexthop(C.noSmtputf8), { ...base, onEvent: t2.onEvent });
    const why2 = t2.explain(r2);
    expect(r2.recipients[0], why2).toMatchObject({ action: 'failed', status: '5.6.7', reason: NO_SMTPUTF8 });
    expect(t2.sent().filter((l) => /^(MAIL|RCPT|DATA|BDAT)/.test(l)), why2).toEqual([]);
    await expectNoMailAtNoSmtputf8(cursor, why2);
  });
});

// ---------------------------------------------------------------- flags D, O, R

const dorMessage = (tok: string, extra = ''): string =>
  `${extra}From: Interop Sender <${SENDER}>\r\nTo: <${ALICE}>, <${BOB}>\r\nSubject: ${tok}\r\nMessage-ID: <${tok}@client.test>\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n\r\nhello\r\n`;

describe('flags D, O, R', () => {
  // The xforward listener's cleanup keeps Return-Path: headers (Postfix's default drops them), so
  // the stored copy shows all three. Its Received header and virtual(8)'s own Return-Path,
  // X-Original-To, Delivered-To come first; the client's three follow, before the message.
  it('Return-Path, X-Original-To, Delivered-To at the top of what the client sent, one transaction per recipient', async () => {
    const tok = token('dor');
    const t = new Transcript();
    const to = [
      { address: ALICE, original: 'alice.original@client.test' },
      { address: BOB, original: 'bob.original@client.test' },
    ];
    const r = await deliver({ from: SENDER, to, message: dorMessage(tok) }, smtpNexthop(C.xforward), {
      ...base,
      flags: { deliveredTo: true, originalTo: true, returnPath: true },
      onEvent: t.onEvent,
    });
    const why = t.explain(r);
    expect(r.recipients.map((x) => [x.recipient, x.action, x.status]), why).toEqual([
      [ALICE, 'relayed', '2.0.0'],
      [BOB, 'relayed', '2.0.0'],
    ]);
    const ids = r.recipients.map((x) => queueIdOf(x.diagnosticCode));
    expect(new Set(ids).size, `one transaction (queue id) per recipient\n${why}`).toBe(2);

    for (const [i, user] of (['alice', 'bob'] as const).entries()) {
      const rcpt = to[i]!;
      const { headers } = storedHeaders(await waitForMaildirFile(maildir(user), tok));
      expect(headers.length, headers.join('\n')).toBe(12);
      expect(headers.slice(0, 3), 'virtual(8) prepends its own three').toEqual([`Return-Path: <${SENDER}>`, `X-Original-To: ${rcpt.address}`, `Delivered-To: ${rcpt.address}`]);
      expect(headers[3]).toMatch(new RegExp(`^Received: from client\\.test \\(unknown \\[127\\.0\\.0\\.1\\]\\)\\n\\tby pf\\.interop\\.test \\(Postfix\\) with ESMTP id ${ids[i]}\\n\\tfor <${esc(rcpt.address)}>; `));
      expect(headers.slice(4), "below Postfix's Received: the client's R, O, D lines, then the message's own headers").toEqual([
        `Return-Path: <${SENDER}>`,
        `X-Original-To: ${rcpt.original}`,
        `Delivered-To: ${rcpt.address}`,
        `From: Interop Sender <${SENDER}>`,
        `To: <${ALICE}>, <${BOB}>`,
        `Subject: ${tok}`,
        `Message-ID: <${tok}@client.test>`,
        'Date: Wed, 25 Nov 2026 12:00:00 +0000',
      ]);
    }
  });

  it('a message that already has Delivered-To: alice@… fails 5.4.6 for alice before any connection; bob is delivered', async () => {
    const tok = token('loop');
    const message = dorMessage(tok, `Delivered-To: ${ALICE}\r\n`);
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE, BOB], message }, smtpNexthop(P.postfix), { ...base, flags: { deliveredTo: true }, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ recipient: ALICE, action: 'failed', status: '5.4.6', reason: `mail forwarding loop for ${ALICE}` });
    expect(r.recipients[0]?.remoteMta, why).toBeUndefined();
    expect(r.recipients[1], why).toMatchObject({ recipient: BOB, action: 'relayed', status: '2.0.0' });
    expect(t.sent().filter((l) => l.startsWith('RCPT TO:')).map((l) => /^RCPT TO:<([^>]*)>/.exec(l)?.[1]), why).toEqual([BOB]);
    const { headers } = storedHeaders(await waitForMaildirFile(maildir('bob'), tok));
    expect(headers.filter((h) => h.startsWith('Delivered-To:')), "virtual(8)'s, the client's, the message's").toEqual([
      `Delivered-To: ${BOB}`,
      `Delivered-To: ${BOB}`,
      `Delivered-To: ${ALICE}`,
    ]);
    expect(maildirFilesWith(maildir('alice'), tok)).toEqual([]);

    // alice alone: no connection at all.
    const t2 = new Transcript();
    const r2 = await deliver({ from: SENDER, to: [ALICE], message }, smtpNexthop(P.postfix), { ...base, flags: { deliveredTo: true }, onEvent: t2.onEvent });
    expect(r2.recipients[0], t2.explain(r2)).toMatchObject({ action: 'failed', status: '5.4.6' });
    expect(t2.sent(), t2.explain(r2)).toEqual([]);
    expect(r2.attempts, t2.explain(r2)).toEqual([]);
  });
});

// ---------------------------------------------------------------- XFORWARD

describe('XFORWARD', () => {
  const xforward = { name: 'mail.sender.test', addr: '192.0.2.7', proto: 'ESMTP', helo: 'helo.sender.test' };

  it("to a listener that authorizes it: both commands before MAIL, and Postfix logs the forwarded client", async () => {
    const tok = token('xforward');
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE], message: dorMessage(tok) }, smtpNexthop(C.xforward), { ...base, xforward, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0' });
    expect(t.received().some((l) => /^250-XFORWARD NAME ADDR PROTO HELO/.test(l)), why).toBe(true);
    const sent = t.sent();
    const mailAt = sent.findIndex((l) => l.startsWith('MAIL FROM:'));
    expect(sent.slice(0, mailAt).filter((l) => l.startsWith('XFORWARD ')), why).toEqual([
      'XFORWARD NAME=mail.sender.test ADDR=192.0.2.7',
      'XFORWARD PROTO=ESMTP HELO=helo.sender.test',
    ]);
    const qid = queueIdOf(r.recipients[0]?.diagnosticCode) ?? '?';
    const s = await waitForPostfixSession(P.postfixLog, qid);
    expect(s.syslog).toBe('postfix-interop/xforward/smtpd');
    expect(s.client).toMatch(new RegExp(`: ${qid}: client=unknown\\[127\\.0\\.0\\.1\\], orig_client=mail\\.sender\\.test\\[192\\.0\\.2\\.7\\]$`));
    expect(s.disconnect).toMatch(/ xforward=2 /);
    // Postfix's smtpd names the forwarded client only in its log; its own Received header is
    // about the hop it saw (smtpd.c writes the XFORWARD attributes there only as a proxy).
    const { headers } = storedHeaders(await waitForMaildirFile(maildir('alice'), tok));
    expect(headers.find((h) => h.startsWith('Received:'))).toMatch(/^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\n/);
  });

  it('to a server that does not announce XFORWARD: none is sent', async () => {
    const tok = token('noxforward');
    const t = new Transcript();
    const r = await deliver({ from: SENDER, to: [ALICE], message: dorMessage(tok) }, smtpNexthop(P.postfix), { ...base, xforward, onEvent: t.onEvent });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ action: 'relayed', status: '2.0.0' });
    expect(t.sent().filter((l) => l.startsWith('XFORWARD')), why).toEqual([]);
    const s = await waitForPostfixSession(P.postfixLog, queueIdOf(r.recipients[0]?.diagnosticCode) ?? '?');
    expect(s.client).not.toMatch(/orig_client=/);
  });
});

// ---------------------------------------------------------------- content hooks

describe('content hooks', () => {
  it('rewriteAddress turns the envelope sender user@host.local into user@example.test; headerCheck REPLACEs Subject, IGNOREs X-Secret, PREPENDs before Message-ID; bodyCheck REPLACEs a body line', async () => {
    const tok = token('hooks');
    const message = [
      'From: User <user@host.local>',
      `To: <${ALICE}>`,
      `Subject: secret subject ${tok}`,
      `X-Secret: s3cr3t-${tok}`,
      `Message-ID: <${tok}@client.test>`,
      'Date: Wed, 25 Nov 2026 12:00:00 +0000',
      '',
      'body line',
      'X-Secret: a body line, not a header: kept',
      '',
    ].join('\r\n');
    const seen: Array<{ name: string; part: string }> = [];
    const t = new Transcript();
    const r = await deliver({ from: 'user@host.local', to: [ALICE], message }, smtpNexthop(P.postfix), {
      ...base,
      onEvent: t.onEvent,
      rewriteAddress: (address) => (/@host\.local$/i.test(address) ? address.replace(/@host\.local$/i, '@example.test') : undefined),
      headerCheck: (h, { part }) => {
        seen.push({ name: h.name, part });
        if (/^subject$/i.test(h.name)) return { action: 'replace', text: `Subject: replaced by headerCheck ${tok}` };
        if (/^x-secret$/i.test(h.name)) return { action: 'ignore' };
        if (/^message-id$/i.test(h.name)) return { action: 'prepend', text: `X-Checked: prepended ${tok}` };
        return undefined;
      },
      bodyCheck: (line) => (line.text === 'body line' ? { action: 'replace', text: 'body line, replaced by bodyCheck' } : undefined),
    });
    const why = t.explain(r);
    expect(r.recipients[0], why).toMatchObject({ recipient: ALICE, action: 'relayed', status: '2.0.0' });
    expect(t.sent().find((l) => l.startsWith('MAIL FROM:')), why).toMatch(/^MAIL FROM:<user@example\.test>( |$)/);
    expect(seen.filter((s) => s.part === 'primary').map((s) => s.name), 'headerCheck sees each primary header once').toEqual(['From', 'To', 'Subject', 'X-Secret', 'Message-ID', 'Date']);

    const { headers, body } = storedHeaders(await waitForMaildirFile(maildir('alice'), tok));
    expect(headers[0], "virtual(8)'s Return-Path is the envelope sender Postfix received").toBe('Return-Path: <user@example.test>');
    expect(headers.filter((h) => /^Subject:/i.test(h))).toEqual([`Subject: replaced by headerCheck ${tok}`]);
    expect(headers.filter((h) => /^X-Secret:/i.test(h))).toEqual([]);
    expect(headers.join('\n')).not.toContain('s3cr3t');
    const at = headers.findIndex((h) => /^Message-ID:/i.test(h));
    expect(headers[at - 1], 'PREPEND puts its line just before the header').toBe(`X-Checked: prepended ${tok}`);
    expect(body.toString('utf8')).toBe('body line, replaced by bodyCheck\nX-Secret: a body line, not a header: kept\n');
  });
});

describe('content hooks: a hook that throws', () => {
  it('while a stream is written: delayed 4.3.0, Postfix saw the connection drop before the end of data and stored nothing', async () => {
    const tok = token('hookfail');
    const head = `From: <${SENDER}>\r\nTo: <${ALICE}>\r\nSubject: ${tok}\r\n\r\n`;
    const lines = Array.from({ length: 4000 }, (_, i) => `filler line ${i} ${tok}\r\n`);
    // A factory of many chunks: the hook fails long after the first chunks went out.
    const message = () => Readable.from([head, ...lines.slice(0, 3000), 'boom\r\n', ...lines.slice(3000)].map((x) => Buffer.from(x)));
    const cursor = new LogCursor(P.postfixLog);
    const r = await deliver({ from: SENDER, to: [ALICE, BOB], message }, smtpNexthop(P.postfix), {
      ...base,
      bodyCheck: (l) => {
        if (l.text === 'boom') throw new Error('checker crashed');
        return undefined;
      },
    });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.3.0'],
      ['delayed', '4.3.0'],
    ]);
    expect(r.recipients[0]!.reason).toMatch(/bodyCheck failed: checker crashed/);
    const lost = await waitForLogLine(cursor, /postfix-interop\/chunking\/smtpd\[\d+\]: lost connection after (BDAT|DATA)/);
    expect(lost).toBeTruthy();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(maildirFilesWith(maildir('alice'), tok)).toEqual([]);
    expect(maildirFilesWith(maildir('bob'), tok)).toEqual([]);
  });

  it('in memory: nothing at all reaches Postfix (the hooks run before MAIL)', async () => {
    const tok = token('hookfail-mem');
    const cursor = new LogCursor(P.postfixLog);
    const r = await deliver({ from: SENDER, to: [ALICE], message: `Subject: ${tok}\r\nX-Bad: 1\r\n\r\nbody\r\n` }, smtpNexthop(P.postfix), {
      ...base,
      headerCheck: (h) => {
        if (h.name === 'X-Bad') throw new Error('no');
        return undefined;
      },
    });
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.3.0' });
    const d = await waitForLogLine(cursor, /postfix-interop\/chunking\/smtpd\[\d+\]: disconnect from .* commands=\d+/);
    expect(d).not.toMatch(/\bmail=/);
    expect(maildirFilesWith(maildir('alice'), tok)).toEqual([]);
  });
});

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
