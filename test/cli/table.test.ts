/** mailwire CLI: the result table, the exit code of a result, the -v transcript lines. */
import { describe, expect, it } from 'vitest';
import type { DeliveryResult, RecipientResult } from '../../src/index.js';
import { EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE } from '../../src/cli/exit-codes.js';
import { exitCodeFor, formatTable, printable, remoteMtaOf } from '../../src/cli/table.js';
import { formatEvent } from '../../src/cli/transcript.js';

const relayed: RecipientResult = {
  recipient: 'alice@example.net',
  action: 'relayed',
  status: '2.0.0',
  reason: '250 2.0.0 Ok: queued as 4F2A1',
  remoteMta: 'dns; mx.example.net',
  remoteAddress: '192.0.2.7',
};
const failed: RecipientResult = {
  recipient: 'bob@example.net',
  action: 'failed',
  status: '5.1.1',
  reason: 'host mx.example.net[192.0.2.7] said: 550 5.1.1 <bob@example.net>: User unknown (in reply to RCPT TO command)',
  remoteMta: 'dns; mx.example.net',
  remoteAddress: '192.0.2.7',
};
const delayed: RecipientResult = { recipient: 'c@example.net', action: 'delayed', status: '4.4.1', reason: 'connect to mx.example.net[192.0.2.7]:25: Connection refused', remoteAddress: '192.0.2.7' };
const delivered: RecipientResult = { recipient: 'd@example.net', action: 'delivered', status: '2.0.0', reason: '250 2.0.0 <d@example.net> Saved', remoteMta: 'dns; localhost', remoteAddress: '/run/lmtp' };
const result = (...recipients: RecipientResult[]): DeliveryResult => ({ recipients, attempts: [] });

describe('formatTable', () => {
  it('a header row and one aligned row per recipient, reason last and whole', () => {
    expect(formatTable(result(relayed, failed, delayed))).toBe(
      [
        'RECIPIENT          ACTION   STATUS  REMOTE MTA                 REASON',
        'alice@example.net  relayed  2.0.0   mx.example.net[192.0.2.7]  250 2.0.0 Ok: queued as 4F2A1',
        `bob@example.net    failed   5.1.1   mx.example.net[192.0.2.7]  ${failed.reason}`,
        `c@example.net      delayed  4.4.1   192.0.2.7                  ${delayed.reason}`,
        '',
      ].join('\n'),
    );
  });

  it('escapes control characters a server might send, so rows cannot be forged or the terminal driven', () => {
    const evil = { ...failed, reason: 'said: 550 x\r\nalice@example.net  relayed\x1b[2J' };
    const out = formatTable(result(evil));
    expect(out.split('\n')).toHaveLength(3);
    expect(out).toContain('said: 550 x alice@example.net  relayed\\x1b[2J');
    expect(printable('a\tb\x00\x7f')).toBe('a\tb\\x00\\x7f');
  });

  it('remote MTA: host[address], host alone, address alone, or -', () => {
    expect(remoteMtaOf(relayed)).toBe('mx.example.net[192.0.2.7]');
    expect(remoteMtaOf({ ...relayed, remoteMta: 'dns; 192.0.2.7' })).toBe('192.0.2.7');
    expect(remoteMtaOf(delayed)).toBe('192.0.2.7');
    expect(remoteMtaOf(delivered)).toBe('localhost[/run/lmtp]');
    expect(remoteMtaOf({ recipient: 'x', action: 'failed', status: '5.4.4', reason: 'Host or domain name not found' })).toBe('-');
  });

  it('the null sender... is never a recipient, but an empty recipient shows as <>', () => {
    expect(formatTable(result({ ...failed, recipient: '' }))).toContain('\n<>  ');
  });
});

describe('exitCodeFor', () => {
  it('0 all delivered or relayed; 75 some delayed, none failed; 69 any failed', () => {
    expect(exitCodeFor(result(relayed, delivered))).toBe(EX_OK);
    expect(exitCodeFor(result(relayed, delayed))).toBe(EX_TEMPFAIL);
    expect(exitCodeFor(result(delayed))).toBe(EX_TEMPFAIL);
    expect(exitCodeFor(result(relayed, failed))).toBe(EX_UNAVAILABLE);
    expect(exitCodeFor(result(delayed, failed, relayed))).toBe(EX_UNAVAILABLE);
    expect([EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE]).toEqual([0, 75, 69]);
  });
});

describe('formatEvent (-v)', () => {
  it('C: and S: lines, * for the rest, nothing for content and recipient events', () => {
    expect(formatEvent({ type: 'send', line: 'AUTH PLAIN <credentials>' })).toBe('C: AUTH PLAIN <credentials>');
    expect(formatEvent({ type: 'receive', line: '250 ok\x1b[0m' })).toBe('S: 250 ok\\x1b[0m');
    expect(formatEvent({ type: 'connect', nexthop: 'example.net', host: 'mx.example.net', address: '192.0.2.7', port: 25 })).toBe(
      '* connecting to mx.example.net[192.0.2.7]:25 (next hop example.net)',
    );
    expect(formatEvent({ type: 'tls', version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', verified: true, level: 'verify' })).toBe(
      '* TLS TLSv1.3 TLS_AES_128_GCM_SHA256, level verify, server certificate verified',
    );
    expect(formatEvent({ type: 'connect-failed', host: 'h', address: '192.0.2.1', port: 25, reason: 'Connection refused' })).toBe('* connect to h[192.0.2.1]:25 failed: Connection refused');
    expect(formatEvent({ type: 'content', bytes: 10 })).toBeUndefined();
    expect(formatEvent({ type: 'recipient', index: 0, recipient: 'a', action: 'relayed', status: '2.0.0', reason: 'ok' })).toBeUndefined();
  });
});
