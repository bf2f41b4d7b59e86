import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TestServer } from '../../src/testing/index.js';
import { RawClient, sleep } from './raw-client.js';

describe('scripting errors', () => {
  it('answers 451 when a callback throws, and reports the error', async () => {
    const s = await TestServer.start({
      onRcpt: (a) => {
        if (a === 'boom@x') throw new Error('kaboom\r\nDATA');
        return undefined;
      },
    });
    const c = await RawClient.connect(s);
    await c.readReply();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<boom@x>\r\nRCPT TO:<ok@x>\r\n');
    const r = await c.readReplies(4);
    expect(r[2]).toBe('451 4.3.0 Error: test script failed: kaboom DATA');
    expect(r[3]).toBe('250 2.1.5 Ok');
    expect(s.errors).toHaveLength(1);
    expect((s.errors[0] as Error).message).toBe('kaboom\r\nDATA');
    await s.close();
  });
});

describe('hostile input (property)', () => {
  const servers: TestServer[] = [];
  beforeAll(async () => {
    servers.push(
      await TestServer.start({ hardErrorLimit: 0, maxLineLength: 64 }),
      await TestServer.start({ protocol: 'lmtp', extensions: { pipelining: false, size: 50, auth: ['PLAIN', 'LOGIN', 'SCRAM-SHA-1'] }, users: { u: 'p' } }),
      await TestServer.start({ extensions: { pipelining: false, chunking: true, starttls: true, xforward: ['NAME'] }, faults: [{ step: 'rcpt', action: 'reply', reply: '250 fake', rcpt: 1 }] }),
    );
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  const token = fc.oneof(
    fc.constantFrom(
      'EHLO x\r\n', 'HELO x\r\n', 'LHLO x\r\n', 'MAIL FROM:<a@x>\r\n', 'MAIL FROM:<a@x> SIZE=99999\r\n', 'RCPT TO:<b@x>\r\n',
      'RCPT TO:<"q q"@x> NOTIFY=SUCCESS\r\n', 'DATA\r\n', '.\r\n', '..\r\n', 'BDAT 5\r\n', 'BDAT 0 LAST\r\n', 'BDAT 3 LAST\r\n',
      'BDAT x\r\n', 'RSET\r\n', 'NOOP\r\n', 'QUIT\r\n', 'STARTTLS\r\n', 'AUTH PLAIN\r\n', 'AUTH LOGIN dQ==\r\n', 'AUTH SCRAM-SHA-1 bixuPXUscj1h\r\n',
      '*\r\n', '=\r\n', 'XFORWARD NAME=a\r\n', 'VRFY x\r\n', '\r\n', '\n', '\r', '\x00', '\xff\xfe', 'x'.repeat(100), 'GET / HTTP/1.0\r\n',
    ),
    fc.string({ maxLength: 20 }),
    fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a).toString('latin1')),
  );

  it('never crashes, never reports an internal error, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 2 }), fc.array(token, { maxLength: 40 }), fc.array(fc.nat({ max: 400 }), { maxLength: 5 }), async (which, tokens, cuts) => {
        const s = servers[which]!;
        const wire = Buffer.from(tokens.join(''), 'latin1');
        const c = await RawClient.connect(s);
        let prev = 0;
        for (const cut of [...cuts.map((x) => Math.min(x, wire.length)).sort((a, b) => a - b), wire.length]) {
          if (c.closed) break;
          c.write(wire.subarray(prev, cut));
          prev = cut;
          await sleep(0);
        }
        await sleep(2);
        c.close();
        await c.closedPromise;
        expect(s.errors).toEqual([]);
      }),
      { numRuns: 300 },
    );
    for (const s of servers) {
      const c = await RawClient.connect(s);
      expect(await c.readReply()).toMatch(/^220 /);
      c.close();
      await s.waitForSessions(s.sessions.length);
      expect(s.openConnections).toBe(0);
    }
  });
});
