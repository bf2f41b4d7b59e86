import { afterEach, describe, expect, it } from 'vitest';
import { TestServer, type TestServerOptions } from '../../src/testing/index.js';
import { RawClient, dotStuff } from './raw-client.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options?: TestServerOptions): Promise<{ s: TestServer; c: RawClient }> {
  server = await TestServer.start(options);
  const c = await RawClient.connect(server);
  await c.readReply();
  return { s: server, c };
}

describe('reject_unauth_pipelining', () => {
  it('answers a command followed by unread input 503 when PIPELINING was not announced', async () => {
    const { s, c } = await start({ extensions: { pipelining: false } });
    expect(await c.command('EHLO x')).not.toContain('PIPELINING');
    c.write('MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n');
    expect(await c.readReplies(2)).toEqual([
      '503 5.5.0 <MAIL>: Improper use of SMTP command pipelining',
      '503 5.5.1 Error: need MAIL command',
    ]);
    // lock-step is fine
    expect(await c.command('MAIL FROM:<a@x>')).toBe('250 2.1.0 Ok');
    c.write('RCPT TO:<b@x>\r\nDATA\r\n');
    expect(await c.readReplies(2)).toEqual(['503 5.5.0 <RCPT>: Improper use of SMTP command pipelining', '554 5.5.1 Error: no valid recipients']);
    expect(s.sessions[0]!.pipeliningViolations).toBe(2);
  });

  it('refuses a message whose end of data came with the next command (QUIT before the reply)', async () => {
    const { s, c } = await start({ extensions: { pipelining: false } });
    await c.command('EHLO x');
    await c.command('MAIL FROM:<a@x>');
    await c.command('RCPT TO:<b@x>');
    expect(await c.command('DATA')).toMatch(/^354/);
    c.write(Buffer.concat([dotStuff('x'), Buffer.from('QUIT\r\n')]));
    expect(await c.readReplies(2)).toEqual(['503 5.5.0 <END-OF-MESSAGE>: Improper use of SMTP command pipelining', '221 2.0.0 Bye']);
    expect(s.sessions[0]!.pipeliningViolations).toBe(1);
  });

  it('refuses a BDAT chunk followed by the next BDAT without waiting', async () => {
    const { s, c } = await start({ extensions: { pipelining: false } });
    await c.command('EHLO x');
    await c.command('MAIL FROM:<a@x>');
    await c.command('RCPT TO:<b@x>');
    c.write('BDAT 1\r\naBDAT 1 LAST\r\nb');
    expect(await c.readReplies(2)).toEqual([
      '503 5.5.0 <BDAT>: Improper use of SMTP command pipelining',
      '503 5.5.0 <BDAT>: Improper use of SMTP command pipelining',
    ]);
    expect(s.transactions[0]!.complete).toBe(false);
  });

  it('only counts violations with rejectUnauthPipelining: false', async () => {
    const { s, c } = await start({ extensions: { pipelining: false }, rejectUnauthPipelining: false });
    await c.command('EHLO x');
    c.write('MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    expect(await c.readReplies(3)).toEqual(['250 2.1.0 Ok', '250 2.1.5 Ok', expect.stringMatching(/^354/)]);
    expect(s.sessions[0]!.pipeliningViolations).toBe(2);
  });

  it('counts, but answers, commands that must end a group (RFC 2920 §3.1) even with PIPELINING', async () => {
    const { s, c } = await start();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nbody\r\n.\r\n');
    const r = await c.readReplies(5);
    expect(r[4]).toMatch(/^250 2\.0\.0 Ok: queued/);
    expect(s.sessions[0]!.pipeliningViolations).toBe(2); // after EHLO, and after DATA
    expect(s.sessions[0]!.reads).toBe(1);
  });

  it('needs no 503 for a correct lock-step client (reads = commands)', async () => {
    const { s, c } = await start({ extensions: { pipelining: false } });
    for (const cmd of ['EHLO x', 'MAIL FROM:<a@x>', 'RCPT TO:<b@x>', 'DATA']) await c.command(cmd);
    c.write(dotStuff('m'));
    await c.readReply();
    await c.command('QUIT');
    await s.waitForSessions(1);
    expect(s.sessions[0]).toMatchObject({ pipeliningViolations: 0, reads: 5 });
    expect(s.transactions[0]!.complete).toBe(true);
  });
});
