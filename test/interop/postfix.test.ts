// deliver() against a real Postfix smtpd (test/interop/peers.sh): per-recipient results, the
// stored copies, and BDAT vs DATA, on the CHUNKING listener and on the PIPELINING-only one.
import { describe, expect, it } from 'vitest';
import { deliver } from '../../src/index.js';
import {
  Transcript,
  esc,
  expectStoredCopy,
  expectedContent,
  hostOf,
  maildirFilesWith,
  peers,
  plainMessage,
  smtpNexthop,
  token,
  trickyMessage,
  waitForMaildirFile,
  waitForPostfixDisconnect,
} from './helpers.js';

const P = peers();
const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const REJECT = 'reject-5xx@example.test';
const DEFER = 'defer-4xx@example.test';
const maildir = (user: string): string => `${P.postfixMaildirs}/example.test/${user}`;

const listeners = [
  { name: 'CHUNKING listener (BDAT)', hostPort: P.postfix, chunking: true, syslog: 'postfix-interop/chunking/smtpd' },
  { name: 'PIPELINING-only listener (DATA)', hostPort: P.postfixNoChunking, chunking: false, syslog: 'postfix-interop/nochunking/smtpd' },
];

describe.each(listeners)('Postfix smtpd, $name', ({ hostPort, chunking, syslog }) => {
  const host = hostOf(hostPort);
  const said = (reply: string, stage: string): RegExp =>
    new RegExp(`^host ${esc(host)}\\[${esc(host)}\\] said: ${esc(reply)} \\(in reply to ${stage} command\\)$`);

  it('delivers dots, long and 8-bit lines intact; one result per recipient with Postfix\'s replies', async () => {
    const tok = token(chunking ? 'bdat' : 'data');
    const { message, longLine } = trickyMessage(tok);
    const wire = expectedContent(message); // what must reach smtpd after unstuffing
    const t = new Transcript();

    const result = await deliver({ from: 'sender@client.test', to: [ALICE, REJECT, DEFER, BOB], message }, smtpNexthop(hostPort), {
      tls: { level: 'none' },
      heloName: 'client.test',
      onEvent: t.onEvent,
    });
    const why = t.explain(result);

    // --- results, in envelope order
    expect(result.recipients.map((r) => r.recipient), why).toEqual([ALICE, REJECT, DEFER, BOB]);
    const [alice, reject, defer, bob] = result.recipients;

    // Postfix answers BDAT LAST with the octet count it received: "Ok: 5525 bytes queued as ID".
    const okReply = chunking ? /^250 2\.0\.0 Ok: (\d+) bytes queued as ([0-9A-F]+)$/ : /^250 2\.0\.0 Ok: ()queued as ([0-9A-F]+)$/;
    expect(alice?.diagnosticCode, why).toMatch(/^smtp; /);
    const okMatch = okReply.exec(alice?.diagnosticCode?.replace(/^smtp; /, '') ?? '');
    expect(okMatch, `alice's diagnosticCode should be "smtp; " + a reply matching ${okReply}\n${why}`).not.toBeNull();
    const [, receivedOctets, queueId] = okMatch ?? [];
    for (const r of [alice, bob]) {
      expect(r, why).toMatchObject({
        action: 'relayed',
        status: '2.0.0',
        diagnosticCode: alice?.diagnosticCode,
        remoteMta: `dns; ${host}`,
        remoteAddress: host,
        reply: { code: 250 },
      });
      expect(r?.reason, why).toContain(`queued as ${queueId}`);
    }

    const rejectReply = `550 5.1.1 <${REJECT}>: Recipient address rejected: interop: mailbox does not exist`;
    expect(reject, why).toMatchObject({
      action: 'failed',
      status: '5.1.1',
      diagnosticCode: `smtp; ${rejectReply}`,
      remoteMta: `dns; ${host}`,
      reply: { code: 550 },
    });
    expect(reject?.reason, why).toMatch(said(rejectReply, 'RCPT TO'));

    const deferReply = `450 4.2.0 <${DEFER}>: Recipient address rejected: interop: mailbox busy, try again later`;
    expect(defer, why).toMatchObject({
      action: 'delayed',
      status: '4.2.0',
      diagnosticCode: `smtp; ${deferReply}`,
      remoteMta: `dns; ${host}`,
      reply: { code: 450 },
    });
    expect(defer?.reason, why).toMatch(said(deferReply, 'RCPT TO'));

    // --- what the client sent
    const sent = t.sent();
    const mail = sent.find((l) => l.startsWith('MAIL FROM:'));
    expect(mail, why).toMatch(/^MAIL FROM:<sender@client\.test>( |$)/);
    expect(mail, `8-bit body: MAIL FROM should declare BODY=8BITMIME\n${why}`).toMatch(/ BODY=8BITMIME\b/);
    const bdat = sent.filter((l) => l.startsWith('BDAT '));
    if (chunking) {
      expect(bdat.length, `BDAT expected on a CHUNKING server\n${why}`).toBeGreaterThan(0);
      expect(bdat.at(-1), why).toMatch(/^BDAT \d+ LAST$/);
      expect(bdat.slice(0, -1).every((l) => /^BDAT \d+$/.test(l)), why).toBe(true);
      const octets = bdat.reduce((n, l) => n + Number(l.split(' ')[1]), 0);
      expect(Number(receivedOctets), `Postfix's octet count vs the BDAT sizes\n${why}`).toBe(octets);
      expect(octets, `BDAT sizes must add up to the normalized, folded message (no dot-stuffing)\n${why}`).toBe(wire.length);
      expect(sent, why).not.toContain('DATA');
    } else {
      expect(bdat, `no BDAT without CHUNKING\n${why}`).toEqual([]);
      expect(sent, why).toContain('DATA');
    }

    // --- Postfix's side: its per-session command counts
    const disconnect = await waitForPostfixDisconnect(P.postfixLog, queueId ?? '');
    expect(disconnect).toContain(` ${syslog}[`);
    expect(disconnect).toMatch(/ rcpt=2\/4 /);
    if (chunking) {
      expect(disconnect).toMatch(/ bdat=\d+ /);
      expect(disconnect).not.toMatch(/ data=/);
    } else {
      expect(disconnect).toMatch(/ data=1 /);
      expect(disconnect).not.toMatch(/ bdat=/);
    }

    // --- the stored copies (virtual(8) maildirs store LF line ends)
    for (const user of ['alice', 'bob']) {
      const file = await waitForMaildirFile(maildir(user), tok);
      const added = expectStoredCopy(file, message, longLine, `${user}'s maildir file`);
      expect(added).toContain(`Delivered-To: ${user}@example.test\n`);
      expect(added).toContain(`id ${queueId}`);
    }
  });

  for (const { sender, action, status, reply } of [
    { sender: 'data-reject@client.test', action: 'failed', status: '5.7.1', reply: '554 5.7.1 <data-reject@client.test>: Sender address rejected: interop: message content rejected' },
    { sender: 'data-defer@client.test', action: 'delayed', status: '4.7.1', reply: '451 4.7.1 <data-defer@client.test>: Sender address rejected: interop: try again later' },
  ]) {
    it(`end-of-data ${reply.slice(0, 3)} for sender ${sender}: every accepted recipient ${action} ${status}`, async () => {
      const tok = token('eod');
      const t = new Transcript();
      const message = plainMessage(tok, sender);
      const result = await deliver({ from: sender, to: [ALICE, REJECT, BOB], message }, smtpNexthop(hostPort), {
        tls: { level: 'none' },
        heloName: 'client.test',
        onEvent: t.onEvent,
      });
      const why = t.explain(result);
      expect(result.recipients.map((r) => r.recipient), why).toEqual([ALICE, REJECT, BOB]);
      const [alice, reject, bob] = result.recipients;
      for (const r of [alice, bob]) {
        expect(r, why).toMatchObject({ action, status, diagnosticCode: `smtp; ${reply}`, remoteMta: `dns; ${host}` });
        // Postfix's own client says "end of DATA" after the "."; BDAT has no Postfix wording to compare.
        if (!chunking) expect(r?.reason, why).toMatch(said(reply, 'end of DATA'));
        else expect(r?.reason, why).toContain(reply);
      }
      expect(reject, why).toMatchObject({ action: 'failed', status: '5.1.1' });
      expect(t.sent().some((l) => (chunking ? /^BDAT \d+ LAST$/.test(l) : l === 'DATA')), why).toBe(true);
      expect(maildirFilesWith(maildir('alice'), tok)).toEqual([]);
    });
  }
});
