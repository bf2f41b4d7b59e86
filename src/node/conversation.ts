/**
 * The Node adapter loop: one `ClientSession` over one socket. It does the I/O the engine
 * cannot: reading and writing, the stage deadlines (re-armed for every reply awaited and on
 * every progress, PROTO-29), the STARTTLS upgrade, message streaming with backpressure, and
 * the caller's AbortSignal. Every outcome goes to `onOutcome` the moment the engine decides
 * it, so an abort never loses a result already known.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Capabilities } from '../protocol/ehlo-parser.js';
import type { ClientSession } from '../protocol/client-session.js';
import type { Why } from '../protocol/why.js';
import type { DeliveryEvent } from '../events.js';
import type { Timeouts } from '../options.js';
import { stageTimeout } from './stage-timeouts.js';
import { errnoText } from './connect.js';
import { appliedLevel, checkPeer, startTls, tlsInfo, type PeerView, type SecureOptions, type TlsInfo } from './tls-connect.js';
import type { TlsResultType } from '../protocol/why.js';

export type { TlsInfo } from './tls-connect.js';


export interface ConversationOptions {
  timeouts: Timeouts;
  signal?: AbortSignal | undefined;
  onEvent: (e: DeliveryEvent) => void;
  onOutcome: (index: number, why: Why, tls: TlsInfo | undefined, stsTestingFailure?: { resultType: TlsResultType; detail: string }) => void;
  /** The handshake completed (greeting, EHLO, STARTTLS, AUTH): Postfix counts the session now. */
  onReady?: () => void;
  /** The streamed message, opened when the engine first asks for content. */
  openContent?: () => AsyncIterator<Uint8Array>;
  /** What STARTTLS must do (policy decision, session cache); absent = no TLS possible. */
  secure?: SecureOptions;
  /** The connection is already TLS (wrapper mode): its info, for results. */
  wrapped?: TlsInfo;
}

export interface ConversationResult {
  capabilities: Capabilities | undefined;
  tls: TlsInfo | undefined;
  /** The message stream was opened (a one-shot stream cannot be sent again). */
  contentOpened: boolean;
  /** The TLS handshake failed (Postfix: plaintext retry may be allowed at level may). */
  tlsHandshakeFailed: boolean;
  /** The certificate failed the level's check (RFC 8460 result type). */
  tlsCheckFailure: { resultType: TlsResultType; detail: string } | undefined;
  /** MTA-STS testing mode: what enforce would have refused. */
  stsTestingFailure: { resultType: TlsResultType; detail: string } | undefined;
  aborted: boolean;
}

export function converse(socket: Socket, session: ClientSession, options: ConversationOptions): Promise<ConversationResult> {
  return new Conversation(socket, session, options).run();
}

class Conversation {
  private socket: Socket | TLSSocket;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  private resolveRun!: (r: ConversationResult) => void;
  private wake: (() => void) | undefined;
  private contentStarted = false;
  private tls: TlsInfo | undefined;
  private tlsCheckFailure: { resultType: TlsResultType; detail: string } | undefined;
  private stsTestingFailure: { resultType: TlsResultType; detail: string } | undefined;
  private tlsHandshakeFailed = false;
  private aborted = false;
  private armedStage = '';
  /** The session ended by a fault (timeout, abort, lost connection): no graceful close. */
  private hard = false;

  constructor(
    socket: Socket,
    private readonly session: ClientSession,
    private readonly options: ConversationOptions,
  ) {
    this.socket = socket;
    this.tls = options.wrapped;
  }

  run(): Promise<ConversationResult> {
    return new Promise((resolve) => {
      this.resolveRun = resolve;
      const signal = this.options.signal;
      if (signal) {
        if (signal.aborted) {
          queueMicrotask(() => this.onAbort());
        } else {
          signal.addEventListener('abort', this.onAbort, { once: true });
        }
      }
      this.attach(this.socket);
      this.arm(true);
    });
  }

  private readonly onAbort = (): void => {
    if (this.finished) return;
    this.aborted = true;
    this.hard = true;
    this.session.abort();
    this.pump();
    this.close(true);
  };

  private attach(sock: Socket | TLSSocket): void {
    sock.on('data', (data: Buffer) => {
      if (sock !== this.socket || this.finished) return;
      this.session.receive(data);
      this.pump();
      this.arm(true); // every byte received is progress (Postfix: per read call)
    });
    sock.on('error', (err: Error) => {
      if (sock !== this.socket) return;
      this.options.onEvent({ type: 'warning', message: `connection error: ${errnoText(err)}` });
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

  /** Take every event and every output byte the engine has, and act on them. */
  private pump(): void {
    for (let ev = this.session.nextEvent(); ev; ev = this.session.nextEvent()) {
      switch (ev.type) {
        case 'send':
        case 'receive':
          this.options.onEvent({ type: ev.type, line: ev.line });
          break;
        case 'warning':
          this.options.onEvent({ type: 'warning', message: ev.message });
          break;
        case 'capabilities':
          break;
        case 'ready':
          this.options.onReady?.();
          break;
        case 'outcome':
          this.options.onOutcome(ev.index, ev.why, this.tls, this.stsTestingFailure);
          break;
        case 'needContent':
          void this.streamContent();
          break;
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
    else this.arm(false);
    this.notify();
  }

  private flush(): void {
    const out = this.session.takeOutput();
    if (out.length === 0 || this.socket.destroyed) return;
    this.socket.cork();
    for (const chunk of out) this.socket.write(chunk);
    this.socket.uncork();
  }

  /** Arm the deadline of the stage the engine waits in; `progress` restarts it. */
  private arm(progress: boolean): void {
    if (this.finished) return;
    const stage = this.session.stage;
    if (!progress && stage === this.armedStage && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedStage = stage;
    const ms = stageTimeout(stage, this.options.timeouts);
    if (ms <= 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.finished) return;
      this.hard = true;
      this.session.timeout();
      this.pump();
      this.close(true);
    }, ms);
  }

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

  /** Feed the message to the engine, one chunk at a time, waiting for the socket to drain. */
  private async streamContent(): Promise<void> {
    if (this.contentStarted || !this.options.openContent) {
      if (!this.options.openContent) {
        this.session.contentFailed('no message content to send');
        this.pump();
      }
      return;
    }
    this.contentStarted = true;
    let it: AsyncIterator<Uint8Array> | undefined;
    try {
      it = this.options.openContent();
      while (!this.finished && this.session.bodyPending) {
        if (!this.session.wantsContent || this.socket.writableNeedDrain) {
          await this.changed();
          continue;
        }
        const r = await it.next();
        if (this.finished || !this.session.bodyPending) break;
        if (r.done) {
          this.session.contentEnd();
        } else {
          this.session.content(r.value);
          this.options.onEvent({ type: 'content', bytes: r.value.length });
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
      try {
        await it?.return?.();
      } catch {
        /* ignored */
      }
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
    this.options.onEvent({ type: 'tls', ...this.tls });
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
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    const sock = this.socket;
    if (now || this.hard || sock.destroyed) {
      sock.destroy();
    } else {
      // Postfix closes right after QUIT; wait only until our bytes are handed to the kernel.
      sock.end(() => sock.destroy());
      setTimeout(() => sock.destroy(), 1000).unref();
    }
    this.notify();
    this.resolveRun({
      capabilities: this.session.capabilities,
      tls: this.tls,
      contentOpened: this.contentStarted,
      tlsHandshakeFailed: this.tlsHandshakeFailed,
      tlsCheckFailure: this.tlsCheckFailure,
      stsTestingFailure: this.stsTestingFailure,
      aborted: this.aborted,
    });
  }
}
