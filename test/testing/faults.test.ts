import { afterEach, describe, expect, it } from 'vitest';
import { TestServer, type Fault, type TestServerOptions } from '../../src/testing/index.js';
import { RawClient, dotStuff, sleep } from './raw-client.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function boot(faults: Fault[], options: TestServerOptions = {}): Promise<TestServer> {
  server = await TestServer.start({ ...options, faults });
  return server;
}

/** Connect, EHLO, MAIL and RCPT a@x, b@x, c@x pipelined, DATA: returns the replies read. */
async function upToData(s: TestServer, n = 5): Promise<{ c: RawClient; replies: string[] }> {
  const c = await RawClient.connect(s);
  await c.readReply();
  await c.command('EHLO x');
  c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n');
  const replies: string[] = [];
  try {
    for (let i = 0; i < n; i++) replies.push(await c.readReply(500));
  } catch {
    // fewer replies: the fault cut them
  }
  return { c, replies };
}

describe('drop', () => {
  it('at connect: closes without a greeting', async () => {
    const s = await boot([{ step: 'connect', action: 'drop' }]);
    const c = await RawClient.connect(s);
    await c.waitClosed();
    expect(c.received.length).toBe(0);
    await s.waitForSessions(1);
    expect(s.sessions[0]!.closedBy).toBe('fault');
  });

  it('at the second RCPT: earlier replies arrive, then the connection is gone', async () => {
    const s = await boot([{ step: 'rcpt', action: 'drop', rcpt: 1 }]);
    const { c, replies } = await upToData(s);
    expect(replies).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok']);
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.transactions[0]).toMatchObject({ aborted: 'disconnect', accepted: ['a@x'] });
    expect(s.transactions[0]!.rcpts.map((r) => r.reply)).toEqual(['250 2.1.5 Ok', '']);
  });

  it('at data-transfer: after some of the body has arrived', async () => {
    const s = await boot([{ step: 'data-transfer', action: 'drop' }]);
    const { c, replies } = await upToData(s);
    expect(replies[4]).toMatch(/^354/);
    c.write('Subject: part one\r\n');
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.transactions[0]).toMatchObject({ aborted: 'disconnect', complete: false });
  });

  it('at dot: the message is received but never answered', async () => {
    const s = await boot([{ step: 'dot', action: 'drop' }]);
    const { c } = await upToData(s);
    c.write(dotStuff('hi'));
    await c.waitClosed();
    expect(c.unread).toBe('');
    await s.waitForSessions(1);
    expect(s.transactions[0]).toMatchObject({ complete: false, aborted: 'disconnect', size: 4 });
  });
});

describe('stall', () => {
  it('at MAIL: nothing more is written, input is still read, close() ends it', async () => {
    const s = await boot([{ step: 'mail', action: 'stall' }], { idleTimeout: 50 });
    const { c, replies } = await upToData(s);
    expect(replies).toEqual([]);
    c.write('NOOP\r\n'.repeat(1000));
    // the idle timeout does not apply to a stalled session
    expect(await c.quiet(150)).toBe('');
    expect(c.closed).toBe(false);
    await s.close();
    await c.waitClosed();
    expect(s.sessions[0]!.closedBy).toBe('server');
    server = undefined;
  });

  it('at dot in LMTP for the second recipient: the first reply arrives', async () => {
    const s = await boot([{ step: 'dot', action: 'stall', rcpt: 'b@x' }], { protocol: 'lmtp' });
    const c = await RawClient.connect(s);
    await c.readReply();
    await c.command('LHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nRCPT TO:<c@x>\r\nDATA\r\n');
    await c.readReplies(5);
    c.write('.\r\n');
    expect(await c.readReply()).toBe('250 2.0.0 <a@x> Ok');
    expect(await c.quiet(50)).toBe('');
    expect(s.transactions[0]!.replies).toEqual(['250 2.0.0 <a@x> Ok']);
  });

  it('at connect: no greeting at all', async () => {
    const s = await boot([{ step: 'connect', action: 'stall' }]);
    const c = await RawClient.connect(s);
    c.write('EHLO x\r\n');
    expect(await c.quiet(50)).toBe('');
  });
});

describe('garbage', () => {
  it('at EHLO: sends the default garbage and closes', async () => {
    const s = await boot([{ step: 'ehlo', action: 'garbage' }]);
    const c = await RawClient.connect(s);
    await c.readReply();
    c.write('EHLO x\r\n');
    await c.waitClosed();
    expect(c.received.subarray(c.received.indexOf('\r\n') + 2)).toEqual(Buffer.from('\x00\xff this is not an SMTP reply\r\n', 'latin1'));
    await s.waitForSessions(1);
    expect(s.sessions[0]!.closedBy).toBe('fault');
  });

  it('at RCPT with closeAfter: false: custom garbage, the session goes on', async () => {
    const s = await boot([{ step: 'rcpt', action: 'garbage', garbage: '2x0 what\r\n', rcpt: 0, closeAfter: false }]);
    const { c, replies } = await upToData(s, 2);
    expect(replies).toEqual(['250 2.1.0 Ok', '2x0 what']);
    expect(await c.readReplies(3)).toEqual(['250 2.1.5 Ok', '250 2.1.5 Ok', expect.stringMatching(/^354/)]);
    expect(s.transactions[0]!.accepted).toEqual(['b@x', 'c@x']);
  });
});

describe('reply', () => {
  it('at a RCPT by address: that recipient is refused, the others accepted', async () => {
    const s = await boot([{ step: 'rcpt', action: 'reply', rcpt: '<B@x>', reply: '450 4.2.1 mailbox busy' }]);
    const { replies } = await upToData(s);
    expect(replies.slice(1, 4)).toEqual(['250 2.1.5 Ok', '450 4.2.1 mailbox busy', '250 2.1.5 Ok']);
    expect(s.transactions[0]!.accepted).toEqual(['a@x', 'c@x']);
  });

  it('a 421 closes the connection after writing it (as Postfix)', async () => {
    const s = await boot([{ step: 'rcpt', action: 'reply', rcpt: 1, reply: '421 4.7.0 bye now' }]);
    const { c, replies } = await upToData(s);
    expect(replies).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok', '421 4.7.0 bye now']);
    await c.waitClosed();
    await s.waitForSessions(1);
    expect(s.sessions[0]!.closedBy).toBe('fault');
  });

  it('a multi-line reply to EHLO governs what the session then allows', async () => {
    const s = await boot([{ step: 'ehlo', action: 'reply', reply: '250-mx\n250 8BITMIME' }]);
    const c = await RawClient.connect(s);
    await c.readReply();
    expect(await c.command('EHLO x')).toBe('250-mx\n250 8BITMIME');
    expect(s.sessions[0]!.announced).toEqual(['8BITMIME']);
    // no PIPELINING announced now: pipelining is refused
    c.write('MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n');
    expect(await c.readReplies(2)).toEqual(['503 5.5.0 <MAIL>: Improper use of SMTP command pipelining', '503 5.5.1 Error: need MAIL command']);
  });

  it('at DATA: a refusal instead of 354 means no body is read', async () => {
    const s = await boot([{ step: 'data', action: 'reply', reply: '451 4.3.0 not now' }]);
    const { c, replies } = await upToData(s);
    expect(replies[4]).toBe('451 4.3.0 not now');
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
    expect(s.transactions[0]!.dataReply).toBe('451 4.3.0 not now');
  });

  it('at dot, only in the second session, only once', async () => {
    const s = await boot([{ step: 'dot', action: 'reply', reply: '554 5.7.1 rejected', session: 1, times: 1 }]);
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { c } = await upToData(s);
      c.write('.\r\n');
      outcomes.push((await c.readReply()).slice(0, 3));
      c.close();
    }
    expect(outcomes).toEqual(['250', '554', '250']);
  });

  it('at bdat for chunk 1, and at data-transfer: an early reply in place of the end-of-data reply', async () => {
    const s = await boot([
      { step: 'bdat', action: 'reply', chunk: 1, reply: '452 4.3.1 out of space' },
      { step: 'data-transfer', action: 'reply', chunk: 2, reply: '250 2.0.0 early' },
    ]);
    const c = await RawClient.connect(s);
    await c.readReply();
    await c.command('EHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nBDAT 1\r\naBDAT 1\r\nb');
    expect(await c.readReplies(4)).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok', '250 2.0.0 1 octets received', '452 4.3.1 out of space']);
    c.write('BDAT 2 LAST\r\nc');
    expect(await c.readReply()).toBe('250 2.0.0 early');
    c.write('d');
    expect(await c.quiet(50)).toBe('');
    expect(s.transactions[0]).toMatchObject({ complete: true, replies: ['250 2.0.0 early'], bdatChunks: [1, 1, 2], size: 4 });
    expect(await c.command('NOOP')).toBe('250 2.0.0 Ok');
  });

  it('at data-transfer in LMTP: one early reply per accepted recipient', async () => {
    const s = await boot([{ step: 'data-transfer', action: 'reply', reply: '452 4.2.2 over quota' }], { protocol: 'lmtp' });
    const c = await RawClient.connect(s);
    await c.readReply();
    await c.command('LHLO x');
    c.write('MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await c.readReplies(4);
    c.write('Subject: x\r\n');
    expect(await c.readReplies(2)).toEqual(['452 4.2.2 over quota', '452 4.2.2 over quota']);
    c.write('\r\nbody\r\n.\r\n');
    expect(await c.command('MAIL FROM:<t@x>')).toBe('250 2.1.0 Ok');
    expect(s.transactions[0]).toMatchObject({ complete: true, size: 20 });
    expect(s.transactions[0]!.replies).toHaveLength(2);
  });

  it('at greeting, QUIT, RSET, NOOP, HELO, MAIL', async () => {
    const s = await boot([
      { step: 'connect', action: 'reply', reply: '220-hello\n220 there' },
      { step: 'helo', action: 'reply', reply: '250 hi' },
      { step: 'mail', action: 'reply', reply: '452 4.3.1 full' },
      { step: 'noop', action: 'reply', reply: '250 noop' },
      { step: 'rset', action: 'reply', reply: '250 rset' },
      { step: 'quit', action: 'reply', reply: '221 ciao' },
    ]);
    const c = await RawClient.connect(s);
    expect(await c.readReply()).toBe('220-hello\n220 there');
    expect(await c.command('HELO x')).toBe('250 hi');
    expect(await c.command('MAIL FROM:<a@x>')).toBe('452 4.3.1 full');
    expect(await c.command('NOOP')).toBe('250 noop');
    expect(await c.command('RSET')).toBe('250 rset');
    expect(await c.command('QUIT')).toBe('221 ciao');
    await c.waitClosed();
    expect(s.transactions).toHaveLength(0);
  });
});

describe('fault bookkeeping', () => {
  it('counts times across sessions, and reset() starts over', async () => {
    const s = await boot([{ step: 'connect', action: 'reply', reply: '421 4.3.2 busy', times: 1 }]);
    const greet = async (): Promise<string> => {
      const c = await RawClient.connect(s);
      const r = await c.readReply();
      c.close();
      return r;
    };
    expect(await greet()).toBe('421 4.3.2 busy');
    expect(await greet()).toMatch(/^220 /);
    await s.waitForSessions(2);
    s.reset();
    expect(s.sessions).toHaveLength(0);
    expect(await greet()).toBe('421 4.3.2 busy');
    await s.waitForSessions(1);
    expect(s.sessions).toHaveLength(1);
    expect(s.sessions[0]!.index).toBe(0);
  });

  it('rejects unknown steps and actions', async () => {
    await expect(TestServer.start({ faults: [{ step: 'helo2' as 'helo', action: 'drop' }] })).rejects.toThrow(/unknown fault step/);
    await expect(TestServer.start({ faults: [{ step: 'mail', action: 'reply' }] })).rejects.toThrow(/needs a non-empty "reply"/);
  });

  it('after a drop, later pipelined commands get nothing', async () => {
    const s = await boot([{ step: 'mail', action: 'drop' }]);
    const c = await RawClient.connect(s);
    await c.readReply();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nNOOP\r\n');
    await c.waitClosed();
    expect(c.unread.startsWith('250-mx.test.invalid')).toBe(true);
    expect(c.unread).not.toContain('2.1.5');
    await sleep(1);
  });
});
