// Edge cases against the real servers: Postfix's 421-and-close at RCPT (PROTO-27), 552 at RCPT
// (not read as 452), and Dovecot LMTP over the DATA path (CHUNKING turned off on our side).
import { describe, expect, it } from 'vitest';
import { deliver } from '../../src/index.js';
import { Transcript, peers, plainMessage, smtpNexthop, token, waitForMaildirFile } from './helpers.js';

const P = peers();

describe('Postfix: per-recipient edge cases', () => {
  it('421 at one RCPT, then Postfix closes: that recipient gets the 421, the accepted ones are lost (4.4.2), never relayed', async () => {
    const t = new Transcript();
    const r = await deliver(
      { from: 'sender@client.test', to: ['alice@example.test', 'defer-421@example.test', 'bob@example.test'], message: plainMessage(token('421'), 'sender@client.test') },
      smtpNexthop(P.postfix),
      { tls: { level: 'none' }, heloName: 'client.test', onEvent: t.onEvent },
    );
    const why = t.explain(r);
    expect(r.recipients[1], why).toMatchObject({ action: 'delayed', status: '4.7.0' });
    expect(r.recipients[1]!.reason, why).toMatch(/said: 421 4\.7\.0 .*\(in reply to RCPT TO command\)$/);
    for (const i of [0, 2]) {
      expect(r.recipients[i], why).toMatchObject({ action: 'delayed', status: '4.4.2' });
      expect(r.recipients[i]!.reason, why).toMatch(/^lost connection with \S+ while sending RCPT TO$/);
    }
  });

  it('552 at RCPT is a hard failure for that recipient (Postfix does not read it as 452)', async () => {
    const r = await deliver(
      { from: 'sender@client.test', to: ['reject-552@example.test', 'carol@example.test'], message: plainMessage(token('552'), 'sender@client.test') },
      smtpNexthop(P.postfixNoChunking),
      { tls: { level: 'none' }, heloName: 'client.test' },
    );
    expect(r.recipients[0]).toMatchObject({ action: 'failed', status: '5.2.2' });
    expect(r.recipients[1]).toMatchObject({ action: 'relayed', status: '2.0.0' });
  });
});

describe('Dovecot LMTP over DATA (chunking: false)', () => {
  it('one reply per recipient after ".", each applied to its own recipient', async () => {
    const tok = token('lmtp-data');
    const t = new Transcript();
    const r = await deliver(
      { from: 'sender@client.test', to: ['alice@example.test', 'full@example.test', 'fulltmp@example.test', 'nobody@example.test'], message: plainMessage(tok, 'sender@client.test') },
      `unix:${P.lmtpSocket}`,
      { protocol: 'lmtp', final: true, chunking: false, heloName: 'client.test', onEvent: t.onEvent },
    );
    const why = t.explain(r);
    expect(t.sent(), why).toContain('DATA');
    expect(r.recipients.map((x) => [x.action, x.status]), why).toEqual([
      ['delivered', '2.0.0'],
      ['failed', '5.2.2'],
      ['delayed', '4.2.2'],
      ['failed', '5.1.1'],
    ]);
    expect(r.recipients[1]!.reason, why).toMatch(/\(in reply to end of DATA command\)$/);
    expect(r.recipients[3]!.reason, why).toMatch(/\(in reply to RCPT TO command\)$/);
    await waitForMaildirFile(`${P.lmtpMaildirs}/alice`, tok);
  });
});
