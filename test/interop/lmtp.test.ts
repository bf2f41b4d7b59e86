// deliver() with protocol 'lmtp' against a real Dovecot LMTP server (test/interop/peers.sh),
// over its unix socket and over TCP: one reply per recipient after the end of data.
import { describe, expect, it } from 'vitest';
import { deliver } from '../../src/index.js';
import {
  Transcript,
  expectStoredCopy,
  hostOf,
  maildirFilesWith,
  peers,
  plainMessage,
  token,
  trickyMessage,
  waitForMaildirFile,
} from './helpers.js';

const P = peers();
const ALICE = 'alice@example.test';
const FULL = 'full@example.test';
const FULLTMP = 'fulltmp@example.test';
const NOBODY = 'nobody@example.test';
const maildir = (user: string): string => `${P.lmtpMaildirs}/${user}`;

const transports = [
  { name: 'unix socket', destination: `unix:${P.lmtpSocket}`, address: P.lmtpSocket },
  { name: 'TCP', destination: `inet:${P.lmtp}`, address: hostOf(P.lmtp) },
];

describe.each(transports)('Dovecot LMTP over $name', ({ destination, address }) => {
  it('final: true: alice delivered, full@ failed 5.2.2 and fulltmp@ delayed 4.2.2 after data, nobody@ failed 5.1.1 at RCPT', async () => {
    const tok = token('lmtp');
    const { message, longLine } = trickyMessage(tok);
    const t = new Transcript();
    const result = await deliver({ from: 'sender@client.test', to: [ALICE, FULL, FULLTMP, NOBODY], message }, destination, {
      protocol: 'lmtp',
      final: true,
      heloName: 'client.test',
      onEvent: t.onEvent,
    });
    const why = t.explain(result);

    expect(t.sent().some((l) => l === 'LHLO client.test'), why).toBe(true);
    expect(result.recipients.map((r) => r.recipient), why).toEqual([ALICE, FULL, FULLTMP, NOBODY]);
    const [alice, full, fulltmp, nobody] = result.recipients;

    // Dovecot announces no DSN, so with final: true a success is final delivery.
    expect(alice, why).toMatchObject({ action: 'delivered', status: '2.0.0', remoteAddress: address, reply: { code: 250 } });
    expect(alice?.diagnosticCode, why).toMatch(/^smtp; 250 2\.0\.0 <alice@example\.test> \S+ Saved$/);
    expect(alice?.remoteMta, why).toMatch(/^dns; \S/);

    const fullReply = `552 5.2.2 <${FULL}> Quota exceeded (mailbox for user is full)`;
    expect(full, why).toMatchObject({ action: 'failed', status: '5.2.2', diagnosticCode: `smtp; ${fullReply}`, remoteAddress: address });
    expect(full?.reason, why).toContain(fullReply);
    // Postfix's lmtp client (DATA only) says "end of DATA"; over BDAT there is no Postfix wording.
    if (!t.sent().some((l) => l.startsWith('BDAT '))) expect(full?.reason, why).toMatch(/\(in reply to end of DATA command\)$/);

    const fulltmpReply = `452 4.2.2 <${FULLTMP}> Quota exceeded (mailbox for user is full)`;
    expect(fulltmp, why).toMatchObject({ action: 'delayed', status: '4.2.2', diagnosticCode: `smtp; ${fulltmpReply}`, remoteAddress: address });
    expect(fulltmp?.reason, why).toContain(fulltmpReply);

    const nobodyReply = `550 5.1.1 <${NOBODY}> User doesn't exist: ${NOBODY}`;
    expect(nobody, why).toMatchObject({ action: 'failed', status: '5.1.1', diagnosticCode: `smtp; ${nobodyReply}`, remoteAddress: address });
    expect(nobody?.reason, why).toMatch(/\(in reply to RCPT TO command\)$/);

    for (const r of [full, fulltmp, nobody]) expect(r?.remoteMta, why).toBe(alice?.remoteMta);

    // Dovecot stored alice's copy (LF line ends), and nothing for the others.
    const file = await waitForMaildirFile(maildir('alice'), tok);
    const added = expectStoredCopy(file, message, longLine, "alice's Dovecot maildir file");
    expect(added).toContain('by lmtp.interop.test with LMTP');
    expect(maildirFilesWith(maildir('full'), tok)).toEqual([]);
    expect(maildirFilesWith(maildir('fulltmp'), tok)).toEqual([]);
  });

  it('without final: true, success at an LMTP server is relayed', async () => {
    const tok = token('lmtp-relayed');
    const t = new Transcript();
    const message = plainMessage(tok, 'sender@client.test');
    const result = await deliver({ from: 'sender@client.test', to: [ALICE], message }, destination, {
      protocol: 'lmtp',
      heloName: 'client.test',
      onEvent: t.onEvent,
    });
    const why = t.explain(result);
    expect(result.recipients, why).toHaveLength(1);
    expect(result.recipients[0], why).toMatchObject({ recipient: ALICE, action: 'relayed', status: '2.0.0', remoteAddress: address });
    expect(result.recipients[0]?.diagnosticCode, why).toMatch(/^smtp; 250 2\.0\.0 <alice@example\.test> \S+ Saved$/);
    await waitForMaildirFile(maildir('alice'), tok);
  });
});
