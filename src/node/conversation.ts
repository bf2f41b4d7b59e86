/**
 * The Node adapter: one `ClientSession` over one socket, for as many transactions as it is
 * given (one for a plain `deliver()`, many for a pooled connection). It does the I/O the
 * engine cannot: reading and writing, the stage deadlines (re-armed for every reply awaited
 * and on every progress, PROTO-29), the STARTTLS upgrade and certificate checks, message
 * streaming with backpressure, and each caller's AbortSignal. Every outcome goes to its
 * transaction's `onOutcome` the moment the engine decides it, so an abort never loses a
 * result already known.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Capabilities } from '../protocol/ehlo-parser.js';
import type { ClientSession, TransactionInput } from '../protocol/client-session.js';
import type { TlsResultType, Why } from '../protocol/why.js';
import type { DeliveryEvent } from '../events.js';
import type { Timeouts } from '../options.js';
import { stageTimeout } from './stage-timeouts.js';
import { errnoText } from './connect.js';
import { appliedLevel, checkPeer, startTls, tlsInfo, type PeerView, type SecureOptions, type TlsInfo } from './tls-connect.js';

export type { TlsInfo } from './tls-connect.js';

export interface ConnectionOptions {
  timeouts: Timeouts;
  /** Connection-level events (TLS, warnings) for whoever opened it. */
  onEvent: (e: DeliveryEvent) => void;
  /** The handshake completed (greeting, EHLO, STARTTLS, AUTH): Postfix counts the session now. */
  onReady?: () => void;
  /** What STARTTLS must do (policy decision, session cache); absent = no TLS possible. */
  secure?: SecureOptions;
  /** The connection is already TLS (wrapper mode): its info, for results. */
  wrapped?: TlsInfo;
}

export interface TransactionHandlers {
  onOutcome: (index: number, why: Why, tls: TlsInfo | undefined, stsTestingFailure?: { resultType: TlsResultType; detail: string }) => void;
  /** Transcript lines while this transaction is in flight. */
  onEvent?: (e: DeliveryEvent) => void;
  /** The streamed message, opened when the engine first asks for content. */
  openContent?: () => AsyncIterator<Uint8Array>;
  signal?: AbortSignal | undefined;
}

export interface TransactionSummary {
  /** The message stream was opened (a one-shot stream cannot be sent again). */
  contentOpened: boolean;
  /** The caller aborted while the transaction was in flight. */
  aborted: boolean;
}

export interface ConnectionSummary {
  capabilities: Capabilities | undefined;
  tls: TlsInfo | undefined;
  /** The TLS handshake failed (Postfix: plaintext retry may be allowed at level may). */
  tlsHandshakeFailed: boolean;
  /** The certificate failed the level's check (RFC 8460 result type). */
  tlsCheckFailure: { resultType: TlsResultType; detail: string } | undefined;
}

interface ActiveTx {
  handlers: TransactionHandlers;
  resolve: (s: TransactionSummary) => void;
  contentOpened: boolean;
  aborted: boolean;
  onAbort?: () => void;
}

let nextConnectionId = 1;

/** Output up to this many octets is written as one buffer. */
const COALESCE_LIMIT = 16 * 1024;

export class Connection {
  readonly id = nextConnectionId++;
  readonly createdAt = Date.now();
  /** Transactions sent over this connection (the reuse count limit counts these). */
  uses = 0;
  /** Resolves true once the handshake is complete, false if the session ended before. */
  readonly ready: Promise<boolean>;
  /** Resolves when the connection is closed, with what it learned. */
  readonly closed: Promise<ConnectionSummary>;
  /** Called when the server closes an idle connection, or any close (the pool drops it). */
  onClose: (() => void) | undefined;
  /** Called each time the connection has nothing in flight. */
  onIdle: (() => void) | undefined;

  private socket: Socket | TLSSocket;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires, and when the stage's deadline really is (performance.now(); 0 = none). */
  private timerAt = 0;
  private deadline = 0;
  private finished = false;
  private resolveReady!: (ok: boolean) => void;
  private resolveClosed!: (s: ConnectionSummary) => void;
  private wake: (() => void) | undefined;
  private tls: TlsInfo | undefined;
  private tlsCheckFailure: { resultType: TlsResultType; detail: string } | undefined;
  private stsTestingFailure: { resultType: TlsResultType; detail: string } | undefined;
  private tlsHandshakeFailed = false;
  private armedStage = '';
  /** The session ended by a fault (timeout, abort, lost connection): no graceful close. */
  private hard = false;
  private readonly active = new Map<number, ActiveTx>();
  private streaming = false;
  /** Transactions whose body is due while another one is being written. */
  private readonly contentQueue: number[] = [];

  constructor(
    socket: Socket,
    private readonly session: ClientSession,
    private readonly options: ConnectionOptions,
  ) {
    this.socket = socket;
    this.tls = options.wrapped;
    this.ready = new Promise((r) => (this.resolveReady = r));
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.attach(this.socket);
    this.pump();
    this.arm(true);
  }

  /** The TLS session this connection runs in, if any. */
  get tlsInfo(): TlsInfo | undefined {
    return this.tls;
  }

  get capabilities(): Capabilities | undefined {
    return this.session.capabilities;
  }

  /** Open, handshake done, nothing in flight. */
  get idle(): boolean {
    return !this.finished && this.session.idle;
  }

  /** Transactions in flight or queued. */
  get load(): number {
    return this.session.load;
  }

  get alive(): boolean {
    return !this.finished;
  }

  /** May carry more transactions (POOL-9): no failure, protocol error, 421, QUIT. */
  get reusable(): boolean {
    // A socket already destroyed (its close event not yet seen) carries nothing more.
    return !this.finished && !this.socket.destroyed && this.session.reusable;
  }

  get engine(): ClientSession {
    return this.session;
  }

  /**
   * Send one transaction; resolves when every recipient has its outcome (or the caller aborted).
   */
  send(input: TransactionInput, handlers: TransactionHandlers): Promise<TransactionSummary> {
    return new Promise((resolve) => {
      if (this.finished) {
        for (const r of input.recipients) handlers.onOutcome(r.index, { kind: 'not-sent', detail: 'the connection was closed' }, this.tls);
        resolve({ contentOpened: false, aborted: false });
        return;
      }
      const id = this.session.transaction(input);
      this.uses++;
      const entry: ActiveTx = { handlers, resolve, contentOpened: false, aborted: false };
      this.active.set(id, entry);
      const signal = handlers.signal;
      if (signal) {
        const onAbort = () => this.abortTransaction(id);
        if (signal.aborted) queueMicrotask(onAbort);
        else {
          signal.addEventListener('abort', onAbort, { once: true });
          entry.onAbort = () => signal.removeEventListener('abort', onAbort);
        }
      }
      this.pump();
      this.arm(false);
    });
  }

  /** End an idle connection politely (QUIT), then close. */
  quit(): void {
    if (this.finished) return;
    this.session.quit();
    this.pump();
    if (!this.finished) this.arm(true);
  }

  /** Close at once. */
  destroy(): void {
    if (this.finished) return;
    this.hard = true;
    this.session.abort();
    this.pump();
    this.close(true);
  }

  /**
   * A caller aborted: alone on the connection, the session is aborted (its recipients get
   * `aborted`, the socket closes); sharing it, only its own transaction is let go (its later
   * outcomes are ignored) so that the other callers are not hurt.
   */
  private abortTransaction(id: number): void {
    const entry = this.active.get(id);
    if (!entry || this.finished) return;
    if (this.active.size === 1) {
      entry.aborted = true;
      this.hard = true;
      this.session.abort();
      this.pump();
      this.close(true);
      return;
    }
    entry.aborted = true;
    this.active.delete(id);
    entry.onAbort?.();
    entry.resolve({ contentOpened: entry.contentOpened, aborted: true });
  }

  private attach(sock: Socket | TLSSocket): void {
    sock.on('data', (data: Buffer) => {
      if (sock !== this.socket || this.finished) return;
      this.session.receive(data);
      this.pump();
      this.arm(true); // every byte received is progress (Postfix: per read call)
    });
    sock.on('error', (err: Error) => {
      if (sock !== this.socket) return;
      this.emit({ type: 'warning', message: `connection error: ${errnoText(err)}` });
    });
    sock.on('close', () => {
      if (sock !== this.socket || this.finished) return;
      this.hard = true;
      this.session.connectionLost();
      this.pump();
      this.close(true);
    });
    sock.on('drain', () => {
      if (sock !== this.socket) return;
      this.arm(true);
      this.notify();
    });
  }

  /** Events for everyone with a transaction in flight, or the opener when there is none. */
  private emit(e: DeliveryEvent): void {
    // Each listener once, however many of its transactions share the connection.
    let first: ((e: DeliveryEvent) => void) | undefined;
    let more: Array<(e: DeliveryEvent) => void> | undefined;
    for (const a of this.active.values()) {
      const f = a.handlers.onEvent;
      if (!f || f === first || more?.includes(f)) continue;
      if (first === undefined) first = f;
      else (more ??= []).push(f);
      f(e);
    }
    if (first === undefined) this.options.onEvent(e);
  }

  /** Take every event and every output byte the engine has, and act on them. */
  private pump(): void {
    for (let ev = this.session.nextEvent(); ev; ev = this.session.nextEvent()) {
      switch (ev.type) {
        case 'send':
        case 'receive': {
          // A transaction's lines go to its caller only: callers sharing a connection never see
          // each other's addresses. The connection's own lines (greeting, EHLO, QUIT) go to all.
          const e: DeliveryEvent = { type: ev.type, line: ev.line };
          const owner = ev.tx !== undefined ? this.active.get(ev.tx) : undefined;
          if (owner) owner.handlers.onEvent?.(e);
          else if (ev.tx === undefined) this.emit(e);
          break;
        }
        case 'warning':
          this.emit({ type: 'warning', message: ev.message });
          break;
        case 'capabilities':
          break;
        case 'ready':
          this.options.onReady?.();
          // Once: and the opener's closure is not kept for the connection's lifetime.
          this.options.onReady = undefined;
          this.resolveReady(true);
          break;
        case 'outcome': {
          const a = this.active.get(ev.tx);
          if (a) a.handlers.onOutcome(ev.index, ev.why, this.tls, this.stsTestingFailure);
          break;
        }
        case 'transactionDone': {
          const a = this.active.get(ev.tx);
          if (a) {
            this.active.delete(ev.tx);
            a.onAbort?.();
            a.resolve({ contentOpened: a.contentOpened, aborted: a.aborted });
          }
          break;
        }
        case 'needContent':
          void this.streamContent(ev.tx);
          break;
        case 'content-check': {
          const a = this.active.get(ev.tx);
          const e: DeliveryEvent = { type: 'content-check', ...ev.report };
          if (a?.handlers.onEvent) a.handlers.onEvent(e);
          else this.options.onEvent(e);
          break;
        }
        case 'startTls':
          this.flush();
          this.startTls();
          break;
        case 'done':
          break;
      }
    }
    if (!this.finished) this.flush();
    if (this.session.done) this.close(false);
    else {
      this.arm(false);
      if (this.session.idle && this.active.size === 0) this.onIdle?.();
    }
    this.notify();
  }

  private flush(): void {
    const out = this.session.takeOutput();
    if (out.length === 0 || this.socket.destroyed) return;
    if (out.length === 1) {
      this.socket.write(out[0]!);
      return;
    }
    // A flight of commands and a small message: copied into one buffer, one write (a single
    // write is cheaper than cork + writev); large content is not copied.
    let n = 0;
    for (const chunk of out) n += chunk.length;
    if (n <= COALESCE_LIMIT) {
      this.socket.write(Buffer.concat(out, n));
      return;
    }
    this.socket.cork();
    for (const chunk of out) this.socket.write(chunk);
    this.socket.uncork();
  }

  /**
   * Arm the deadline of the stage the engine waits in; `progress` restarts it. The deadline is
   * a number; one timer runs at a time and, when it fires before a deadline that moved later,
   * sleeps again for the rest (a timer per reply costs more than the replies at high rates).
   */
  private arm(progress: boolean): void {
    if (this.finished) return;
    const stage = this.session.stage;
    if (!progress && stage === this.armedStage && this.deadline !== 0) return;
    this.armedStage = stage;
    const ms = stageTimeout(stage, this.options.timeouts);
    if (ms <= 0) {
      this.deadline = 0;
      this.stopTimer();
      return;
    }
    this.deadline = performance.now() + ms;
    if (this.timer && this.timerAt <= this.deadline) return;
    this.stopTimer();
    this.startTimer(ms);
  }

  private startTimer(ms: number): void {
    this.timerAt = performance.now() + ms;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    if (this.finished || this.deadline === 0) return;
    const left = this.deadline - performance.now();
    if (left >= 1) {
      this.startTimer(Math.ceil(left));
      return;
    }
    this.hard = true;
    this.session.timeout();
    this.pump();
    this.close(true);
  };

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }

  /** Feed a message to the engine, one chunk at a time, waiting for the socket to drain. */
  private async streamContent(txId: number): Promise<void> {
    const entry = this.active.get(txId);
    const open = entry?.handlers.openContent;
    if (this.streaming) {
      // One body at a time: a pipelined transaction's body waits for the one being written.
      this.contentQueue.push(txId);
      return;
    }
    if (!entry || !open) {
      if (entry && !open) {
        this.session.contentFailed('no message content to send');
        this.pump();
      }
      return;
    }
    this.streaming = true;
    entry.contentOpened = true;
    let it: AsyncIterator<Uint8Array> | undefined;
    try {
      it = open();
      while (!this.finished && this.session.bodyTransaction === txId) {
        if (!this.session.wantsContent || this.socket.writableNeedDrain) {
          await this.changed();
          continue;
        }
        const r = await it.next();
        if (this.finished || this.session.bodyTransaction !== txId) break;
        if (r.done) {
          this.session.contentEnd();
        } else {
          this.session.content(r.value);
          this.emit({ type: 'content', bytes: r.value.length });
        }
        this.pump();
        this.arm(true); // a chunk written is progress (dataXfer is a no-progress limit)
      }
    } catch (err) {
      if (!this.finished) {
        this.session.contentFailed(`error reading message content: ${err instanceof Error ? err.message : String(err)}`);
        this.pump();
      }
    } finally {
      this.streaming = false;
      try {
        await it?.return?.();
      } catch {
        /* ignored */
      }
      const next = this.contentQueue.shift();
      if (next !== undefined) void this.streamContent(next);
    }
  }

  private startTls(): void {
    const raw = this.socket as Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    raw.removeAllListeners('close');
    const secure = this.options.secure;
    if (!secure) {
      this.hard = true;
      this.session.tlsFailed('no TLS policy for this connection');
      this.pump();
      this.close(true);
      return;
    }
    const { socket: sock, ready } = startTls(raw, secure);
    this.socket = sock;
    let settled = false;
    this.attach(sock);
    // 'close' or 'error' before the handshake completes is a failed handshake, not a lost connection.
    sock.prependOnceListener('close', () => {
      if (!settled && !this.finished) {
        settled = true;
        this.handshakeFailed('connection closed during the TLS handshake');
      }
    });
    void ready.then((r) => {
      if (settled || this.finished) return;
      settled = true;
      if (!r.ok) return this.handshakeFailed(r.detail);
      this.secured(sock, r.peer);
    });
    this.arm(true);
  }

  private handshakeFailed(detail: string): void {
    this.tlsHandshakeFailed = true;
    this.hard = true;
    this.session.tlsFailed(detail);
    this.pump();
    this.close(true);
  }

  /** Handshake done: run the level's check; the engine goes on only if it passed. */
  private secured(sock: TLSSocket, peer: PeerView): void {
    const secure = this.options.secure!;
    const result = checkPeer(peer, secure.decision.check);
    this.tls = tlsInfo(sock, appliedLevel(secure.decision), result.ok && result.verified);
    this.emit({ type: 'tls', ...this.tls });
    if (secure.decision.stsTesting) {
      // MTA-STS testing mode: deliver regardless, report what enforce would have refused.
      const sts = checkPeer(peer, secure.decision.stsTesting.check);
      if (!sts.ok) this.stsTestingFailure = { resultType: sts.resultType, detail: sts.detail };
    }
    if (!result.ok) {
      this.tlsCheckFailure = { resultType: result.resultType, detail: result.detail };
      this.session.tlsNotVerified(result.detail, result.resultType);
    } else {
      // REQUIRETLS (RFC 8689 §4.2.1) wants PKIX or DANE authentication; a fingerprint is not that.
      this.session.tlsEstablished({ verified: result.verified && secure.decision.check.kind !== 'fingerprint' });
    }
    this.pump();
    this.arm(true);
  }

  /** Close the connection: gracefully after QUIT (flush, then close), or at once. */
  private close(now: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.deadline = 0;
    this.stopTimer();
    const sock = this.socket;
    if (now || this.hard || sock.destroyed) {
      sock.destroy();
    } else {
      // Postfix closes right after QUIT; wait only until our bytes are handed to the kernel.
      // A last resort for a peer that never closes; cleared on close so that a closed socket
      // (and this connection with it) is not kept for the second.
      const last = setTimeout(() => sock.destroy(), 1000).unref();
      sock.once('close', () => clearTimeout(last));
      sock.end(() => sock.destroy());
    }
    this.notify();
    this.resolveReady(false);
    // Anything still registered (it should not be: the engine ended every transaction) resolves.
    for (const [id, a] of this.active) {
      this.active.delete(id);
      a.onAbort?.();
      a.resolve({ contentOpened: a.contentOpened, aborted: a.aborted });
    }
    this.onClose?.();
    this.resolveClosed({
      capabilities: this.session.capabilities,
      tls: this.tls,
      tlsHandshakeFailed: this.tlsHandshakeFailed,
      tlsCheckFailure: this.tlsCheckFailure,
    });
  }

  /** Let an idle pooled connection not keep the event loop alive (and keep it again when busy). */
  setRef(ref: boolean): void {
    const s = this.socket as Socket;
    // A socket without its handle (destroyed, its close not yet seen) would queue a 'connect'
    // listener for every call (net.Socket#ref before connect), and none would ever run.
    if (this.finished || s.destroyed) return;
    if (ref) s.ref();
    else s.unref();
  }
}
