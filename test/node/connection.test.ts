/** The Node adapter's Connection: socket bookkeeping that the delivery tests cannot see. */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Connection } from '../../src/node/conversation.js';
import { ClientSession } from '../../src/protocol/client-session.js';
import { resolveOptions } from '../../src/options.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function connected(): Promise<Socket> {
  server = createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const s = connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => s.once('connect', r));
  return s;
}

describe('Connection', () => {
  it('ref/unref on a destroyed socket whose close is not yet seen queue no listener (a pool lease in that window)', async () => {
    const socket = await connected();
    const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test' });
    const conn = new Connection(socket, session, { timeouts: resolveOptions({}).timeouts, onEvent: () => undefined });
    expect(conn.reusable).toBe(true);
    socket.destroy(); // the 'close' event comes later
    expect(conn.reusable, 'the pool must not lease it').toBe(false);
    for (let i = 0; i < 15; i++) {
      conn.setRef(true);
      conn.setRef(false);
    }
    expect(socket.listenerCount('connect')).toBe(0);
    await conn.closed;
  });
});
