/**
 * A scriptable DNS server for tests: UDP and TCP on one 127.0.0.1 port (so truncation can
 * fall back to TCP), each query decoded and handed to a handler that says what to send back.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { decodeMessage, encodeMessage, type DnsMessage, type MessageInput, type RecordInput } from '../../src/routing/dns-message.js';

export interface Received {
  transport: 'udp' | 'tcp';
  query: DnsMessage;
  at: number;
  /** The client's source port. */
  port: number;
}

/** What to do with one query: nothing (stay silent), one or more packets (in order), after a delay. */
export type Reply = Uint8Array | MessageInput | null | undefined | { delay: number; send: Reply } | Reply[];

export type Handler = (query: DnsMessage, transport: 'udp' | 'tcp', server: FakeDnsServer) => Reply;

export interface FakeDnsServer {
  port: number;
  /** '127.0.0.1:port', for ResolverOptions.servers. */
  address: string;
  received: Received[];
  handler: Handler;
  /** Sends a datagram to the last UDP client from another socket (a different source port). */
  sendFromOtherPort(packet: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A response to `q`: ID and question echoed, QR and RA set; `extra` overrides or adds. */
export function reply(q: DnsMessage, extra: Partial<MessageInput> = {}): MessageInput {
  return {
    id: q.id,
    qr: true,
    rd: q.rd,
    ra: true,
    questions: q.questions,
    ...(q.edns ? { edns: { udpSize: 1232, do: q.edns.do } } : {}),
    ...extra,
  };
}

export const a = (name: string, address: string, ttl = 300): RecordInput => ({ name, type: 1, ttl, data: { kind: 'address', address } });
export const aaaa = (name: string, address: string): RecordInput => ({ name, type: 28, ttl: 300, data: { kind: 'address', address } });
export const cname = (name: string, target: string): RecordInput => ({ name, type: 5, ttl: 300, data: { kind: 'name', name: target } });
export const mx = (name: string, priority: number, exchange: string): RecordInput => ({
  name,
  type: 15,
  ttl: 300,
  data: { kind: 'mx', priority, exchange },
});
export const txt = (name: string, ...strings: (string | Uint8Array)[]): RecordInput => ({
  name,
  type: 16,
  ttl: 300,
  data: { kind: 'txt', strings: strings.map((s) => (typeof s === 'string' ? new TextEncoder().encode(s) : s)) },
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function listenBoth(): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let i = 0; i < 50; i++) {
    const udp = dgram.createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const port = udp.address().port;
    const tcp = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => resolve());
      });
      return { udp, tcp, port };
    } catch {
      udp.close();
    }
  }
  throw new Error('no free port for UDP and TCP');
}

export async function startFakeDnsServer(handler: Handler): Promise<FakeDnsServer> {
  const { udp, tcp, port } = await listenBoth();
  const sockets = new Set<net.Socket>();
  const pending = new Set<NodeJS.Timeout>();
  let closed = false;
  let lastClient: dgram.RemoteInfo | undefined;

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      pending.delete(t);
      if (!closed) fn();
    }, ms);
    pending.add(t);
  };

  /** Flattens a Reply into timed packets. */
  const play = (r: Reply, send: (b: Uint8Array) => void, delay = 0): void => {
    if (r === null || r === undefined) return;
    if (Array.isArray(r)) {
      for (const x of r) play(x, send, delay);
      return;
    }
    if ('delay' in r && 'send' in r) return play(r.send, send, delay + r.delay);
    const bytes = r instanceof Uint8Array ? r : encodeMessage(r as MessageInput);
    if (delay > 0) later(delay, () => send(bytes));
    else send(bytes);
  };

  const server: FakeDnsServer = {
    port,
    address: `127.0.0.1:${port}`,
    received: [],
    handler,
    async sendFromOtherPort(packet) {
      if (!lastClient) throw new Error('no client yet');
      const s = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => s.send(packet, lastClient!.port, lastClient!.address, () => resolve()));
      s.close();
    },
    async close() {
      closed = true;
      for (const t of pending) clearTimeout(t);
      for (const s of sockets) s.destroy();
      udp.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };

  udp.on('message', (buf, rinfo) => {
    lastClient = rinfo;
    let q: DnsMessage;
    try {
      q = decodeMessage(buf);
    } catch {
      return;
    }
    server.received.push({ transport: 'udp', query: q, at: Date.now(), port: rinfo.port });
    play(server.handler(q, 'udp', server), (b) => {
      if (!closed) udp.send(b, rinfo.port, rinfo.address);
    });
  });

  tcp.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        let q: DnsMessage;
        try {
          q = decodeMessage(msg);
        } catch {
          sock.destroy();
          return;
        }
        server.received.push({ transport: 'tcp', query: q, at: Date.now(), port: sock.remotePort ?? 0 });
        play(server.handler(q, 'tcp', server), (b) => {
          if (sock.destroyed) return;
          const framed = Buffer.alloc(b.length + 2);
          framed.writeUInt16BE(b.length, 0);
          framed.set(b, 2);
          sock.write(framed);
        });
      }
    });
  });

  return server;
}

/** A 127.0.0.1 port with nothing listening on UDP (bound, then closed). */
export async function deadPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export { sleep };
