/**
 * `Pool`: Postfix's connection cache as a library (smtp_reuse.c, smtp_session.c;
 * POSTFIX-BEHAVIOR.md §1.5; POOL-*). Connections are kept by their endpoint label (and found
 * by their destination label too); a kept connection is reused after an RSET probe sent in
 * the same flight as the next transaction. Limits, with Postfix's defaults: `idleTimeout`
 * 2 s (smtp_connection_cache_time_limit), `reuseTimeLimit` 300 s counted from the connect
 * (smtp_connection_reuse_time_limit), `reuseCountLimit` 0 = none; concurrency
 * `maxConnectionsPerDestination` 20 and `maxConnections`. Callers over the limits wait in
 * FIFO order and honor their AbortSignal. Nothing in the pool keeps the event loop alive.
 */
import type { Connection } from '../node/conversation.js';

export interface PoolOptions {
  /** smtp_connection_cache_time_limit: an idle connection is closed after this (ms). Default 2000. */
  idleTimeout?: number;
  /** smtp_connection_reuse_time_limit: no reuse once this long after the connect (ms). Default 300000. */
  reuseTimeLimit?: number;
  /** smtp_connection_reuse_count_limit: transactions per connection (0 = no limit). Default 0. */
  reuseCountLimit?: number;
  /** Postfix destination concurrency: connections per destination. Default 20. */
  maxConnectionsPerDestination?: number;
  /** Connections in all. Default 100. */
  maxConnections?: number;
  /**
   * Transactions one connection may carry at once when transaction pipelining is on (in
   * flight or queued). Default 32.
   */
  maxTransactionsPerConnection?: number;
}

export interface PoolStats {
  open: number;
  idle: number;
  busy: number;
  waiting: number;
}

interface Entry {
  conn: Connection;
  endpoint: string;
  /** The concurrency group (protocol and next hop): maxConnectionsPerDestination counts these. */
  destination: string;
  /** The destination label, set for the first good session of a delivery (POOL-11). */
  label: string | undefined;
  /** What the opener needs to reuse it without a DNS lookup (server, TLS decision). */
  tag: unknown;
  /** deliver() calls currently using it. */
  leases: number;
  idleTimer: NodeJS.Timeout | undefined;
}

interface Waiter {
  /** What it asks for, as one string: waiters that ask for the same thing fail alike. */
  kind: string;
  destination: string;
  endpoint: string;
  pipelining: boolean;
  fresh: boolean;
  resolve: (lease: Lease | undefined) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * What `acquire` gives: a connection to reuse (`probe`: it was idle, so it is probed with RSET
 * first, POOL-8; a busy one has just shown it works), or the right to open a new one.
 */
export type Lease = { kind: 'reuse'; conn: Connection; probe: boolean } | { kind: 'open'; release: () => void };

export class Pool {
  private readonly o: Required<PoolOptions>;
  private readonly entries = new Set<Entry>();
  private readonly byConn = new Map<Connection, Entry>();
  /** Slots reserved by callers that are opening a connection, per destination. */
  private readonly opening = new Map<string, number>();
  private readonly waiters: Waiter[] = [];
  /** How many waiters ask for each kind of connection. */
  private readonly kinds = new Map<string, number>();
  private closing = false;

  constructor(options: PoolOptions = {}) {
    const num = (v: number | undefined, d: number, name: string, min = 0) => {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new RangeError(`Pool: ${name} must be a number >= ${min}`);
      return v;
    };
    this.o = {
      idleTimeout: num(options.idleTimeout, 2000, 'idleTimeout'),
      reuseTimeLimit: num(options.reuseTimeLimit, 300_000, 'reuseTimeLimit'),
      reuseCountLimit: num(options.reuseCountLimit, 0, 'reuseCountLimit'),
      maxConnectionsPerDestination: num(options.maxConnectionsPerDestination, 20, 'maxConnectionsPerDestination', 1),
      maxConnections: num(options.maxConnections, 100, 'maxConnections', 1),
      maxTransactionsPerConnection: num(options.maxTransactionsPerConnection, 32, 'maxTransactionsPerConnection', 1),
    };
  }

  /** Open, idle, busy connections and callers waiting for one. */
  stats(): PoolStats {
    let idle = 0;
    for (const e of this.entries) if (e.leases === 0 && e.conn.idle) idle++;
    return { open: this.entries.size, idle, busy: this.entries.size - idle, waiting: this.waiters.length };
  }

  /** The options in force (defaults filled in). */
  get options(): Readonly<Required<PoolOptions>> {
    return this.o;
  }

  get closed(): boolean {
    return this.closing;
  }

  /**
   * A connection for an endpoint (or, with `destination` only, any kept connection to that
   * next hop), or the right to open one. Waits (FIFO) while the limits are reached; resolves
   * undefined when the signal aborts or the pool closes.
   */
  acquire(q: { destination: string; endpoint: string; pipelining: boolean; fresh?: boolean; signal?: AbortSignal | undefined }): Promise<Lease | undefined> {
    if (this.closing) return Promise.resolve({ kind: 'open', release: () => undefined });
    const now = this.tryAcquire(q.destination, q.endpoint, q.pipelining, q.fresh ?? false);
    if (now) return Promise.resolve(now);
    if (q.signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const fresh = q.fresh ?? false;
      const w: Waiter = { kind: `${q.destination}\0${q.endpoint}\0${q.pipelining}\0${fresh}`, destination: q.destination, endpoint: q.endpoint, pipelining: q.pipelining, fresh: q.fresh ?? false, resolve, signal: q.signal, onAbort: undefined };
      if (q.signal) {
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.dropWaiter(i);
          resolve(undefined);
        };
        q.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
      this.kinds.set(w.kind, (this.kinds.get(w.kind) ?? 0) + 1);
    });
  }

  /**
   * POOL-11: a kept connection by destination label, before any DNS lookup, with the tag its
   * opener stored. Never waits: without one, the caller looks up the next hop as usual.
   */
  takeByLabel(label: string, pipelining: boolean): { conn: Connection; tag: unknown; probe: boolean } | undefined {
    if (this.closing) return undefined;
    let best: Entry | undefined;
    for (const e of this.entries) {
      if (e.label !== label || !this.usable(e, pipelining)) continue;
      if (!best || e.leases < best.leases) best = e;
    }
    if (!best) return undefined;
    const probe = best.leases === 0;
    this.lease(best);
    return { conn: best.conn, tag: best.tag, probe };
  }

  /** Whether the pool keeps this connection. */
  has(conn: Connection): boolean {
    return this.byConn.has(conn);
  }

  /** A new connection opened under a lease: keep it (busy, leased by its opener). */
  add(conn: Connection, endpoint: string, destination: string, tag?: unknown): void {
    const e: Entry = { conn, endpoint, destination, label: undefined, tag, leases: 1, idleTimer: undefined };
    this.entries.add(e);
    this.byConn.set(conn, e);
    conn.onClose = () => this.remove(e);
    conn.onIdle = () => this.idle(e);
  }

  /**
   * The caller is done with the connection; it stays for reuse if the limits allow. `label`
   * also files it under a destination label (the first good session of a delivery, POOL-11).
   */
  release(conn: Connection, label?: string): void {
    const e = this.byConn.get(conn);
    if (!e) return;
    if (label !== undefined) e.label = label;
    e.leases = Math.max(0, e.leases - 1);
    if (!this.keepable(e)) {
      if (e.leases === 0) {
        this.remove(e);
        conn.quit();
      }
    } else if (e.leases === 0 && conn.idle) {
      this.idle(e);
    }
    this.serveWaiters();
  }

  /** QUIT to idle connections; what is still open after `timeoutMs` is destroyed. */
  async close(timeoutMs = 5000): Promise<void> {
    this.closing = true;
    this.kinds.clear();
    for (const w of this.waiters.splice(0)) {
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.resolve({ kind: 'open', release: () => undefined });
    }
    const all = [...this.entries];
    for (const e of all) {
      if (e.idleTimer) clearTimeout(e.idleTimer);
      if (e.leases === 0) e.conn.quit();
    }
    const closedAll = Promise.all(all.map((e) => e.conn.closed));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closedAll, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs).unref()))]);
    if (timer) clearTimeout(timer);
    for (const e of all) e.conn.destroy();
    this.entries.clear();
    this.byConn.clear();
  }

  // ---------------------------------------------------------------- internals

  private tryAcquire(destination: string, endpoint: string, pipelining: boolean, fresh = false): Lease | undefined {
    // 1. An idle kept connection to this endpoint; else note the least busy one that can take
    // another transaction (transaction pipelining).
    let busy: Entry | undefined;
    for (const e of fresh ? [] : this.entries) {
      if (e.endpoint !== endpoint || !this.usable(e, pipelining)) continue;
      if (e.leases === 0) {
        this.lease(e);
        return { kind: 'reuse', conn: e.conn, probe: true };
      }
      if (!busy || e.leases < busy.leases) busy = e;
    }
    // 2. Room for a new connection: callers spread over connections before they share one.
    const room = this.count(destination) < this.o.maxConnectionsPerDestination && this.total() < this.o.maxConnections;
    if (busy && !room) {
      this.lease(busy);
      return { kind: 'reuse', conn: busy.conn, probe: false };
    }
    if (room) {
      this.opening.set(destination, (this.opening.get(destination) ?? 0) + 1);
      let released = false;
      return {
        kind: 'open',
        release: () => {
          if (released) return;
          released = true;
          const n = (this.opening.get(destination) ?? 1) - 1;
          if (n <= 0) this.opening.delete(destination);
          else this.opening.set(destination, n);
          this.serveWaiters();
        },
      };
    }
    // 3. At the limits: close an idle connection to another destination to make room.
    if (this.total() >= this.o.maxConnections && this.count(destination) < this.o.maxConnectionsPerDestination) {
      for (const e of this.entries) {
        if (e.leases === 0 && e.conn.idle && e.destination !== destination) {
          this.remove(e);
          e.conn.quit();
          return this.tryAcquire(destination, endpoint, pipelining, fresh);
        }
      }
    }
    return undefined;
  }

  private usable(e: Entry, pipelining: boolean): boolean {
    if (!this.keepable(e)) return false;
    if (e.leases === 0 && e.conn.idle) return true;
    // Transaction pipelining: a busy connection takes more callers, up to the per-connection
    // cap (counted in callers when leased, so a burst cannot pass it).
    const load = Math.max(e.leases, e.conn.load);
    return pipelining && e.leases > 0 && load < this.o.maxTransactionsPerConnection && e.conn.engine.capabilities?.pipelining === true;
  }

  /** Reuse limits (POOL-5, POOL-9): alive, reusable, within the time and count limits. */
  private keepable(e: Entry): boolean {
    const c = e.conn;
    if (!c.alive || !c.reusable) return false;
    if (this.o.reuseTimeLimit > 0 && Date.now() - c.createdAt >= this.o.reuseTimeLimit) return false;
    if (this.o.reuseCountLimit > 0 && c.uses >= this.o.reuseCountLimit) return false;
    return true;
  }

  private lease(e: Entry): void {
    e.leases++;
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = undefined;
    e.conn.setRef(true);
  }

  /** An idle connection: unref it, close it after idleTimeout, and hand it to a waiter. */
  private idle(e: Entry): void {
    if (!this.entries.has(e) || e.leases > 0 || !e.conn.idle) return;
    if (this.closing || !this.keepable(e)) {
      this.remove(e);
      e.conn.quit();
      this.serveWaiters();
      return;
    }
    e.conn.setRef(false);
    if (!e.idleTimer) {
      e.idleTimer = setTimeout(() => {
        e.idleTimer = undefined;
        if (e.leases === 0 && e.conn.idle) {
          this.remove(e);
          e.conn.quit();
          this.serveWaiters();
        }
      }, this.o.idleTimeout);
      e.idleTimer.unref();
    }
    this.serveWaiters();
  }

  private remove(e: Entry): void {
    if (!this.entries.delete(e)) return;
    this.byConn.delete(e.conn);
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = undefined;
    this.serveWaiters();
  }

  private dropWaiter(i: number): void {
    const [w] = this.waiters.splice(i, 1);
    if (!w) return;
    const n = (this.kinds.get(w.kind) ?? 1) - 1;
    if (n <= 0) this.kinds.delete(w.kind);
    else this.kinds.set(w.kind, n);
  }

  private serveWaiters(): void {
    // Waiters that ask for the same thing fail alike: try each kind once per pass (not
    // waiters × connections work on every release).
    let failed: Set<string> | undefined;
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      const lease = failed?.has(w.kind) ? undefined : this.tryAcquire(w.destination, w.endpoint, w.pipelining, w.fresh);
      if (!lease) {
        (failed ??= new Set()).add(w.kind);
        // One kind of waiter (the usual case): nobody behind can be served either.
        if (this.kinds.size === 1) break;
        i++;
        continue;
      }
      this.dropWaiter(i);
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.resolve(lease);
    }
  }

  private count(destination: string): number {
    let n = this.opening.get(destination) ?? 0;
    for (const e of this.entries) if (e.destination === destination) n++;
    return n;
  }

  private total(): number {
    let n = this.entries.size;
    for (const v of this.opening.values()) n += v;
    return n;
  }
}
