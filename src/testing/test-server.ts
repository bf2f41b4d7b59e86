/**
 * The scriptable SMTP/LMTP test server: Postfix smtp-sink in spirit, on loopback only.
 *
 * ```ts
 * import { TestServer } from 'mailwire/testing';
 * const server = await TestServer.start({ extensions: { size: 1000 } });
 * // deliver(..., server.destination, ...)
 * await server.waitForSessions(1);
 * server.transactions[0].data;  // the message as received
 * await server.close();
 * ```
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { lstatSync, unlinkSync } from 'node:fs';
import { FaultBook, type Fault } from './faults.js';
import { assertLoopback } from './loopback.js';
import { resolveOptions, type ResolvedOptions, type TestServerOptions } from './options.js';
import type { ReceivedTransaction, ServerSessionRecord } from './recorded.js';
import { ServerSession, type SessionHost } from './server-session.js';

interface Waiter {
  done: () => boolean;
  resolve: () => void;
  /** Called when the server closes and `done()` is still false. */
  abandon?: (why: string) => void;
}

export class TestServer {
  /** The TCP port, or undefined for a unix socket. */
  readonly port: number | undefined;
  /** The bind address (`'localhost'` for a unix socket). */
  readonly host: string;
  /** The unix socket path, or undefined for TCP. */
  readonly path: string | undefined;
  /** `'smtp'` or `'lmtp'`. */
  readonly protocol: 'smtp' | 'lmtp';
  /**
   * A mailwire destination string for this server: `[127.0.0.1]:PORT`, `[ipv6:::1]:PORT`, or
   * `unix:/path`.
   */
  readonly destination: string;
  /** MAIL transactions (a MAIL that got 2xx), in MAIL order, including ones still in progress. */
  transactions: ReceivedTransaction[] = [];
  /** One record per accepted connection, in accept order. */
  sessions: ServerSessionRecord[] = [];
  /**
   * Errors thrown by scripting callbacks (the client got a 451 instead) or, should it ever
   * happen, inside the server (the session got a 421 and was closed). A test can assert that
   * this stays empty.
   */
  errors: unknown[] = [];

  private options: ResolvedOptions;
  private readonly faults: FaultBook;
  private readonly secureContext: SecureContext | undefined;
  private readonly requestCert: boolean;
  /** What sessions see of their server. */
  private readonly sessionHost: SessionHost;

  private readonly listener: Server;
  private readonly live = new Set<ServerSession>();
  private waiters: Waiter[] = [];
  private closed = false;
  private closePromise: Promise<void> | undefined;

  private constructor(
    listener: Server,
    address: { port?: number; host: string; path?: string },
    options: ResolvedOptions,
    faults: FaultBook,
    secureContext: SecureContext | undefined,
    requestCert: boolean,
  ) {
    this.listener = listener;
    this.port = address.port;
    this.host = address.host;
    this.path = address.path;
    this.options = options;
    this.protocol = options.protocol;
    this.faults = faults;
    this.secureContext = secureContext;
    this.requestCert = requestCert;
    if (address.path !== undefined) this.destination = `unix:${address.path}`;
    else if (address.host.includes(':')) this.destination = `[ipv6:${address.host}]:${address.port}`;
    else this.destination = `[${address.host}]:${address.port}`;
    const server = this;
    this.sessionHost = {
      get options() {
        return server.options;
      },
      faults,
      secureContext,
      requestCert,
      transactionStarted: (tx) => {
        this.transactions.push(tx);
      },
      transactionEnded: () => this.checkWaiters(),
      reportError: (err) => {
        if (this.errors.length < 1000) this.errors.push(err);
      },
      sessionEnded: (session) => {
        this.live.delete(session);
        this.checkWaiters();
      },
    };
    listener.on('connection', (socket: Socket) => this.accept(socket));
  }

  /**
   * Start listening. Rejects when the bind address is not loopback, when an option is invalid,
   * or when the address is in use.
   */
  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    const resolved = resolveOptions(options);
    const faults = new FaultBook(options.faults ?? []);
    let secureContext: SecureContext | undefined;
    if (options.tls !== undefined) {
      const ctxOptions: Parameters<typeof createSecureContext>[0] = { key: options.tls.key, cert: options.tls.cert };
      if (options.tls.ca !== undefined) ctxOptions.ca = options.tls.ca;
      secureContext = createSecureContext(ctxOptions);
    }
    if (resolved.wrapperMode && secureContext === undefined) {
      throw new TypeError('mailwire/testing: wrapperMode needs tls: { key, cert }');
    }
    const listener = createServer();
    if (options.path !== undefined) {
      if (options.host !== undefined || options.port !== undefined) {
        throw new TypeError('mailwire/testing: give either path or host/port, not both');
      }
      await removeStaleSocket(options.path);
      await listen(listener, { path: options.path });
      return new TestServer(listener, { host: 'localhost', path: options.path }, resolved, faults, secureContext, options.tls?.requestCert ?? false);
    }
    const host = options.host ?? '127.0.0.1';
    assertLoopback(host);
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`mailwire/testing: bad port ${port}`);
    await listen(listener, { host, port, ipv6Only: host.includes(':') });
    const addr = listener.address();
    const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
    return new TestServer(listener, { host, port: bound }, resolved, faults, secureContext, options.tls?.requestCert ?? false);
  }

  /** Connections currently open. */
  get openConnections(): number {
    return this.live.size;
  }

  /**
   * Change the scripting options (callbacks, extensions, greeting, limits...) for connections
   * accepted from now on. `faults`, when given, replaces the fault list and its counters.
   * Listener options (host, port, path, protocol, tls) cannot change.
   */
  configure(patch: Omit<TestServerOptions, 'host' | 'port' | 'path' | 'protocol' | 'tls'>): void {
    const current = this.options;
    const merged: TestServerOptions = {
      protocol: current.protocol,
      hostname: patch.hostname ?? current.hostname,
      ehlo: patch.ehlo ?? current.ehlo,
      extensions: { ...current.extensions, ...(patch.extensions ?? {}) },
      ehloStyle: patch.ehloStyle ?? current.ehloStyle,
      rejectUnauthPipelining: patch.rejectUnauthPipelining ?? current.rejectUnauthPipelining,
      tlsAuthOnly: patch.tlsAuthOnly ?? current.tlsAuthOnly,
      discardData: patch.discardData ?? current.discardData,
      maxKeptData: patch.maxKeptData ?? current.maxKeptData,
      maxRecipients: patch.maxRecipients ?? current.maxRecipients,
      hardErrorLimit: patch.hardErrorLimit ?? current.hardErrorLimit,
      junkCommandLimit: patch.junkCommandLimit ?? current.junkCommandLimit,
      idleTimeout: patch.idleTimeout ?? current.idleTimeout,
      maxLineLength: patch.maxLineLength ?? current.maxLineLength,
      maxAuthLineLength: patch.maxAuthLineLength ?? current.maxAuthLineLength,
      transcriptLimit: patch.transcriptLimit ?? current.transcriptLimit,
      wrapperMode: patch.wrapperMode ?? current.wrapperMode,
    };
    const greeting = 'greeting' in patch ? patch.greeting : patch.hostname !== undefined ? undefined : current.greeting;
    if (greeting !== undefined) merged.greeting = greeting;
    const onMail = 'onMail' in patch ? patch.onMail : current.onMail;
    if (onMail) merged.onMail = onMail;
    const onRcpt = 'onRcpt' in patch ? patch.onRcpt : current.onRcpt;
    if (onRcpt) merged.onRcpt = onRcpt;
    const onData = 'onData' in patch ? patch.onData : current.onData;
    if (onData) merged.onData = onData;
    const onAuth = 'onAuth' in patch ? patch.onAuth : current.onAuth;
    if (onAuth) merged.onAuth = onAuth;
    const users = 'users' in patch ? patch.users : current.users;
    if (users) merged.users = users;
    const next = resolveOptions(merged);
    if (next.wrapperMode && this.secureContext === undefined) throw new TypeError('mailwire/testing: wrapperMode needs tls');
    if (patch.faults !== undefined) this.faults.replace(patch.faults);
    this.options = next;
  }

  /** Replace the fault list (and forget how often the old faults fired). */
  setFaults(faults: Fault[]): void {
    this.faults.replace(faults);
  }

  /**
   * Resolve when `n` sessions have ended (socket closed), counting the sessions recorded since
   * start or the last `reset()`. Rejects after `timeoutMs` (default 5000).
   */
  waitForSessions(n: number, timeoutMs = 5000): Promise<void> {
    return this.waitUntil(
      () => this.sessions.filter((s) => s.ended).length >= n,
      timeoutMs,
      () => `${n} ended sessions (have ${this.sessions.filter((s) => s.ended).length} of ${this.sessions.length})`,
    );
  }

  /** Resolve when `n` transactions have ended (completed or aborted). Rejects after `timeoutMs`. */
  waitForTransactions(n: number, timeoutMs = 5000): Promise<void> {
    const ended = (): number => this.transactions.filter((t) => t.complete || t.aborted !== undefined).length;
    return this.waitUntil(() => ended() >= n, timeoutMs, () => `${n} ended transactions (have ${ended()})`);
  }

  /**
   * Clear the records (sessions, transactions), restart session numbering at 0 and reset the
   * fault counters. Open connections stay open but are no longer recorded.
   */
  reset(): void {
    for (const s of this.live) s.detach();
    this.sessions = [];
    this.transactions = [];
    this.errors = [];
    this.faults.resetCounts();
  }

  /** Close the listener and every open connection. Nothing keeps the event loop alive afterwards. */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closed = true;
    const sessionsClosed = [...this.live].map(
      (s) =>
        new Promise<void>((resolve) => {
          this.waiters.push({ done: () => s.isEnded, resolve });
          s.destroy();
        }),
    );
    const listenerClosed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    this.closePromise = Promise.all([listenerClosed, ...sessionsClosed]).then(() => {
      // Settle waiters that can never be satisfied now, so no timer outlives the server.
      this.checkWaiters();
      const left = this.waiters;
      this.waiters = [];
      for (const w of left) w.abandon?.('the server was closed');
    });
    return this.closePromise;
  }

  // ---------------------------------------------------------------- internals

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const session = new ServerSession(socket, this.sessions.length, this.sessionHost);
    this.sessions.push(session.record);
    this.live.add(session);
  }

  private waitUntil(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`mailwire/testing: timed out after ${timeoutMs} ms waiting for ${describe()}`));
      }, timeoutMs);
      const waiter: Waiter = {
        done,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        abandon: (why) => {
          clearTimeout(timer);
          reject(new Error(`mailwire/testing: ${why} while waiting for ${describe()}`));
        },
      };
      this.waiters.push(waiter);
    });
  }

  private checkWaiters(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    const ready: Waiter[] = [];
    for (const w of this.waiters) (w.done() ? ready : still).push(w);
    this.waiters = still;
    for (const w of ready) w.resolve();
  }
}

function listen(server: Server, options: { host?: string; port?: number; path?: string; ipv6Only?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ ...options, exclusive: true }, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/**
 * Remove a unix socket file left behind by a dead server. A live socket (something accepts
 * connections) or a file that is not a socket is left alone, and listening then fails.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // does not exist
  }
  if (!isSocket) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!alive) {
    try {
      unlinkSync(path);
    } catch {
      // raced with someone else; listen() reports what remains
    }
  }
}
