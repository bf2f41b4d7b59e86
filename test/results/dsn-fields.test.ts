import { describe as group, expect, it } from 'vitest';
import { foldField, renderDsnFields, rfc5322Date, toDsnFields } from '../../src/results/dsn-fields.js';
import type { RecipientResult } from '../../src/results/delivery-result.js';

const failed = (over: Partial<RecipientResult> = {}): RecipientResult => ({
  recipient: 'a@example.org',
  action: 'failed',
  status: '5.1.1',
  reason: 'host mx.example.org[192.0.2.1] said: 550 5.1.1 <a@example.org>: unknown user (in reply to RCPT TO command)',
  diagnosticCode: 'smtp; 550 5.1.1 <a@example.org>: unknown user',
  remoteMta: 'dns; mx.example.org',
  ...over,
});

/** RFC 5322 §2.2.3 unfolding: CR LF followed by WSP is removed. */
function unfold(lines: string): string[] {
  return lines
    .replace(/\r\n(?=[ \t])/g, '')
    .split('\r\n')
    .filter((l) => l !== '');
}

group('toDsnFields: RFC 3464 §2.3 fields (DSN-11, DSN-13)', () => {
  it('a server rejection: rfc822 address, action, status, Remote-MTA and the smtp diagnostic', () => {
    expect(toDsnFields(failed())).toEqual({
      finalRecipient: 'rfc822; a@example.org',
      action: 'failed',
      status: '5.1.1',
      remoteMta: 'dns; mx.example.org',
      diagnosticCode: 'smtp; 550 5.1.1 <a@example.org>: unknown user',
    });
  });

  it('angle brackets are dropped and a local part that needs quotes gets them (RFC 5321 §4.1.2)', () => {
    expect(toDsnFields(failed({ recipient: '<B@example.org>' })).finalRecipient).toBe('rfc822; B@example.org');
    expect(toDsnFields(failed({ recipient: 'john doe@example.org' })).finalRecipient).toBe('rfc822; "john doe"@example.org');
  });

  it('a UTF-8 address takes the RFC 6533 utf-8 type: xtext form by default, unitext form for global', () => {
    const r = failed({ recipient: 'jürgen+x@bücher.example' });
    expect(toDsnFields(r).finalRecipient).toBe('utf-8; j\\x{FC}rgen\\x{2B}x@b\\x{FC}cher.example');
    expect(toDsnFields(r, { global: true }).finalRecipient).toBe('utf-8; jürgen\\x{2B}x@bücher.example');
  });

  it('an address with CR LF (a rejected one) is escaped, never written raw', () => {
    const f = toDsnFields(failed({ recipient: 'a@x\r\nBcc: evil@example.org' }));
    expect(f.finalRecipient).toBe('utf-8; a@x\\x{D}\\x{A}Bcc:\\x{20}evil@example.org');
    expect(unfold(renderDsnFields(f)).map((l) => l.split(':')[0])).toEqual(['Final-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code']);
  });

  it('Original-Recipient comes from the ORCPT as given (RFC 3464 §2.3.1), only when given', () => {
    expect(toDsnFields(failed()).originalRecipient).toBeUndefined();
    expect(toDsnFields(failed(), { orcpt: 'rfc822;List@Example.org' }).originalRecipient).toBe('rfc822; List@Example.org');
    expect(toDsnFields(failed(), { orcpt: 'utf-8;ü@example.org' }).originalRecipient).toBe('utf-8; \\x{FC}@example.org');
    expect(toDsnFields(failed(), { orcpt: 'utf-8;ü@example.org', global: true }).originalRecipient).toBe('utf-8; ü@example.org');
    expect(toDsnFields(failed(), { orcpt: 'no-type-here' }).originalRecipient).toBeUndefined();
  });

  it('a multi-line reply is one field, its lines joined with a space (as Postfix)', () => {
    const f = toDsnFields(failed({ diagnosticCode: 'smtp; 550-5.7.1 first\n550-5.7.1 second\r\n550 5.7.1 third' }));
    expect(f.diagnosticCode).toBe('smtp; 550-5.7.1 first 550-5.7.1 second 550 5.7.1 third');
  });

  it('CR, LF and other controls in server text cannot start a new field', () => {
    const f = toDsnFields(
      failed({ diagnosticCode: 'smtp; 550 no\r\nFinal-Recipient: rfc822; evil@x\r\rAction: delivered\u0000\u001b[0m', remoteMta: 'dns; mx\nX: y' }),
    );
    const lines = unfold(renderDsnFields(f));
    expect(lines.map((l) => l.slice(0, l.indexOf(':')))).toEqual(['Final-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code']);
    expect(f.diagnosticCode).toBe('smtp; 550 no Final-Recipient: rfc822; evil@x Action: delivered??[0m');
    expect(f.remoteMta).toBe('dns; mx X: y');
  });

  it('non-ASCII server text is kept for global, `?` otherwise', () => {
    const r = failed({ diagnosticCode: 'smtp; 550 5.1.1 Benutzer unbekannt: müller' });
    expect(toDsnFields(r).diagnosticCode).toBe('smtp; 550 5.1.1 Benutzer unbekannt: m?ller');
    expect(toDsnFields(r, { global: true }).diagnosticCode).toBe('smtp; 550 5.1.1 Benutzer unbekannt: müller');
  });

  it('without a server reply the reason is the diagnostic, as X-mailwire (Postfix: X-Postfix)', () => {
    const r: RecipientResult = { recipient: 'a@example.org', action: 'delayed', status: '4.4.1', reason: 'connect to mx.example.org[192.0.2.1]:25: Connection refused' };
    const f = toDsnFields(r);
    expect(f.diagnosticCode).toBe('X-mailwire; connect to mx.example.org[192.0.2.1]:25: Connection refused');
    expect(f.remoteMta).toBeUndefined();
  });

  it('Will-Retry-Until only for delayed; dates in RFC 5322 form', () => {
    const at = new Date(Date.UTC(2024, 1, 29, 7, 5, 9));
    const until = new Date(Date.UTC(2024, 2, 4, 7, 5, 9));
    expect(toDsnFields(failed(), { willRetryUntil: until }).willRetryUntil).toBeUndefined();
    const f = toDsnFields({ ...failed(), action: 'delayed', status: '4.2.2' }, { lastAttemptDate: at, willRetryUntil: until });
    expect(renderDsnFields(f)).toContain('Last-Attempt-Date: Thu, 29 Feb 2024 07:05:09 +0000\r\nWill-Retry-Until: Mon, 4 Mar 2024 07:05:09 +0000\r\n');
    expect(rfc5322Date(new Date(0))).toBe('Thu, 1 Jan 1970 00:00:00 +0000');
  });

  it('a status that is not RFC 3463 falls back to the class of the action', () => {
    expect(toDsnFields(failed({ status: 'bogus' })).status).toBe('5.0.0');
    expect(toDsnFields({ ...failed(), action: 'delayed', status: '' }).status).toBe('4.0.0');
  });

  it('renders in RFC 3464 §2.3 order, each line ending in CR LF', () => {
    const text = renderDsnFields(toDsnFields(failed(), { orcpt: 'rfc822;a@example.org' }));
    expect(text).toBe(
      'Original-Recipient: rfc822; a@example.org\r\n' +
        'Final-Recipient: rfc822; a@example.org\r\n' +
        'Action: failed\r\n' +
        'Status: 5.1.1\r\n' +
        'Remote-MTA: dns; mx.example.org\r\n' +
        'Diagnostic-Code: smtp; 550 5.1.1 <a@example.org>: unknown user\r\n',
    );
  });
});

group('foldField: RFC 5322 §2.2.3 folding', () => {
  it('folds long values before white space at 78 octets; unfolding gives the value back', () => {
    const value = 'smtp; ' + Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
    const folded = foldField('Diagnostic-Code', value);
    const lines = folded.split('\r\n').slice(0, -1);
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(78);
    expect(unfold(folded)).toEqual([`Diagnostic-Code: ${value}`]);
  });

  it('a run without white space over 998 octets is cut and continued after CR LF SPACE', () => {
    const value = 'smtp; 550 ' + 'ü'.repeat(1500);
    const folded = foldField('Diagnostic-Code', value);
    for (const l of folded.split('\r\n')) expect(Buffer.byteLength(l)).toBeLessThanOrEqual(998);
    expect(unfold(folded)).toHaveLength(1);
    expect(folded).not.toContain('\uFFFD');
  });

  it('refuses a value with CR or LF', () => {
    expect(() => foldField('Subject', 'a\r\nBcc: x')).toThrow(/CR or LF/);
  });
});
