/**
 * A loopback TCP proxy that adds a fixed one-way delay to every chunk in each direction
 * (RTT = 2 × delay), preserving byte order. The TCP handshake itself is not delayed (the
 * client connects to the proxy at once), so an SMTP greeting arrives 0.5 RTT after connect.
 *
 * A FIN or a close on one side reaches the other side `delay` later, after the bytes still in
 * the delay line (e.g. a server's "221 Bye" just before it closes) have been written. Both
 * sockets are half-open capable, so a client that ends its side early still gets the replies
 * that are on their way.
 *
 * Module use, in this process:
 *   const proxy = await startLatencyProxy({ targetPort: 2525, delayMs: 10 });
 *   // connect to proxy.port (or deliver to proxy.destination); proxy.connections has per-chunk logs
 *   await proxy.close();
 * or in a child process of its own (so that the caller's event loop, GC and JIT cannot make the
 * proxy late; what the benchmarks use):
 *   const proxy = await forkLatencyProxy({ targetPort: 2525, delayMs: 10 });
 *   const conns = await proxy.records();   // times converted to this process's performance.now()
 *   await proxy.close();
 *
 * CLI (same arguments as the shared latency-proxy.mjs):
 *   npx tsx bench/latency-proxy.ts LISTEN_PORT TARGET_PORT DELAY_MS [TARGET_HOST]
 *
 * Loopback only: the listen and target addresses must be in 127.0.0.0/8 or ::1.
 */
import { fork } from 'node:child_process';
import { createServer, connect, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export interface LatencyProxyOptions {
  /** Where to forward to. Default host 127.0.0.1. */
  targetHost?: string;
  targetPort: number;
  /** One-way delay in milliseconds, applied to every chunk in both directions. */
  delayMs: number;
  /** Default 127.0.0.1. */
  listenHost?: string;
  /** Default 0 (ephemeral). */
  listenPort?: number;
  /** Keep a per-chunk log of each connection (time, direction, octets, first bytes). Default true. */
  record?: boolean;
  /** At most this many leading octets of each chunk are kept in the log. Default 512. */
  recordBytes?: number;
}

/** One chunk as the proxy saw it. Times are `performance.now()` milliseconds. */
export interface ChunkRecord {
  /** `c2s`: client to server; `s2c`: server to client. */
  dir: 'c2s' | 's2c';
  /** When the chunk was read from its source. */
  readAt: number;
  /** When it was written to the other side (undefined if it never was). */
  writtenAt?: number;
  bytes: number;
  /** The first `recordBytes` octets (latin1), for transcripts. */
  head: string;
}

export interface ConnectionRecord {
  id: number;
  acceptedAt: number;
  chunks: ChunkRecord[];
  /** When the end (FIN or close) of each direction was passed on. */
  c2sEndedAt?: number;
  s2cEndedAt?: number;
  closedAt?: number;
}

export interface LatencyProxy {
  readonly host: string;
  readonly port: number;
  /** A mailwire destination for the proxy: `[127.0.0.1]:PORT`. */
  readonly destination: string;
  readonly delayMs: number;
  /** Accepted connections, in order, with their chunk logs (empty when `record` is false). */
  readonly connections: ConnectionRecord[];
  /** Connections still open. */
  readonly open: number;
  /** Forget the recorded connections. */
  clearRecords(): void;
  /** Stop listening and destroy every open connection. */
  close(): Promise<void>;
}

export function isLoopbackAddress(host: string): boolean {
  if (isIPv4(host)) return host.startsWith('127.');
  if (isIPv6(host)) return host === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(host) || /^::ffff:127\./i.test(host);
  return false;
}

function assertLoopback(what: string, host: string): void {
  if (!isLoopbackAddress(host)) throw new RangeError(`latency-proxy: ${what} ${JSON.stringify(host)} is not a loopback address (127.0.0.0/8 or ::1)`);
}

type Item = { due: number; buf: Buffer; rec: ChunkRecord | undefined } | { due: number; end: true; destroy: boolean };

/**
 * One direction of a connection: a FIFO delay line with one timer, so order is kept even when
 * timers fire late, and a backpressure link (the source is paused while the sink is full).
 */
class DelayLine {
  private readonly queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private ended = false;
  private finished = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly delayMs: number,
    private readonly onChunk: ((buf: Buffer) => ChunkRecord) | undefined,
    private readonly onEnded: () => void,
  ) {
    src.on('data', (buf: Buffer) => {
      const rec = this.onChunk?.(buf);
      this.push({ due: performance.now() + this.delayMs, buf, rec });
    });
    // FIN from the source: pass it on after the bytes before it.
    src.on('end', () => this.pushEnd(false));
    // Close (possibly without FIN, e.g. reset): end the other side after the delay line drains,
    // then make sure it really goes away.
    src.on('close', () => this.pushEnd(true));
    src.on('error', () => {});
    dst.on('drain', () => {
      if (!src.destroyed) src.resume();
    });
  }

  private pushEnd(destroy: boolean): void {
    if (this.ended) {
      if (destroy) {
        // upgrade an end still in the line to a destroying one
        const last = this.queue[this.queue.length - 1];
        if (last && 'end' in last) last.destroy = true;
      }
      return;
    }
    this.ended = true;
    this.push({ due: performance.now() + this.delayMs, end: true, destroy });
  }

  private push(item: Item): void {
    this.queue.push(item);
    if (!this.timer && !this.immediate) this.schedule();
  }

  /**
   * Timers have millisecond granularity and may fire a fraction of a millisecond before the due
   * time by performance.now(); so sleep until about 1 ms before it, then poll with setImmediate.
   * A chunk is never written before its due time, and rarely more than ~0.2 ms after it.
   */
  private schedule(): void {
    const head = this.queue[0];
    if (!head) return;
    const wait = head.due - performance.now();
    if (wait > 1.5) {
      this.timer = setTimeout(() => this.flush(), Math.floor(wait - 1));
    } else {
      this.immediate = setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.timer = undefined;
    this.immediate = undefined;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const item = this.queue.shift()!;
      if ('end' in item) {
        this.finish(item.destroy);
        continue;
      }
      if (this.finished || this.dst.destroyed) continue;
      if (item.rec) item.rec.writtenAt = performance.now();
      if (!this.dst.write(item.buf)) this.src.pause();
    }
    if (this.queue.length > 0) this.schedule();
  }

  private finish(destroy: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.dst.destroyed) {
      this.dst.end();
      if (destroy) setTimeout(() => this.dst.destroy(), 1000).unref();
    }
    this.onEnded();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    this.queue.length = 0;
  }
}

export async function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  const listenHost = options.listenHost ?? '127.0.0.1';
  assertLoopback('target', targetHost);
  assertLoopback('listen address', listenHost);
  const delayMs = options.delayMs;
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new RangeError('latency-proxy: delayMs must be >= 0');
  const record = options.record ?? true;
  const recordBytes = options.recordBytes ?? 512;

  const connections: ConnectionRecord[] = [];
  const live = new Set<{ client: Socket; upstream: Socket; lines: DelayLine[] }>();
  let nextId = 0;

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => {
    client.setNoDelay(true);
    const rec: ConnectionRecord = { id: nextId++, acceptedAt: performance.now(), chunks: [] };
    if (record) connections.push(rec);
    const upstream = connect({ host: targetHost, port: options.targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const log = (dir: 'c2s' | 's2c') =>
      record
        ? (buf: Buffer): ChunkRecord => {
            const c: ChunkRecord = { dir, readAt: performance.now(), bytes: buf.length, head: buf.subarray(0, recordBytes).toString('latin1') };
            rec.chunks.push(c);
            return c;
          }
        : undefined;
    let ends = 0;
    const entry = { client, upstream, lines: [] as DelayLine[] };
    const ended = (dir: 'c2s' | 's2c') => () => {
      if (dir === 'c2s') rec.c2sEndedAt = performance.now();
      else rec.s2cEndedAt = performance.now();
      if (++ends === 2) {
        // both directions done: nothing more can flow
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 1000).unref();
      }
    };
    entry.lines.push(new DelayLine(client, upstream, delayMs, log('c2s'), ended('c2s')));
    entry.lines.push(new DelayLine(upstream, client, delayMs, log('s2c'), ended('s2c')));
    live.add(entry);
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) {
        rec.closedAt = performance.now();
        live.delete(entry);
      }
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listenHost, port: options.listenPort ?? 0, exclusive: true }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.listenPort ?? 0);
  const destination = listenHost.includes(':') ? `[ipv6:${listenHost}]:${port}` : `[${listenHost}]:${port}`;

  return {
    host: listenHost,
    port,
    destination,
    delayMs,
    connections,
    get open() {
      return live.size;
    },
    clearRecords() {
      connections.length = 0;
    },
    close() {
      for (const e of live) {
        for (const l of e.lines) l.cancel();
        e.client.destroy();
        e.upstream.destroy();
      }
      live.clear();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Group a connection's chunks into flights: runs of chunks in one direction, a new flight
 * starting when the direction changes or when more than `gapMs` passed since the previous
 * chunk in that direction.
 */
export interface Flight {
  dir: 'c2s' | 's2c';
  firstReadAt: number;
  lastReadAt: number;
  /** When the last chunk of the flight was written to the other side. */
  lastWrittenAt: number | undefined;
  bytes: number;
  chunks: ChunkRecord[];
}

export function flightsOf(conn: ConnectionRecord, gapMs: number): Flight[] {
  const flights: Flight[] = [];
  let cur: Flight | undefined;
  for (const c of [...conn.chunks].sort((a, b) => a.readAt - b.readAt)) {
    if (!cur || cur.dir !== c.dir || c.readAt - cur.lastReadAt > gapMs) {
      cur = { dir: c.dir, firstReadAt: c.readAt, lastReadAt: c.readAt, lastWrittenAt: c.writtenAt, bytes: 0, chunks: [] };
      flights.push(cur);
    }
    cur.lastReadAt = c.readAt;
    cur.lastWrittenAt = c.writtenAt;
    cur.bytes += c.bytes;
    cur.chunks.push(c);
  }
  return flights;
}

// ---------------------------------------------------------------- child process

/** A proxy running in a child process; records are fetched over IPC. */
export interface RemoteLatencyProxy {
  readonly host: string;
  readonly port: number;
  readonly destination: string;
  readonly delayMs: number;
  readonly pid: number;
  /** The recorded connections, with times converted to this process's `performance.now()`. */
  records(): Promise<ConnectionRecord[]>;
  clearRecords(): Promise<void>;
  close(): Promise<void>;
}

type ChildRequest = { op: 'records' | 'clear' | 'close'; seq: number };
type ChildReply =
  | { op: 'ready'; port: number; host: string; destination: string; timeOrigin: number }
  | { op: 'error'; message: string }
  | { op: 'reply'; seq: number; records?: ConnectionRecord[] };

/**
 * Start the proxy in a child Node process (`node --import tsx bench/latency-proxy.ts --ipc`).
 * The child has nothing else to do, so its timers fire on time.
 */
export function forkLatencyProxy(options: LatencyProxyOptions): Promise<RemoteLatencyProxy> {
  const file = fileURLToPath(import.meta.url);
  const child = fork(file, ['--ipc', JSON.stringify(options)], {
    cwd: dirname(dirname(file)),
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, (r: ChildReply & { op: 'reply' }) => void>();
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`latency proxy child exited with ${code}`)));
    child.on('message', (m: ChildReply) => {
      if (m.op === 'error') reject(new Error(m.message));
      else if (m.op === 'reply') {
        pending.get(m.seq)?.(m);
        pending.delete(m.seq);
      } else if (m.op === 'ready') {
        // child time + shift = our time
        const shift = m.timeOrigin - performance.timeOrigin;
        const ask = (op: ChildRequest['op']) =>
          new Promise<ChildReply & { op: 'reply' }>((res) => {
            const n = ++seq;
            pending.set(n, res);
            child.send({ op, seq: n } satisfies ChildRequest);
          });
        resolve({
          host: m.host,
          port: m.port,
          destination: m.destination,
          delayMs: options.delayMs,
          pid: child.pid!,
          async records() {
            const r = await ask('records');
            return (r.records ?? []).map((c) => shiftRecord(c, shift));
          },
          async clearRecords() {
            await ask('clear');
          },
          async close() {
            if (child.exitCode !== null) return;
            const exited = new Promise<void>((res) => child.once('exit', () => res()));
            child.send({ op: 'close', seq: ++seq } satisfies ChildRequest);
            const t = setTimeout(() => child.kill('SIGKILL'), 3000);
            await exited;
            clearTimeout(t);
          },
        });
      }
    });
  });
}

function shiftRecord(c: ConnectionRecord, d: number): ConnectionRecord {
  const r: ConnectionRecord = {
    id: c.id,
    acceptedAt: c.acceptedAt + d,
    chunks: c.chunks.map((x) => ({ ...x, readAt: x.readAt + d, ...(x.writtenAt !== undefined ? { writtenAt: x.writtenAt + d } : {}) })),
  };
  if (c.c2sEndedAt !== undefined) r.c2sEndedAt = c.c2sEndedAt + d;
  if (c.s2cEndedAt !== undefined) r.s2cEndedAt = c.s2cEndedAt + d;
  if (c.closedAt !== undefined) r.closedAt = c.closedAt + d;
  return r;
}

async function ipcChild(optionsJson: string): Promise<void> {
  const send = (m: ChildReply) => process.send!(m);
  let proxy: LatencyProxy;
  try {
    proxy = await startLatencyProxy(JSON.parse(optionsJson) as LatencyProxyOptions);
  } catch (err) {
    send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  process.on('message', (m: ChildRequest) => {
    if (m.op === 'records') send({ op: 'reply', seq: m.seq, records: proxy.connections });
    else if (m.op === 'clear') {
      proxy.clearRecords();
      send({ op: 'reply', seq: m.seq });
    } else if (m.op === 'close') void proxy.close().then(() => process.exit(0));
  });
  // the parent went away: go too
  process.on('disconnect', () => void proxy.close().then(() => process.exit(0)));
  send({ op: 'ready', port: proxy.port, host: proxy.host, destination: proxy.destination, timeOrigin: performance.timeOrigin });
}

// ---------------------------------------------------------------- CLI

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--ipc' && argv[1] !== undefined && process.send) return ipcChild(argv[1]);
  const [lp, tp, d, th = '127.0.0.1'] = argv;
  if (lp === undefined || tp === undefined || d === undefined || argv.includes('-h') || argv.includes('--help')) {
    console.error('usage: npx tsx bench/latency-proxy.ts LISTEN_PORT TARGET_PORT DELAY_MS [TARGET_HOST]\n  RTT = 2 * DELAY_MS; loopback only');
    process.exit(2);
  }
  const proxy = await startLatencyProxy({ listenPort: Number(lp), targetPort: Number(tp), targetHost: th, delayMs: Number(d), record: false });
  console.log(`latency proxy ${proxy.host}:${proxy.port} -> ${th}:${tp}, +${proxy.delayMs}ms each way (RTT ${2 * proxy.delayMs} ms)`);
  const stop = () => {
    void proxy.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
