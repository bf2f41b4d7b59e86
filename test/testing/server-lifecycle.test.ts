import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { TestServer } from '../../src/testing/index.js';
import { isLoopback } from '../../src/testing/loopback.js';
import { RawClient, sleep } from './raw-client.js';

const sock = (name: string): string => `/tmp/mailwire-testing-${process.pid}-${name}.sock`;

/** Sockets, listeners and timers that keep the event loop alive, counted by type. */
function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) {
    if (/^(TCP|Pipe|TLS|Timeout|.*ShutdownWrap|WriteWrap)/.test(r)) out[r] = (out[r] ?? 0) + 1;
  }
  return out;
}

/** Wait until nothing is left beyond `before` (the runner's own pipes and its test timer). */
async function expectNothingLeft(before: Record<string, number>): Promise<void> {
  let now = resources();
  for (let i = 0; i < 50; i++) {
    const extra = Object.keys(now).filter((k) => (now[k] ?? 0) > (before[k] ?? 0));
    if (extra.length === 0) return;
    await sleep(10);
    now = resources();
  }
  expect(now).toEqual(before);
}

describe('binding', () => {
  it('knows loopback addresses', () => {
    for (const ok of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopback(ok), ok).toBe(true);
    for (const bad of ['0.0.0.0', '::', '192.0.2.1', '128.0.0.1', 'localhost', 'example.org', '::2', '::ffff:10.0.0.1', '']) {
      expect(isLoopback(bad), bad).toBe(false);
    }
  });

  it('refuses a non-loopback bind address', async () => {
    await expect(TestServer.start({ host: '0.0.0.0' })).rejects.toThrow(/refusing to bind/);
    await expect(TestServer.start({ host: 'localhost' })).rejects.toThrow(/refusing to bind/);
    await expect(TestServer.start({ host: '::' })).rejects.toThrow(/refusing to bind/);
  });

  it('binds to another 127/8 address and to ::1', async () => {
    const a = await TestServer.start({ host: '127.0.0.2' });
    expect(a.destination).toBe(`[127.0.0.2]:${a.port}`);
    const ca = await RawClient.connect(a);
    expect(await ca.readReply()).toMatch(/^220 /);
    await a.close();
    let b: TestServer;
    try {
      b = await TestServer.start({ host: '::1' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') return; // no IPv6 here
      throw e;
    }
    expect(b.destination).toBe(`[ipv6:::1]:${b.port}`);
    const cb = await RawClient.connect(b);
    expect(await cb.readReply()).toMatch(/^220 /);
    await b.waitForSessions(0);
    await b.close();
    expect(b.sessions[0]!.remoteAddress).toBe('::1');
  });

  it('reports a port in use', async () => {
    const a = await TestServer.start();
    await expect(TestServer.start({ port: a.port! })).rejects.toThrow(/EADDRINUSE/);
    await a.close();
  });

  it('removes a stale unix socket, but not a live one or a regular file', async () => {
    const path = sock('stale');
    rmSync(path, { force: true });
    // a live listener's socket is left alone
    const live = createServer();
    await new Promise<void>((r) => live.listen(path, r));
    await expect(TestServer.start({ path })).rejects.toThrow(/EADDRINUSE/);
    await new Promise<void>((r) => live.close(() => r()));
    // a socket file left behind by a killed process is removed
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(lstatSync(path).isSocket()).toBe(true);
    const s2 = await TestServer.start({ path });
    expect(existsSync(path)).toBe(true);
    await s2.close();
    expect(existsSync(path)).toBe(false);

    writeFileSync(path, 'not a socket');
    await expect(TestServer.start({ path })).rejects.toThrow(/EADDRINUSE/);
    rmSync(path);
  });

  it('validates options', async () => {
    await expect(TestServer.start({ wrapperMode: true })).rejects.toThrow(/wrapperMode needs tls/);
    await expect(TestServer.start({ path: sock('x'), port: 25 })).rejects.toThrow(/either path or host/);
    await expect(TestServer.start({ maxLineLength: 2 })).rejects.toThrow(/maxLineLength/);
    await expect(TestServer.start({ hostname: 'a b' })).rejects.toThrow(/hostname/);
  });
});

describe('close()', () => {
  it('closes the listener and every open connection; nothing keeps running', async () => {
    const before = resources();
    const s = await TestServer.start({ faults: [{ step: 'mail', action: 'stall' }] });
    const clients = await Promise.all([RawClient.connect(s), RawClient.connect(s), RawClient.connect(s)]);
    for (const c of clients) await c.readReply();
    clients[0]!.write('EHLO x\r\nMAIL FROM:<a@x>\r\n'); // stalled
    clients[1]!.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await sleep(20);
    expect(s.openConnections).toBe(3);
    await s.close();
    await Promise.all(clients.map((c) => c.waitClosed()));
    expect(s.openConnections).toBe(0);
    expect(s.sessions.map((r) => [r.ended, r.closedBy])).toEqual([
      [true, 'server'],
      [true, 'server'],
      [true, 'server'],
    ]);
    await s.close(); // idempotent
    await expectNothingLeft(before);
  });

  it('leaves nothing behind after QUIT, lingering closes and timeouts', async () => {
    const before = resources();
    const s = await TestServer.start({ protocol: 'lmtp', path: sock('linger') });
    const c = await RawClient.connect(s);
    await c.readReply();
    c.write('LHLO x\r\nQUIT\r\n');
    await c.readReplies(2);
    await s.waitForSessions(1);
    await expect(s.waitForSessions(2, 50)).rejects.toThrow(/timed out after 50 ms waiting for 2 ended sessions/);
    const pending = s.waitForSessions(5, 10_000);
    await s.close();
    await expect(pending).rejects.toThrow(/server was closed/);
    await expectNothingLeft(before);
  });

  it('refuses connections after close()', async () => {
    const s = await TestServer.start();
    await s.close();
    await expect(RawClient.connect(s)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('records', () => {
  it('counts sessions, remote addresses and reads; reset() clears them', async () => {
    const s = await TestServer.start();
    const c1 = await RawClient.connect(s);
    await c1.readReply();
    await c1.command('NOOP');
    const c2 = await RawClient.connect(s);
    await c2.readReply();
    c1.close();
    c2.close();
    await s.waitForSessions(2);
    expect(s.sessions.map((r) => [r.index, r.remoteAddress, r.reads, r.closedBy])).toEqual([
      [0, '127.0.0.1', 1, 'client'],
      [1, '127.0.0.1', 0, 'client'],
    ]);
    s.reset();
    expect(s.sessions).toEqual([]);
    expect(s.transactions).toEqual([]);
    await s.close();
  });

  it('keeps records of a session still open at reset() out of the new lists', async () => {
    const s = await TestServer.start();
    const c = await RawClient.connect(s);
    await c.readReply();
    s.reset();
    await c.command('EHLO x');
    await c.command('MAIL FROM:<a@x>');
    expect(s.sessions).toHaveLength(0);
    expect(s.transactions).toHaveLength(0);
    await s.close();
  });

  it('caps the transcript (transcriptLimit)', async () => {
    const s = await TestServer.start({ transcriptLimit: 10, junkCommandLimit: 0 });
    const c = await RawClient.connect(s);
    await c.readReply();
    c.write('NOOP\r\n'.repeat(50));
    await c.readReplies(50);
    expect(s.sessions[0]!.transcript).toHaveLength(10);
    await s.close();
  });
});
