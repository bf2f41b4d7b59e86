import { afterEach, describe, expect, it } from 'vitest';
import { TestServer, type TestServerOptions } from '../../src/testing/index.js';
import { RawClient, dotStuff, sleep } from './raw-client.js';

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

describe('BDAT (RFC 3030)', () => {
  it('reads chunks spread over many writes, and commands pipelined after the payload', async () => {
    const { s, c } = await start();
    await c.command('EHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 10\r\n0123');
    await sleep(10);
    c.write('4');
    await sleep(10);
    c.write('56789BDAT 5 LAST\r\n\r\n.\r\n');
    await sleep(10);
    c.write('QUIT\r\n');
    expect(await c.readReplies(5)).toEqual([
      '250 2.1.0 Ok',
      '250 2.1.5 Ok',
      '250 2.0.0 10 octets received',
      expect.stringMatching(/^250 2\.0\.0 Ok: queued as /),
      '221 2.0.0 Bye',
    ]);
    const tx = s.transactions[0]!;
    expect(tx).toMatchObject({ method: 'BDAT', bdatChunks: [10, 5], size: 15, complete: true });
    // BDAT content is binary: no dot-unstuffing
    expect(tx.data!.toString()).toBe('0123456789\r\n.\r\n');
    expect(s.sessions[0]!.transcript).toContain('C: <10 octets of message content>');
    expect(s.sessions[0]!.pipeliningViolations).toBe(0);
  });

  it('takes a whole transaction with payloads and the next commands in one write', async () => {
    const { s, c } = await start();
    await c.command('EHLO x');
    const payload = Buffer.from([0, 1, 2, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a, 255]);
    c.write(Buffer.concat([Buffer.from('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 9 LAST\r\n'), payload, Buffer.from('MAIL FROM:<t@x>\r\nRCPT TO:<b@x>\r\nBDAT 0 LAST\r\nQUIT\r\n')]));
    const r = await c.readReplies(7);
    expect(r[6]).toBe('221 2.0.0 Bye');
    expect(s.transactions.map((t) => [t.mailFrom, t.size, t.complete])).toEqual([
      ['s@x', 9, true],
      ['t@x', 0, true],
    ]);
    expect(s.transactions[0]!.data!.equals(payload)).toBe(true);
    expect(s.sessions[0]!.reads).toBe(2);
  });

  it('answers BDAT without valid recipients 554 and still consumes the payload', async () => {
    const { s, c } = await start({ onRcpt: () => '550 5.1.1 no' });
    await c.command('EHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 6\r\nNOOP\r\nBDAT 6 LAST\r\nNOOP\r\nRSET\r\n');
    expect(await c.readReplies(5)).toEqual([
      '250 2.1.0 Ok',
      '550 5.1.1 no',
      '554 5.5.1 Error: no valid recipients',
      '554 5.5.1 Error: no valid recipients',
      '250 2.0.0 Ok',
    ]);
    expect(s.transactions[0]).toMatchObject({ aborted: 'rset', bdatChunks: [] });
    expect(s.sessions[0]!.transcript.filter((l) => l === 'C: NOOP')).toHaveLength(0);
  });

  it('answers BDAT without MAIL 503, and refuses DATA after BDAT', async () => {
    const { c } = await start();
    await c.command('EHLO x');
    c.write('BDAT 4\r\nabcd');
    expect(await c.readReply()).toBe('503 5.5.1 Error: need RCPT command');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 1\r\nzDATA\r\n');
    expect((await c.readReplies(4))[3]).toBe('503 5.5.1 Error: DATA after BDAT');
  });

  it('treats BDAT as unknown without CHUNKING, and closes on a BDAT without a size', async () => {
    const { c } = await start({ extensions: { chunking: false } });
    await c.command('EHLO x');
    expect(await c.command('BDAT 3 LAST')).toBe('502 5.5.2 Error: command not recognized');
    const c2 = await RawClient.connect(server!);
    await c2.readReply();
    server!.configure({ extensions: { chunking: true } });
    const c3 = await RawClient.connect(server!);
    await c3.readReply();
    await c3.command('EHLO x');
    expect(await c3.command('BDAT lots')).toBe('501 5.5.4 Syntax: BDAT count [LAST]');
    await c3.waitClosed();
    c2.close();
  });
});

describe('LMTP (RFC 2033)', () => {
  it('greets as LMTP, wants LHLO, and refuses EHLO/HELO with 500', async () => {
    const { s, c, greeting } = await start({ protocol: 'lmtp' });
    expect(greeting).toBe('220 mx.test.invalid LMTP ready');
    expect(s.protocol).toBe('lmtp');
    expect(await c.command('EHLO x')).toBe('500 5.5.1 Error: command not recognized');
    expect(await c.command('HELO x')).toBe('500 5.5.1 Error: command not recognized');
    expect(await c.command('MAIL FROM:<a@x>')).toBe('503 5.5.1 Error: send LHLO first');
    expect(await c.command('LHLO x')).toMatch(/^250-mx\.test\.invalid\n250-PIPELINING/);
    expect(s.sessions[0]!.heloVerb).toBe('LHLO');
  });

  it('answers each accepted recipient after DATA, in RCPT order', async () => {
    const { s, c } = await start({
      protocol: 'lmtp',
      onRcpt: (a) => (a.startsWith('x') ? '550 5.1.1 unknown' : undefined),
      onData: (tx) => tx.accepted.map((a) => (a.startsWith('full') ? `552 5.2.2 <${a}> over quota` : `250 2.0.0 <${a}> saved`)),
    });
    await c.command('LHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<x@x>\r\nRCPT TO:<full@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await c.readReplies(6);
    c.write(dotStuff('hello'));
    expect(await c.readReplies(3)).toEqual(['250 2.0.0 <a@x> saved', '552 5.2.2 <full@x> over quota', '250 2.0.0 <b@x> saved']);
    expect(await c.quiet(30)).toBe('');
    expect(s.transactions[0]!.replies).toHaveLength(3);
  });

  it('answers each accepted recipient after BDAT LAST, and uses defaults', async () => {
    const { c } = await start({ protocol: 'lmtp' });
    await c.command('LHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde');
    expect(await c.readReplies(6)).toEqual([
      '250 2.1.0 Ok',
      '250 2.1.5 Ok',
      '250 2.1.5 Ok',
      '250 2.0.0 3 octets received',
      '250 2.0.0 <a@x> Ok',
      '250 2.0.0 <b@x> Ok',
    ]);
  });

  it('applies a single onData string to every recipient', async () => {
    const { c } = await start({ protocol: 'lmtp', onData: () => '451 4.3.0 later' });
    await c.command('LHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await c.readReplies(4);
    c.write('.\r\n');
    expect(await c.readReplies(2)).toEqual(['451 4.3.0 later', '451 4.3.0 later']);
  });

  it('fails DATA with no valid recipient with 503 (RFC 2033 §4.2)', async () => {
    const { c } = await start({ protocol: 'lmtp', onRcpt: () => '550 5.1.1 no' });
    await c.command('LHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n');
    expect((await c.readReplies(3))[2]).toBe('503 5.5.1 Error: no valid recipients');
  });

  it('listens on a unix socket with a unix: destination', async () => {
    const path = `/tmp/mailwire-testing-${process.pid}-lmtp.sock`;
    server = await TestServer.start({ protocol: 'lmtp', path });
    expect(server.destination).toBe(`unix:${path}`);
    expect(server.port).toBeUndefined();
    const c = await RawClient.connect(server);
    expect(await c.readReply()).toMatch(/^220 /);
    expect(await c.command('LHLO x')).toMatch(/^250-/);
    expect(await c.command('QUIT')).toBe('221 2.0.0 Bye');
    await server.waitForSessions(1);
    expect(server.sessions[0]!.remoteAddress).toBeUndefined();
  });
});
