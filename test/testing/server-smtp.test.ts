import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { TestServer, type TestServerOptions } from '../../src/testing/index.js';
import { RawClient, dotStuff } from './raw-client.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options?: TestServerOptions): Promise<{ s: TestServer; c: RawClient; greeting: string }> {
  server = await TestServer.start(options);
  const c = await RawClient.connect(server);
  const greeting = await c.readReply();
  return { s: server, c, greeting };
}

describe('greeting and EHLO', () => {
  it('greets and lists the default extensions in Postfix order', async () => {
    const { s, c, greeting } = await start();
    expect(greeting).toBe('220 mx.test.invalid ESMTP mailwire-testing');
    expect(s.destination).toBe(`[127.0.0.1]:${s.port}`);
    expect(await c.command('EHLO client.example')).toBe(
      ['250-mx.test.invalid', '250-PIPELINING', '250-ENHANCEDSTATUSCODES', '250-8BITMIME', '250-DSN', '250-SMTPUTF8', '250 CHUNKING'].join('\n'),
    );
    expect(s.sessions[0]).toMatchObject({ helo: 'client.example', heloVerb: 'EHLO', tls: false });
    expect(s.sessions[0]!.announced).toEqual(['PIPELINING', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING']);
  });

  it('announces every extension in a realistic order, and extra lines as-is', async () => {
    const { c } = await start({
      hostname: 'mx.example.test',
      extensions: { size: 1000, starttls: true, auth: ['plain', 'LOGIN'], xforward: ['NAME', 'ADDR'], extra: ['REQUIRETLS', 'X-FOO bar'] },
    });
    expect((await c.command('ehlo me')).split('\n')).toEqual([
      '250-mx.example.test',
      '250-PIPELINING',
      '250-SIZE 1000',
      '250-STARTTLS',
      '250-AUTH PLAIN LOGIN',
      '250-XFORWARD NAME ADDR',
      '250-ENHANCEDSTATUSCODES',
      '250-8BITMIME',
      '250-DSN',
      '250-SMTPUTF8',
      '250-CHUNKING',
      '250-REQUIRETLS',
      '250 X-FOO bar',
    ]);
  });

  it('can hide every extension', async () => {
    const { c } = await start({
      extensions: { pipelining: false, chunking: false, eightBitMime: false, smtputf8: false, dsn: false, enhancedStatusCodes: false },
    });
    expect(await c.command('EHLO x')).toBe('250 mx.test.invalid');
    // Without ENHANCEDSTATUSCODES the server's own replies carry no x.y.z (as Postfix).
    expect(await c.command('MAIL FROM:<a@x>')).toBe('250 Ok');
  });

  it("ends the EHLO reply with a bare '250 ' line in 'bare-last-line' style (smtp-sink)", async () => {
    const { c } = await start({ ehloStyle: 'bare-last-line', extensions: { chunking: false, dsn: false, smtputf8: false, eightBitMime: false } });
    expect(await c.command('EHLO x')).toBe('250-mx.test.invalid\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250 ');
  });

  it('is a HELO-only server with ehlo: false, and HELO announces nothing', async () => {
    const { s, c } = await start({ ehlo: false });
    expect(await c.command('EHLO x')).toBe('502 5.5.2 Error: command not recognized');
    expect(await c.command('HELO x')).toBe('250 mx.test.invalid');
    expect(s.sessions[0]).toMatchObject({ heloVerb: 'HELO', announced: [] });
    expect(await c.command('MAIL FROM:<a@x> BODY=8BITMIME')).toBe('555 5.5.4 Unsupported option: BODY=8BITMIME');
  });

  it('uses a custom multi-line greeting', async () => {
    const { greeting } = await start({ greeting: '220-first line\n220 second line' });
    expect(greeting).toBe('220-first line\n220 second line');
  });

  it('answers everything but QUIT with 503 after a 554 greeting (RFC 5321 §3.1)', async () => {
    const { c, greeting } = await start({ greeting: '554 5.7.1 go away' });
    expect(greeting).toBe('554 5.7.1 go away');
    expect(await c.command('EHLO x')).toMatch(/^503 /);
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye');
    await c.waitClosed();
  });

  it('closes after a 421 greeting', async () => {
    const { s, c, greeting } = await start({ greeting: '421 4.3.2 busy' });
    expect(greeting).toBe('421 4.3.2 busy');
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.sessions[0]!.closedBy).toBe('server');
  });
});

describe('a transaction', () => {
  it('answers MAIL, RCPT, DATA pipelined in one write, in order and in one write', async () => {
    const { s, c } = await start();
    await c.command('EHLO x');
    const before = c.dataEvents;
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x\r\nDATA\r\n');
    expect(await c.readReplies(4)).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok', '250 2.1.5 Ok', '354 End data with <CR><LF>.<CR><LF>']);
    expect(c.dataEvents - before).toBe(1);
    c.write(dotStuff('Subject: hi\r\n\r\n.leading dot\r\n..two\r\nend'));
    const reply = await c.readReply();
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{10}$/);
    const tx = s.transactions[0]!;
    expect(tx).toMatchObject({
      session: 0,
      mailFrom: 's@x',
      mailParams: [],
      accepted: ['a@x', 'b@x'],
      method: 'DATA',
      complete: true,
      replies: [reply],
    });
    expect(tx.rcpts[1]).toEqual({ address: 'b@x', params: ['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;b@x'], reply: '250 2.1.5 Ok' });
    const message = 'Subject: hi\r\n\r\n.leading dot\r\n..two\r\nend\r\n';
    expect(tx.data!.toString()).toBe(message);
    expect(tx.size).toBe(message.length);
    expect(tx.sha256).toBe(createHash('sha256').update(message).digest('hex'));
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye');
    await c.waitClosed();
    await s.waitForSessions(1);
    const rec = s.sessions[0]!;
    // EHLO, the pipelined group, QUIT: the read with the body carries no command
    expect(rec).toMatchObject({ quit: true, closedBy: 'server', pipeliningViolations: 0, reads: 3 });
    expect(rec.transcript).toContain(`C: <${message.length} octets of message content>`);
    expect(rec.transcript).not.toContain('C: Subject: hi');
  });

  it('accepts QUIT pipelined after the end of data, and a message in the same write as its commands', async () => {
    const { s, c } = await start();
    await c.command('EHLO x');
    c.write('MAIL FROM:<>\r\nRCPT TO:<a@x>\r\nDATA\r\n');
    await c.readReplies(3);
    c.write(Buffer.concat([dotStuff('body'), Buffer.from('QUIT\r\n')]));
    expect(await c.readReplies(2)).toEqual([expect.stringMatching(/^250 2\.0\.0 Ok/), '221 2.0.0 Bye']);
    await c.waitClosed();
    expect(s.transactions[0]).toMatchObject({ mailFrom: '', data: Buffer.from('body\r\n'), complete: true });
  });

  it('keeps the bytes of an 8-bit body and of many chunks', async () => {
    const { s, c } = await start();
    await c.command('EHLO x');
    c.write('MAIL FROM:<s@x> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<j\u00f6rg@x>\r\nDATA\r\n');
    expect(await c.readReplies(3)).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok', expect.stringMatching(/^354/)]);
    const body = Buffer.concat([Buffer.from([0xc3, 0xa4, 0x00, 0xff, 0x0d, 0x0a]), Buffer.from('x'.repeat(100_000) + '\r\n')]);
    const wire = dotStuff(body);
    for (let i = 0; i < wire.length; i += 777) c.write(wire.subarray(i, i + 777));
    await c.readReply();
    expect(s.transactions[0]!.data!.equals(body)).toBe(true);
    expect(s.transactions[0]!.accepted).toEqual(['j\u00f6rg@x']);
  });

  it('runs several transactions on one connection, RSET discarding one', async () => {
    const { s, c } = await start();
    await c.command('EHLO x');
    c.write('MAIL FROM:<1@x>\r\nRCPT TO:<a@x>\r\nRSET\r\nMAIL FROM:<2@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    expect(await c.readReplies(6)).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok', '250 2.0.0 Ok', '250 2.1.0 Ok', '250 2.1.5 Ok', expect.stringMatching(/^354/)]);
    c.write('.\r\n');
    await c.readReply();
    c.write('MAIL FROM:<3@x>\r\nQUIT\r\n');
    await c.readReplies(2);
    await s.waitForSessions(1);
    expect(s.transactions.map((t) => [t.index, t.mailFrom, t.complete, t.aborted])).toEqual([
      [0, '1@x', false, 'rset'],
      [1, '2@x', true, undefined],
      [2, '3@x', false, 'quit'],
    ]);
    expect(s.transactions[1]!.size).toBe(0);
  });

  it('records a transaction cut by a disconnect', async () => {
    const { s, c } = await start();
    c.write('EHLO x\r\n');
    await c.readReply();
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n');
    await c.readReplies(3);
    c.write('partial body');
    await new Promise((r) => setTimeout(r, 30));
    c.close();
    await s.waitForSessions(1);
    expect(s.transactions[0]).toMatchObject({ aborted: 'disconnect', complete: false, size: 12 });
    expect(s.sessions[0]).toMatchObject({ closedBy: 'client', quit: false });
    await s.waitForTransactions(1);
  });
});

describe('scripting', () => {
  it('accepts and rejects per recipient, and answers end of data as told', async () => {
    const seen: unknown[] = [];
    const { s, c } = await start({
      onMail: (from, params, ctx) => {
        seen.push(['mail', from, params, ctx]);
        return undefined;
      },
      onRcpt: (address, _params, ctx) => {
        seen.push(['rcpt', address, ctx.rcptIndex, ctx.accepted]);
        if (address.startsWith('bad')) return '550 5.1.1 <' + address + '>: Recipient address rejected: User unknown';
        if (address.startsWith('later')) return '450 4.2.0 try later';
        return undefined;
      },
      onData: (tx, ctx) => {
        seen.push(['data', tx.data?.toString(), ctx.accepted]);
        return '554 5.7.1 content rejected';
      },
    });
    await c.command('EHLO x');
    c.write('MAIL FROM:<s@x> BODY=7BIT\r\nRCPT TO:<ok@x>\r\nRCPT TO:<bad@x>\r\nRCPT TO:<later@x>\r\nRCPT TO:<ok2@x>\r\nDATA\r\n');
    const r = await c.readReplies(6);
    expect(r.slice(1, 5)).toEqual(['250 2.1.5 Ok', '550 5.1.1 <bad@x>: Recipient address rejected: User unknown', '450 4.2.0 try later', '250 2.1.5 Ok']);
    c.write('hello\r\n.\r\n');
    expect(await c.readReply()).toBe('554 5.7.1 content rejected');
    const tx = s.transactions[0]!;
    expect(tx.accepted).toEqual(['ok@x', 'ok2@x']);
    expect(tx.rcpts.map((x) => x.reply.slice(0, 3))).toEqual(['250', '550', '450', '250']);
    expect(tx.replies).toEqual(['554 5.7.1 content rejected']);
    expect(seen).toEqual([
      ['mail', 's@x', ['BODY=7BIT'], { session: 0, transaction: 0, accepted: [] }],
      ['rcpt', 'ok@x', 0, []],
      ['rcpt', 'bad@x', 1, ['ok@x']],
      ['rcpt', 'later@x', 2, ['ok@x']],
      ['rcpt', 'ok2@x', 3, ['ok@x']],
      ['data', 'hello\r\n', ['ok@x', 'ok2@x']],
    ]);
  });

  it('does not start a transaction when MAIL is refused', async () => {
    const { s, c } = await start({ onMail: (from) => (from === 'spam@x' ? '553 5.7.1 no' : undefined) });
    await c.command('EHLO x');
    expect(await c.command('MAIL FROM:<spam@x>')).toBe('553 5.7.1 no');
    expect(await c.command('RCPT TO:<a@x>')).toBe('503 5.5.1 Error: need MAIL command');
    expect(s.transactions).toHaveLength(0);
  });

  it('can be reconfigured between tests', async () => {
    const { s, c } = await start();
    s.configure({ onRcpt: () => '550 5.1.1 nope', extensions: { size: 500 } });
    c.close();
    const c2 = await RawClient.connect(s);
    await c2.readReply();
    expect(await c2.command('EHLO x')).toContain('250-SIZE 500');
    await c2.command('MAIL FROM:<a@x>');
    expect(await c2.command('RCPT TO:<b@x>')).toBe('550 5.1.1 nope');
  });
});

describe('protocol errors and limits', () => {
  it('answers bad sequences and syntax as Postfix does', async () => {
    const { c } = await start();
    expect(await c.command('RCPT TO:<a@x>')).toBe('503 5.5.1 Error: need MAIL command');
    expect(await c.command('DATA')).toBe('503 5.5.1 Error: need RCPT command');
    expect(await c.command('EHLO')).toBe('501 5.5.4 Syntax: EHLO hostname');
    expect(await c.command('EHLO x')).toMatch(/^250-/);
    expect(await c.command('MAIL FROM:a@x>')).toBe('250 2.1.0 Ok');
    expect(await c.command('MAIL FROM:<b@x>')).toBe('503 5.5.1 Error: nested MAIL command');
    expect(await c.command('RCPT TO:<>')).toBe('501 5.1.3 Bad recipient address syntax');
    expect(await c.command('RCPT <a@x>')).toBe('501 5.5.4 Syntax: RCPT TO:<address>');
    expect(await c.command('DATA')).toBe('554 5.5.1 Error: no valid recipients');
    expect(await c.command('DATA x')).toBe('501 5.5.4 Syntax: DATA');
    expect(await c.command('RSET x')).toBe('501 5.5.4 Syntax: RSET');
    expect(await c.command('rset')).toBe('250 2.0.0 Ok');
    expect(await c.command('NoOp')).toBe('250 2.0.0 Ok');
    expect(await c.command('VRFY postmaster')).toBe('252 2.0.0 postmaster');
    expect(await c.command('HELP')).toBe('502 5.5.2 Error: command not recognized');
    expect(await c.command('')).toBe('500 5.5.2 Error: bad syntax');
    expect(await c.command('STARTTLS')).toBe('502 5.5.1 Error: command not implemented');
    expect(await c.command('AUTH PLAIN')).toBe('503 5.5.1 Error: authentication not enabled');
    expect(await c.command('XFORWARD NAME=x')).toBe('550 5.7.0 Error: insufficient authorization');
  });

  it('refuses unannounced or malformed parameters', async () => {
    const { c } = await start({ extensions: { dsn: false } });
    await c.command('EHLO x');
    expect(await c.command('MAIL FROM:<a@x> RET=FULL')).toBe('555 5.5.4 Unsupported option: RET=FULL');
    expect(await c.command('MAIL FROM:<a@x> SIZE=10')).toBe('555 5.5.4 Unsupported option: SIZE=10');
    expect(await c.command('MAIL FROM:<j\u00f6rg@x>')).toBe('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
    expect(await c.command('MAIL FROM:<a@x>')).toBe('250 2.1.0 Ok');
    expect(await c.command('RCPT TO:<b@x> NOTIFY=NEVER')).toBe('555 5.5.4 Unsupported option: NOTIFY=NEVER');
    expect(await c.command('RCPT TO:<j\u00f6rg@x>')).toBe('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
  });

  it('answers an overlong line with 500 and goes on', async () => {
    const { s, c } = await start();
    expect(await c.command('NOOP ' + 'x'.repeat(5000))).toBe('500 5.5.0 Error: line too long');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
    // a flood without line ends is discarded as it arrives
    for (let i = 0; i < 200; i++) c.write('y'.repeat(10_000));
    expect(await c.command('')).toBe('500 5.5.0 Error: line too long');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
    expect(s.sessions[0]!.transcript.filter((l) => l.startsWith('C: <line too long>'))).toHaveLength(2);
  });

  it('refuses recipients over maxRecipients with 452 4.5.3', async () => {
    const { s, c } = await start({ maxRecipients: 2 });
    await c.command('EHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n');
    const r = await c.readReplies(5);
    expect(r[3]).toBe('452 4.5.3 Error: too many recipients');
    expect(r[4]).toMatch(/^354/);
    expect(s.sessions[0]!.errors).toBe(0);
  });

  it('disconnects after 20 errors (smtpd_hard_error_limit)', async () => {
    const { s, c } = await start({ onRcpt: () => '550 5.1.1 unknown' });
    await c.command('EHLO x');
    let cmds = 'MAIL FROM:<s@x>\r\n';
    for (let i = 0; i < 25; i++) cmds += `RCPT TO:<u${i}@x>\r\n`;
    c.write(cmds);
    const r = await c.readReplies(22);
    expect(r.slice(1, 21).every((x) => x === '550 5.1.1 unknown')).toBe(true);
    expect(r[21]).toBe('421 4.7.0 mx.test.invalid Error: too many errors');
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.sessions[0]).toMatchObject({ closedBy: 'server', errors: 20 });
    expect(s.transactions[0]!.rcpts).toHaveLength(20);
  });

  it('counts junk commands beyond smtpd_junk_command_limit as errors', async () => {
    const { c } = await start({ junkCommandLimit: 3, hardErrorLimit: 2 });
    c.write('NOOP\r\n'.repeat(6));
    const r = await c.readReplies(6);
    expect(r.slice(0, 5).every((x) => x === '250 2.0.0 Ok')).toBe(true);
    expect(r[5]).toMatch(/^421 4\.7\.0 .*too many errors/);
  });

  it('says goodbye to CONNECT/GET/POST', async () => {
    const { c } = await start();
    expect(await c.command('GET / HTTP/1.0')).toBe('221 2.7.0 Error: I can break rules, too. Goodbye.');
    await c.waitClosed();
  });

  it('times out an idle client with 421 (smtpd_timeout)', async () => {
    const { s, c } = await start({ idleTimeout: 100 });
    expect(await c.readReply(2000)).toBe('421 4.4.2 mx.test.invalid Error: timeout exceeded');
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.sessions[0]!.closedBy).toBe('server');
  });
});

describe('SIZE', () => {
  it('refuses MAIL SIZE= over the limit and data over the limit with 552 5.3.4', async () => {
    const { s, c } = await start({ extensions: { size: 100 } });
    expect(await c.command('EHLO x')).toContain('250-SIZE 100');
    expect(await c.command('MAIL FROM:<a@x> SIZE=101')).toBe('552 5.3.4 Message size exceeds fixed limit');
    expect(await c.command('MAIL FROM:<a@x> SIZE=100')).toBe('250 2.1.0 Ok');
    await c.command('RCPT TO:<b@x>');
    await c.command('DATA');
    c.write(dotStuff('x'.repeat(200)));
    expect(await c.readReply()).toBe('552 5.3.4 Error: message file too big');
    expect(s.transactions[0]).toMatchObject({ size: 202, complete: true });
    expect(s.transactions[0]!.data).toBeUndefined();
    // and with BDAT
    await c.command('MAIL FROM:<a@x>');
    await c.command('RCPT TO:<b@x>');
    c.write('BDAT 150 LAST\r\n' + 'y'.repeat(150));
    expect(await c.readReply()).toBe('552 5.3.4 Error: message file too big');
  });
});
