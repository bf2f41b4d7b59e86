import { describe as group, expect, it } from 'vitest';
import fc from 'fast-check';
import { simpleParser, type ParsedMail } from 'mailparser';
import { buildDsn, type DsnOptions } from '../../src/results/dsn-report.js';
import { toDsnFields } from '../../src/results/dsn-fields.js';
import type { DeliveryAction, DeliveryResult, RecipientResult } from '../../src/results/delivery-result.js';
import type { Recipient } from '../../src/envelope.js';

// --- a tiny RFC 822-style field parser for the delivery-status body (RFC 3464 §2.1) ---

type Field = [name: string, value: string];

/** Groups separated by blank lines; each group's lines unfolded (RFC 5322 §2.2.3) into fields. */
function fieldGroups(body: string): Field[][] {
  return body
    .split(/\r\n(?:\r\n)+/)
    .filter((g) => g.trim() !== '')
    .map((g) =>
      g
        .replace(/\r\n(?=[ \t])/g, '')
        .split('\r\n')
        .filter((l) => l !== '')
        .map((l): Field => {
          const colon = l.indexOf(':');
          expect(colon).toBeGreaterThan(0);
          return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()];
        }),
    );
}

function get(fields: Field[], name: string): string | undefined {
  const found = fields.filter(([n]) => n === name.toLowerCase());
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.[1];
}

async function parse(message: Uint8Array): Promise<{ mail: ParsedMail; status: { type: string; perMessage: Field[]; recipients: Field[][] }; third?: { type: string; body: string } }> {
  const text = Buffer.from(message).toString('latin1');
  // The whole report: CR LF everywhere, no line over 998 octets (RFC 5322 §2.1.1).
  expect(text).not.toMatch(/[^\r]\n|\r[^\n]/);
  for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
  const mail = await simpleParser(Buffer.from(message), { keepDeliveryStatus: true });
  const parts = mail.attachments;
  const dsn = parts.find((a) => /^message\/(global-)?delivery-status$/.test(a.contentType));
  expect(dsn).toBeDefined();
  const [perMessage, ...recipients] = fieldGroups(dsn!.content.toString('utf8'));
  const third = parts.find((a) => a !== dsn);
  return {
    mail,
    status: { type: dsn!.contentType, perMessage: perMessage!, recipients },
    ...(third ? { third: { type: third.contentType, body: third.content.toString('utf8') } } : {}),
  };
}

// --- fixtures ---

const r = (recipient: string, action: DeliveryAction, over: Partial<RecipientResult> = {}): RecipientResult => {
  const status = action === 'failed' ? '5.1.1' : action === 'delayed' ? '4.4.1' : '2.0.0';
  return {
    recipient,
    action,
    status,
    reason: `host mx.example.org[192.0.2.1] said: ${action === 'delayed' ? 451 : action === 'failed' ? 550 : 250} ${status} text (in reply to RCPT TO command)`,
    diagnosticCode: `smtp; ${action === 'delayed' ? 451 : action === 'failed' ? 550 : 250} ${status} text`,
    remoteMta: 'dns; mx.example.org',
    ...over,
  };
};

const attempt = {
  nexthop: 'example.org',
  host: 'mx.example.org',
  address: '192.0.2.1',
  stage: 'quit',
  outcome: 'completed' as const,
  startedAt: new Date(Date.UTC(2024, 4, 1, 12, 0, 0)),
  endedAt: new Date(Date.UTC(2024, 4, 1, 12, 0, 3)),
};

const base: DsnOptions = {
  reportingMta: 'mta.example.net',
  to: 'sender@example.com',
  date: new Date(Date.UTC(2024, 4, 1, 12, 0, 5)),
  messageId: '<dsn.1@mta.example.net>',
  boundary: 'mailwire-test-boundary',
};

const original = 'From: sender@example.com\nTo: a@example.org\nSubject: hello\nMessage-ID: <orig.1@example.com>\n\nline one\nline two\n';

group('buildDsn: RFC 6522 multipart/report with RFC 3464 message/delivery-status (DSN-13)', () => {
  it('one group per failed or delayed recipient, with the per-message fields and Postfix-style headers', async () => {
    const result: DeliveryResult = {
      recipients: [
        r('a@example.org', 'failed'),
        r('b@example.org', 'relayed'),
        r('c@example.org', 'delayed', { diagnosticCode: undefined, remoteMta: undefined, reason: 'connect to mx.example.org[192.0.2.1]:25: Connection refused' }),
      ],
      attempts: [attempt],
    };
    const built = buildDsn(result, {
      ...base,
      original,
      arrivalDate: new Date(Date.UTC(2024, 4, 1, 11, 0, 0)),
      envelope: { envid: 'QUEUE-42', to: [{ address: 'a@example.org', orcpt: 'rfc822;A@Example.org' }, 'b@example.org', 'c@example.org'] },
    })!;
    expect(built.recipients).toEqual([0, 2]);
    const { mail, status, third } = await parse(built.message);

    expect(mail.subject).toBe('Undelivered Mail Returned to Sender');
    expect(mail.from?.value[0]).toEqual({ address: 'MAILER-DAEMON@mta.example.net', name: 'Mail Delivery System' });
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined).toBe('sender@example.com');
    expect(mail.messageId).toBe('<dsn.1@mta.example.net>');
    expect(mail.date?.toISOString()).toBe('2024-05-01T12:00:05.000Z');
    expect(mail.headers.get('auto-submitted')).toBe('auto-replied');
    expect(mail.headers.get('mime-version')).toBe('1.0');
    expect(mail.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'delivery-status' } });

    expect(mail.text).toContain('This is the mail system at host mta.example.net.');
    expect(mail.text).toContain('<a@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1 text');
    expect(mail.text).toContain('<c@example.org>: connect to mx.example.org[192.0.2.1]:25: Connection refused');
    expect(mail.text).not.toContain('<b@example.org>');

    expect(status.type).toBe('message/delivery-status');
    expect(status.perMessage).toEqual([
      ['reporting-mta', 'dns; mta.example.net'],
      ['original-envelope-id', 'QUEUE-42'],
      ['arrival-date', 'Wed, 1 May 2024 11:00:00 +0000'],
    ]);
    expect(status.recipients).toEqual([
      [
        ['original-recipient', 'rfc822; A@Example.org'],
        ['final-recipient', 'rfc822; a@example.org'],
        ['action', 'failed'],
        ['status', '5.1.1'],
        ['remote-mta', 'dns; mx.example.org'],
        ['diagnostic-code', 'smtp; 550 5.1.1 text'],
        ['last-attempt-date', 'Wed, 1 May 2024 12:00:03 +0000'],
      ],
      [
        ['final-recipient', 'rfc822; c@example.org'],
        ['action', 'delayed'],
        ['status', '4.4.1'],
        ['diagnostic-code', 'X-mailwire; connect to mx.example.org[192.0.2.1]:25: Connection refused'],
        ['last-attempt-date', 'Wed, 1 May 2024 12:00:03 +0000'],
      ],
    ]);

    // A failure returns the whole message (Postfix: RET absent = FULL), line ends made CR LF.
    expect(third?.type).toBe('message/rfc822');
    expect(third?.body).toBe(original.replace(/\n/g, '\r\n'));
  });

  it('is deterministic with a fixed boundary, date and Message-Id', () => {
    const result: DeliveryResult = { recipients: [r('a@example.org', 'failed')], attempts: [] };
    const a = buildDsn(result, { ...base, original })!;
    const b = buildDsn(result, { ...base, original })!;
    expect(Buffer.from(a.message).equals(Buffer.from(b.message))).toBe(true);
    expect(Buffer.from(a.message).toString()).toContain('boundary="mailwire-test-boundary"');
  });

  it('a delay-only report: Postfix subject, Will-Retry-Until, and only the returned headers', async () => {
    const until = new Date(Date.UTC(2024, 4, 6, 11, 0, 0));
    const built = buildDsn({ recipients: [r('a@example.org', 'delayed')], attempts: [] }, { ...base, original, willRetryUntil: until })!;
    const { mail, status, third } = await parse(built.message);
    expect(mail.subject).toBe('Delayed Mail (still being retried)');
    expect(mail.text).toContain('warning only');
    expect(get(status.recipients[0]!, 'will-retry-until')).toBe('Mon, 6 May 2024 11:00:00 +0000');
    expect(third?.type).toBe('text/rfc822-headers');
    expect(third?.body).not.toContain('line one');
  });

  it('RET=HDRS returns the header section only (text/rfc822-headers)', async () => {
    const built = buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, { ...base, original, envelope: { ret: 'HDRS' } })!;
    const { third } = await parse(built.message);
    expect(third?.type).toBe('text/rfc822-headers');
    expect(third?.body).toBe('From: sender@example.com\r\nTo: a@example.org\r\nSubject: hello\r\nMessage-ID: <orig.1@example.com>\r\n');
  });

  it('a message over bounceSizeLimit (Postfix bounce_size_limit) is returned as headers only', async () => {
    const big = original + 'x'.repeat(200) + '\n';
    const built = buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, { ...base, original: big, bounceSizeLimit: 100 })!;
    expect((await parse(built.message)).third?.type).toBe('text/rfc822-headers');
    const full = buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, { ...base, original: big, bounceSizeLimit: 0 })!;
    expect((await parse(full.message)).third?.type).toBe('message/rfc822');
  });

  it('no original: two parts only', async () => {
    const built = buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, base)!;
    const { third, mail } = await parse(built.message);
    expect(third).toBeUndefined();
    expect(mail.attachments).toHaveLength(1);
  });

  it('bare LF and lines over 998 octets in the original: CR LF, cut and continued after CR LF SPACE', async () => {
    const long = 'y'.repeat(2500);
    const built = buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, { ...base, original: `Subject: long\n\n${long}\nend\r` })!;
    const { third } = await parse(built.message); // parse() checks CR LF and the 998 limit
    expect(third?.body.replace(/\r\n /g, '')).toBe(`Subject: long\r\n\r\n${long}\r\nend\r\n`);
  });

  it('a UTF-8 recipient: message/global-delivery-status with the utf-8 address type, message/global', async () => {
    const built = buildDsn(
      { recipients: [r('jürgen@bücher.example', 'failed'), r('a@example.org', 'failed')], attempts: [] },
      { ...base, original, envelope: { to: [{ address: 'jürgen@bücher.example', orcpt: 'utf-8;jürgen@bücher.example' }, 'a@example.org'] } },
    )!;
    const { mail, status, third } = await parse(built.message);
    expect(mail.headers.get('content-type')).toMatchObject({ value: 'multipart/report', params: { 'report-type': 'global-delivery-status' } });
    expect(status.type).toBe('message/global-delivery-status');
    expect(get(status.recipients[0]!, 'final-recipient')).toBe('utf-8; jürgen@bücher.example');
    expect(get(status.recipients[0]!, 'original-recipient')).toBe('utf-8; jürgen@bücher.example');
    expect(get(status.recipients[1]!, 'final-recipient')).toBe('rfc822; a@example.org');
    expect(third?.type).toBe('message/global');
    expect(mail.text).toContain('<jürgen@bücher.example>:');
  });

  it('a UTF-8 header in the original (RFC 6532): global types, message/global-headers for headers only', async () => {
    const built = buildDsn(
      { recipients: [r('a@example.org', 'failed')], attempts: [] },
      { ...base, original: 'Subject: Grüße\n\nHallo\n', envelope: { ret: 'HDRS' } },
    )!;
    const { status, third } = await parse(built.message);
    expect(status.type).toBe('message/global-delivery-status');
    expect(third?.type).toBe('message/global-headers');
  });

  it('an 8-bit body with ASCII headers stays message/rfc822 with Content-Transfer-Encoding 8bit', async () => {
    const built = buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, { ...base, original: 'Subject: x\n\nGrüße\n' })!;
    const { status, third } = await parse(built.message);
    expect(status.type).toBe('message/delivery-status');
    expect(third?.type).toBe('message/rfc822');
    expect(Buffer.from(built.message).toString('utf8')).toMatch(/Content-Type: message\/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n/);
  });

  it('a multi-line reply and CR/LF injection attempts stay within one field', async () => {
    const result: DeliveryResult = {
      recipients: [
        r('a@example.org', 'failed', { diagnosticCode: 'smtp; 550-5.7.1 line one\n550-5.7.1 line two\r\n550 5.7.1 line three' }),
        r('b@example.org', 'failed', {
          diagnosticCode: 'smtp; 550 5.1.1 no\r\n\r\nFinal-Recipient: rfc822; evil@example.net\r\nAction: delivered\rStatus: 2.0.0\n--mailwire-test-boundary--',
          reason: 'x\r\n\r\n--mailwire-test-boundary\r\nContent-Type: text/html',
          remoteMta: 'dns; mx\r\nX-Evil: 1',
        }),
      ],
      attempts: [],
    };
    const built = buildDsn(result, base)!;
    const { status, mail } = await parse(built.message);
    expect(status.recipients).toHaveLength(2);
    expect(get(status.recipients[0]!, 'diagnostic-code')).toBe('smtp; 550-5.7.1 line one 550-5.7.1 line two 550 5.7.1 line three');
    const evil = status.recipients[1]!;
    expect(evil.map(([n]) => n)).toEqual(['final-recipient', 'action', 'status', 'remote-mta', 'diagnostic-code']);
    expect(get(evil, 'action')).toBe('failed');
    expect(get(evil, 'diagnostic-code')).toBe(
      'smtp; 550 5.1.1 no Final-Recipient: rfc822; evil@example.net Action: delivered Status: 2.0.0 --mailwire-test-boundary--',
    );
    expect(get(evil, 'remote-mta')).toBe('dns; mx X-Evil: 1');
    expect(mail.attachments).toHaveLength(1);
    expect(mail.html).toBe(false);
  });

  it('refuses header injection through its options, and a given boundary that occurs in the content', () => {
    const result: DeliveryResult = { recipients: [r('a@example.org', 'failed')], attempts: [] };
    expect(() => buildDsn(result, { ...base, to: 's@example.com\r\nBcc: x@example.net' })).toThrow(/to:/);
    expect(() => buildDsn(result, { ...base, from: 'X <a@b>\r\nBcc: x@example.net' })).toThrow(/control/);
    expect(() => buildDsn(result, { ...base, reportingMta: 'mta\r\nX: y' })).toThrow(/reportingMta/);
    expect(() => buildDsn(result, { ...base, messageId: '<a@b>\r\nX: y' })).toThrow(/messageId/);
    expect(() => buildDsn(result, { ...base, original: 'Subject: x\n\n--mailwire-test-boundary\n' })).toThrow(/boundary/);
  });

  it('no report to the null sender (RFC 5321 §4.5.5)', () => {
    expect(buildDsn({ recipients: [r('a@example.org', 'failed')], attempts: [] }, { ...base, to: '' })).toBeUndefined();
  });
});

group('buildDsn: NOTIFY (RFC 3461 §4.1)', () => {
  const cases: Array<[string, DeliveryAction, Recipient['notify'], DsnOptions['include'], boolean, boolean?]> = [
    ['failed, no NOTIFY', 'failed', undefined, undefined, true],
    ['failed, NOTIFY=FAILURE', 'failed', ['FAILURE'], undefined, true],
    ['failed, NOTIFY=DELAY', 'failed', ['DELAY'], undefined, false],
    ['failed, NOTIFY=SUCCESS', 'failed', ['SUCCESS'], undefined, false],
    ['failed, NOTIFY=NEVER', 'failed', 'NEVER', undefined, false],
    ['delayed, no NOTIFY', 'delayed', undefined, undefined, true],
    ['delayed, NOTIFY=DELAY', 'delayed', ['FAILURE', 'DELAY'], undefined, true],
    ['delayed, NOTIFY=FAILURE', 'delayed', ['FAILURE'], undefined, false],
    ['delayed, NOTIFY=NEVER', 'delayed', 'NEVER', undefined, false],
    ['delayed, not included', 'delayed', undefined, ['failed'], false],
    ['relayed, NOTIFY=SUCCESS, not included', 'relayed', ['SUCCESS'], undefined, false],
    ['relayed, included, no NOTIFY', 'relayed', undefined, ['relayed'], false],
    ['relayed, included, NOTIFY=FAILURE', 'relayed', ['FAILURE'], ['relayed'], false],
    ['relayed, included, NOTIFY=SUCCESS', 'relayed', ['SUCCESS'], ['relayed'], true],
    ['relayed, included, NOTIFY=SUCCESS handed off (DSN-3)', 'relayed', ['SUCCESS'], ['relayed'], false, true],
    ['delivered, included, NOTIFY=SUCCESS', 'delivered', ['SUCCESS', 'FAILURE'], ['delivered'], true],
    ['delivered, NOTIFY=SUCCESS, only relayed included', 'delivered', ['SUCCESS'], ['relayed'], false],
  ];
  for (const [name, action, notify, include, reported, handedOff] of cases) {
    it(`${name}: ${reported ? 'reported' : 'not reported'}`, () => {
      const rec = r('a@example.org', action, handedOff ? { successNotifyHandedOff: true } : {});
      const built = buildDsn(
        { recipients: [rec], attempts: [] },
        { ...base, envelope: { to: [notify === undefined ? 'a@example.org' : { address: 'a@example.org', notify }] }, ...(include ? { include } : {}) },
      );
      expect(built?.recipients).toEqual(reported ? [0] : undefined);
    });
  }

  it('a success report: its subject, action and headers only; mixed reports list each kind', async () => {
    const result: DeliveryResult = { recipients: [r('a@example.org', 'delivered'), r('b@example.org', 'relayed')], attempts: [] };
    const to = [
      { address: 'a@example.org', notify: ['SUCCESS'] as Recipient['notify'] },
      { address: 'b@example.org', notify: ['SUCCESS'] as Recipient['notify'] },
    ];
    const built = buildDsn(result, { ...base, original, include: ['delivered', 'relayed'], envelope: { to } })!;
    const { mail, status, third } = await parse(built.message);
    expect(mail.subject).toBe('Successful Mail Delivery Report');
    expect(status.recipients.map((g) => get(g, 'action'))).toEqual(['delivered', 'relayed']);
    expect(get(status.recipients[0]!, 'diagnostic-code')).toBe('smtp; 250 2.0.0 text');
    expect(third?.type).toBe('text/rfc822-headers');
    expect(mail.text).toContain('Delivered:');
    expect(mail.text).toContain('Relayed:');
  });
});

// --- round trip ---

const asciiLocal = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,12}[a-z0-9]$/).filter((s) => !s.includes('..'));
const utf8Local = fc.array(fc.constantFrom('ü', 'é', '用', '户', 'ß', '😀', 'a', 'b', '1', '+', '='), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
const domain = fc.constantFrom('example.org', 'mx.example.net', 'bücher.example', '例え.jp', '[192.0.2.1]');
const address = fc.tuple(fc.oneof(asciiLocal, utf8Local), domain).map(([l, d]) => `${l}@${d}`);
const oddText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc
    .array(fc.constantFrom('\r', '\n', '\r\n', ' ', '  ', '\t', ':', ';', '\u0000', '\u007f', '\u0085', 'ü', '用', '😀', '\uD800', '\uDFFF', 'a', 'Z', '5', '-', '=', '\\', '(', ')'), { maxLength: 80 })
    .map((a) => a.join('')),
  fc.lorem({ maxCount: 40 }),
);
const status = fc.tuple(fc.constantFrom('2', '4', '5'), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 999 })).map(([c, s, d]) => `${c}.${s}.${d}`);
const recipientResult = fc.record(
  {
    recipient: address,
    action: fc.constantFrom<DeliveryAction>('failed', 'delayed', 'delivered', 'relayed'),
    status,
    reason: oddText,
    diagnosticCode: oddText.map((t) => `smtp; ${t}`),
    remoteMta: fc.constantFrom('dns; mx.example.org', 'dns; mx\r\nX: 1', 'dns; mx-ü.example'),
  },
  { requiredKeys: ['recipient', 'action', 'status', 'reason'] },
);
const orcpt = fc.option(fc.oneof(address.map((a) => `rfc822;${a}`), address.map((a) => `utf-8;${a}`)), { nil: undefined });

/** RFC 6533 §3: `\x{HEX}` back to the character. */
function decodeUtf8Addr(s: string): string {
  return s.replace(/\\x\{([0-9A-F]{1,6})\}/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)));
}

group('buildDsn → parse: round trip (property)', () => {
  it('every reported recipient comes back with the same per-recipient fields', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(recipientResult, orcpt), { minLength: 1, maxLength: 6 }), fc.boolean(), async (entries, withOriginal) => {
        const result: DeliveryResult = { recipients: entries.map(([rr]) => rr), attempts: [attempt] };
        const to = entries.map(([rr, o]) => ({ address: rr.recipient, notify: ['SUCCESS', 'FAILURE', 'DELAY'] as Recipient['notify'], ...(o ? { orcpt: o } : {}) }));
        const built = buildDsn(result, {
          ...base,
          include: ['failed', 'delayed', 'delivered', 'relayed'],
          envelope: { to },
          ...(withOriginal ? { original } : {}),
        });
        expect(built?.recipients).toEqual(entries.map((_, i) => i));
        const { status: report } = await parse(built!.message);
        const global = report.type === 'message/global-delivery-status';
        expect(report.recipients).toHaveLength(entries.length);
        report.recipients.forEach((fields, k) => {
          const [rr, o] = entries[k]!;
          const want = toDsnFields(rr, { global, lastAttemptDate: attempt.endedAt, ...(o ? { orcpt: o } : {}) });
          expect(get(fields, 'final-recipient')).toBe(want.finalRecipient);
          expect(get(fields, 'original-recipient')).toBe(want.originalRecipient);
          expect(get(fields, 'action')).toBe(rr.action);
          expect(get(fields, 'status')).toBe(rr.status);
          expect(get(fields, 'remote-mta')).toBe(want.remoteMta);
          expect(get(fields, 'diagnostic-code')).toBe(want.diagnosticCode);
          // The address itself survives the RFC 6533 escapes.
          const final = get(fields, 'final-recipient')!;
          expect(decodeUtf8Addr(final.slice(final.indexOf(';') + 1).trim())).toBe(rr.recipient);
          if (o) {
            const orig = get(fields, 'original-recipient')!;
            expect(decodeUtf8Addr(orig.slice(orig.indexOf(';') + 1).trim())).toBe(o.slice(o.indexOf(';') + 1));
          }
          // Nothing a server sent becomes a field of its own.
          for (const [n] of fields) expect(['original-recipient', 'final-recipient', 'action', 'status', 'remote-mta', 'diagnostic-code', 'last-attempt-date']).toContain(n);
        });
        if (report.recipients.some((f) => !/^[\x00-\x7f]*$/.test(f.map(([, v]) => v).join('')))) expect(global).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
