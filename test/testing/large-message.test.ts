import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { TestServer } from '../../src/testing/index.js';
import { RawClient } from './raw-client.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function write(socket: Socket, b: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.write(b)) resolve();
    else socket.once('drain', resolve);
  });
}

/** A block of 76-octet lines, one in 50 starting with a dot. */
function block(lines: number): { wire: Buffer; content: Buffer } {
  const wire: Buffer[] = [];
  const content: Buffer[] = [];
  for (let i = 0; i < lines; i++) {
    const text = i % 50 === 0 ? '.' + 'd'.repeat(73) + '\r\n' : 'x'.repeat(74) + '\r\n';
    content.push(Buffer.from(text));
    wire.push(Buffer.from(text.startsWith('.') ? '.' + text : text));
  }
  return { wire: Buffer.concat(wire), content: Buffer.concat(content) };
}

describe('large messages', () => {
  it('with discardData keeps only size and SHA-256 (DATA, 32 MB)', async () => {
    server = await TestServer.start({ discardData: true });
    const c = await RawClient.connect(server);
    await c.readReply();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await c.readReplies(4);
    const { wire, content } = block(8192);
    const hash = createHash('sha256');
    const n = Math.ceil((32 * 1024 * 1024) / wire.length);
    for (let i = 0; i < n; i++) {
      hash.update(content);
      await write(c.socket, wire);
    }
    await write(c.socket, Buffer.from('.\r\n'));
    expect(await c.readReply(20_000)).toMatch(/^250 2\.0\.0 Ok: queued/);
    const tx = server.transactions[0]!;
    expect(tx.data).toBeUndefined();
    expect(tx.size).toBe(content.length * n);
    expect(tx.sha256).toBe(hash.digest('hex'));
  });

  it('with discardData keeps only size and SHA-256 (BDAT, 32 MB in 1 MB chunks)', async () => {
    server = await TestServer.start({ discardData: true });
    const c = await RawClient.connect(server);
    await c.readReply();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\n');
    await c.readReplies(3);
    const chunk = Buffer.alloc(1024 * 1024, 0xa5);
    const hash = createHash('sha256');
    for (let i = 0; i < 32; i++) {
      hash.update(chunk);
      await write(c.socket, Buffer.from(`BDAT ${chunk.length}${i === 31 ? ' LAST' : ''}\r\n`));
      await write(c.socket, chunk);
    }
    const replies = await c.readReplies(32, 20_000);
    expect(replies[31]).toMatch(/^250 2\.0\.0 Ok: queued/);
    const tx = server.transactions[0]!;
    expect(tx).toMatchObject({ size: 32 * 1024 * 1024, sha256: hash.digest('hex') });
    expect(tx.bdatChunks).toHaveLength(32);
    expect(tx.data).toBeUndefined();
  });

  it('stops keeping octets beyond maxKeptData but still answers, sizes and hashes', async () => {
    server = await TestServer.start({ maxKeptData: 1000 });
    const c = await RawClient.connect(server);
    await c.readReply();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 5000 LAST\r\n' + 'z'.repeat(5000));
    expect((await c.readReplies(4))[3]).toMatch(/^250 2\.0\.0 Ok: queued/);
    const tx = server.transactions[0]!;
    expect(tx.data).toBeUndefined();
    expect(tx.size).toBe(5000);
    expect(tx.sha256).toBe(createHash('sha256').update('z'.repeat(5000)).digest('hex'));
  });

  it('keeps the octets without discardData (8 MB)', async () => {
    server = await TestServer.start();
    const c = await RawClient.connect(server);
    await c.readReply();
    c.write('EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n');
    await c.readReplies(4);
    const { wire, content } = block(110_000);
    await write(c.socket, wire);
    await write(c.socket, Buffer.from('.\r\n'));
    await c.readReply(20_000);
    expect(server.transactions[0]!.data!.equals(content)).toBe(true);
  });
});
