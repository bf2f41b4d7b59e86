import { describe as group, expect, it } from 'vitest';
import { describe } from '../../src/results/describe.js';
import { RecipientLedger } from '../../src/results/ledger.js';
import { parseReply } from '../../src/protocol/reply-parser.js';

const mx = { host: 'mx.example.org', address: '192.0.2.1', port: 25 };

group('describe: Postfix texts and statuses (DSN-4, DSN-11)', () => {
  it('a RCPT rejection: reply status, "host H[A] said: … (in reply to RCPT TO command)"', () => {
    const d = describe({ kind: 'reply', reply: parseReply('550 5.1.1 <b@x>: unknown user'), command: 'RCPT TO' }, mx);
    expect(d).toMatchObject({
      status: '5.1.1',
      reason: 'host mx.example.org[192.0.2.1] said: 550 5.1.1 <b@x>: unknown user (in reply to RCPT TO command)',
      diagnosticCode: 'smtp; 550 5.1.1 <b@x>: unknown user',
      remoteMta: 'dns; mx.example.org',
      success: false,
    });
  });

  it('multi-line replies are joined with spaces in reason and diagnostic; the reply keeps newlines', () => {
    const d = describe({ kind: 'reply', reply: parseReply('550-5.7.1 line one\r\n550 5.7.1 line two'), command: 'end of DATA' }, mx);
    expect(d.diagnosticCode).toBe('smtp; 550-5.7.1 line one 550 5.7.1 line two');
    expect(d.reply?.text).toBe('550-5.7.1 line one\n550 5.7.1 line two');
  });

  it('a 2xx where a failure is reported is a 5.5.0 protocol error', () => {
    const d = describe({ kind: 'reply', reply: parseReply('250 2.0.0 ok'), command: 'DATA' }, mx);
    expect(d.status).toBe('5.5.0');
    expect(d.reason).toBe('Protocol error: host mx.example.org[192.0.2.1] said: 250 2.0.0 ok (in reply to DATA command)');
  });

  it('a 3xx or out-of-range code is 5.5.0 with the plain reason', () => {
    const d = describe({ kind: 'reply', reply: parseReply('354 go ahead'), command: 'RCPT TO' }, mx);
    expect(d.status).toBe('5.5.0');
    expect(d.reason.startsWith('host ')).toBe(true);
  });

  it('a 5xx greeting is soft with skip5xxGreeting (text kept), hard without; a 3xx greeting stays 5.5.0', () => {
    const r = parseReply('554 5.7.1 no service');
    expect(describe({ kind: 'refused', reply: r, greeting: true }, mx)).toMatchObject({ status: '4.7.1', reason: 'host mx.example.org[192.0.2.1] refused to talk to me: 554 5.7.1 no service' });
    expect(describe({ kind: 'refused', reply: r, greeting: true }, mx, { skip5xxGreeting: false }).status).toBe('5.7.1');
    expect(describe({ kind: 'refused', reply: parseReply('554 no code'), greeting: true }, mx).status).toBe('4.0.0');
    expect(describe({ kind: 'refused', reply: parseReply('354 what'), greeting: true }, mx).status).toBe('5.5.0');
    expect(describe({ kind: 'refused', reply: parseReply('554 5.7.1 x'), greeting: false }, mx).status).toBe('5.7.1');
  });

  it('lost connection and timeout are 4.4.2 with the stage; connect is 4.4.1; no remote MTA', () => {
    expect(describe({ kind: 'lost', stage: 'sending RCPT TO' }, mx)).toEqual({ status: '4.4.2', reason: 'lost connection with mx.example.org[192.0.2.1] while sending RCPT TO', success: false });
    expect(describe({ kind: 'timeout', stage: 'sending end of data -- message may be sent more than once' }, mx).reason).toBe(
      'conversation with mx.example.org[192.0.2.1] timed out while sending end of data -- message may be sent more than once',
    );
    expect(describe({ kind: 'connect', detail: 'Connection refused' }, mx)).toEqual({ status: '4.4.1', reason: 'connect to mx.example.org[192.0.2.1]:25: Connection refused', success: false });
  });

  it('local decisions have fixed statuses', () => {
    expect(describe({ kind: 'local', reason: 'message-too-big', detail: 'message size 10 exceeds size limit 5 of server' }, mx)).toMatchObject({ status: '5.3.4', reason: 'message size 10 exceeds size limit 5 of server mx.example.org[192.0.2.1]' });
    expect(describe({ kind: 'local', reason: 'bad-recipient', detail: 'bad' }, mx).status).toBe('5.1.3');
    expect(describe({ kind: 'local', reason: 'bad-sender', detail: 'bad' }, mx).status).toBe('5.1.7');
    expect(describe({ kind: 'local', reason: 'smtputf8-required', detail: 'x' }, mx)).toMatchObject({ status: '5.6.7', softNonFinal: true });
    expect(describe({ kind: 'local', reason: 'aborted', detail: 'x' }, mx).status).toBe('4.4.7');
  });

  it('a 5xx AUTH failure is soft by default (smtp_sasl_auth_soft_bounce)', () => {
    expect(describe({ kind: 'reply', reply: parseReply('535 5.7.8 bad credentials'), command: 'AUTH' }, mx).status).toBe('4.7.8');
    expect(describe({ kind: 'reply', reply: parseReply('535 5.7.8 bad credentials'), command: 'AUTH' }, mx, { authSoftBounce: false }).status).toBe('5.7.8');
  });
});

group('RecipientLedger (mark-and-sweep)', () => {
  const soft = describe({ kind: 'reply', reply: parseReply('450 4.2.0 busy'), command: 'RCPT TO' }, mx);
  const hard = describe({ kind: 'reply', reply: parseReply('550 5.1.1 unknown'), command: 'RCPT TO' }, mx);
  const ok = describe({ kind: 'success', reply: parseReply('250 2.0.0 queued') }, mx);

  it('a soft error at a non-final server keeps the recipient; at the final server it is delayed', () => {
    const l = new RecipientLedger(['a', 'b']);
    expect(l.outcome(0, soft, { finalServer: false })).toBe('kept');
    expect(l.outcome(1, soft, { finalServer: true })).toBe('recorded');
    expect(l.left).toEqual([0]);
    const r = l.finish();
    expect(r[0]).toMatchObject({ action: 'delayed', status: '4.2.0' });
    expect(r[1]).toMatchObject({ action: 'delayed', status: '4.2.0' });
  });

  it('a hard error never fails over', () => {
    const l = new RecipientLedger(['a']);
    expect(l.outcome(0, hard, { finalServer: false })).toBe('recorded');
    expect(l.finish()[0]).toMatchObject({ action: 'failed', status: '5.1.1' });
  });

  it('softNonFinal (5.6.7) keeps at a non-final server and bounces at the final one', () => {
    const d = describe({ kind: 'local', reason: 'smtputf8-required', detail: 'x' }, mx);
    const l = new RecipientLedger(['a', 'b']);
    expect(l.outcome(0, d, { finalServer: false })).toBe('kept');
    expect(l.outcome(1, d, { finalServer: true })).toBe('recorded');
    expect(l.get(1)).toMatchObject({ action: 'failed', status: '5.6.7' });
  });

  it('success is relayed, or delivered when asked; the last error reaches kept recipients', () => {
    const l = new RecipientLedger(['a', 'b', 'c']);
    l.outcome(0, ok, { finalServer: false, server: mx, serverDsn: true });
    l.outcome(1, ok, { finalServer: false, deliveredOnSuccess: true });
    l.outcome(2, soft, { finalServer: false });
    l.siteError(describe({ kind: 'connect', detail: 'Connection refused' }, mx), mx);
    const r = l.finish();
    expect(r[0]).toMatchObject({ action: 'relayed', status: '2.0.0', remoteAddress: '192.0.2.1', successNotifyHandedOff: true });
    expect(r[1]).toMatchObject({ action: 'delivered' });
    expect(r[2]).toMatchObject({ action: 'delayed', status: '4.4.1' });
  });

  it('with no error recorded at all, leftovers get 4.3.0', () => {
    expect(new RecipientLedger(['a']).finish()[0]).toMatchObject({ action: 'delayed', status: '4.3.0' });
  });

  it('softBounce turns a bounce into a deferral', () => {
    const l = new RecipientLedger(['a'], { softBounce: true });
    l.outcome(0, hard, { finalServer: true });
    expect(l.finish()[0]).toMatchObject({ action: 'delayed', status: '4.1.1' });
  });

  it('deliveryStatusFilter (DSN-10): runs once per final result; class kept, else ignored with a warning; softBounce after it', () => {
    const soft = { status: '4.7.5', reason: 'TLS is required, but was not offered', success: false };
    const warnings: string[] = [];
    const calls: string[] = [];
    const l = new RecipientLedger(['tls', 'ok', 'bad-class', 'empty', 'kept'], {
      statusFilter: ({ recipient, status, text }) => {
        calls.push(recipient);
        if (recipient === 'tls') return { status: '5.7.5', text: `${text} (policy: bounce)` };
        if (recipient === 'ok') return { status: '2.6.0', text: 'accepted' };
        if (recipient === 'bad-class') return { status: '2.0.0', text: 'nice try' };
        if (recipient === 'empty') return { status: '5.0.0', text: ' ' };
        return undefined;
      },
      onWarning: (m) => warnings.push(m),
    });
    l.outcome(0, soft, { finalServer: false }); // kept: not final, the filter does not run yet
    expect(calls).toEqual([]);
    l.outcome(1, ok, { finalServer: false });
    l.outcome(2, hard, { finalServer: true });
    l.outcome(3, hard, { finalServer: true });
    l.outcome(4, hard, { finalServer: true });
    l.siteError(soft);
    const r = l.finish();
    expect(r.map((x) => [x.action, x.status])).toEqual([
      ['failed', '5.7.5'],
      ['relayed', '2.6.0'],
      ['failed', '5.1.1'],
      ['failed', '5.1.1'],
      ['failed', '5.1.1'],
    ]);
    expect(r[0]!.reason).toMatch(/\(policy: bounce\)$/);
    expect(calls.sort()).toEqual(['bad-class', 'empty', 'kept', 'ok', 'tls']);
    expect(warnings).toHaveLength(2);
    const sb = new RecipientLedger(['a'], { softBounce: true, statusFilter: () => ({ status: '5.7.1', text: 'bounce it' }) });
    sb.outcome(0, soft, { finalServer: true });
    expect(sb.finish()[0]).toMatchObject({ action: 'delayed', status: '4.7.1', reason: 'bounce it' });
  });

  it('recording a recipient twice throws (an engine bug, never silently accepted)', () => {
    const l = new RecipientLedger(['a']);
    l.outcome(0, hard, { finalServer: true });
    expect(() => l.outcome(0, ok, { finalServer: true })).toThrow(/twice/);
  });
});

group('describe: loops (MX-6, MX-7)', () => {
  it('5.4.6 / 4.4.6 / 4.4.4 with Postfix texts', () => {
    expect(describe({ kind: 'loop', nexthop: 'example.org' }, undefined)).toMatchObject({ status: '5.4.6', reason: 'mail for example.org loops back to myself' });
    expect(describe({ kind: 'loop', nexthop: 'example.org', greeted: { bestMx: false } }, mx).status).toBe('4.4.6');
    expect(describe({ kind: 'loop', nexthop: 'example.org', greeted: { bestMx: true } }, mx).status).toBe('5.4.6');
    expect(describe({ kind: 'loop', nexthop: 'example.org', noPrimaryRelay: true }, undefined)).toMatchObject({ status: '4.4.4', reason: 'unable to find primary relay for example.org' });
  });
});
