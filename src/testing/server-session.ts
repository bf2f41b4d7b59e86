/**
 * One accepted connection of the test server: the SMTP (RFC 5321) or LMTP (RFC 2033) server
 * side, with PIPELINING (RFC 2920), CHUNKING (RFC 3030), STARTTLS (RFC 3207), AUTH (RFC 4954),
 * fault injection and recording. Replies produced while handling one socket read are written
 * together in one write, as Postfix's smtpd flushes when its input buffer runs dry.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { DotUnstuffer } from './dot-unstuffer.js';
import { announcedKeywords, ehloKeywords, ehloReply } from './ehlo.js';
import { DEFAULT_GARBAGE, type Fault, type FaultBook, type FaultPoint, type Step } from './faults.js';
import { LineReader } from './line-reader.js';
import { MessageSink } from './message-sink.js';
import type { AuthAttempt, ResolvedOptions, ScriptContext } from './options.js';
import { newSessionRecord, type ReceivedTransaction, type ServerSessionRecord } from './recorded.js';
import { encodeReply, replyCode, replyLines, stripEnhancedCodes } from './reply.js';
import { SaslExchange, type ExchangeOutcome } from './sasl-exchange.js';
import { createSaslMechanism } from './sasl-server.js';
import { checkMailParams, checkRcptParams, hasNonAscii, parsePathArgument, splitParam } from './smtp-args.js';

/** What a session needs from its server. */
export interface SessionHost {
  /** The current options (they may change between sessions through `configure()`). */
  readonly options: ResolvedOptions;
  readonly faults: FaultBook;
  readonly secureContext: SecureContext | undefined;
  readonly requestCert: boolean;
  /** A MAIL command was accepted: a transaction starts. */
  transactionStarted(tx: ReceivedTransaction): void;
  /** A transaction completed or was aborted. */
  transactionEnded(tx: ReceivedTransaction): void;
  /** The socket closed. */
  sessionEnded(session: ServerSession): void;
  /** A scripting callback threw, or the server itself failed. */
  reportError(err: unknown): void;
}

type Mode =
  | 'command' // reading command lines
  | 'sasl' // reading SASL response lines
  | 'data' // reading a DATA body
  | 'bdat' // reading a BDAT payload
  | 'handshake' // STARTTLS or wrapper-mode handshake in progress
  | 'stalled' // a stall fault: read and discard everything
  | 'closed'; // closing or closed: discard everything

/** Postfix `smtpd_recipient_overshoot_limit`: excess RCPTs that do not count as errors. */
const RECIPIENT_OVERSHOOT_LIMIT = 1000;
/** RCPT commands recorded per transaction at most (memory bound for a flood). */
const MAX_RECORDED_RCPTS = 10_000;
/** How long a server-side close waits for the client to close before it resets. */
const LINGER_MS = 2000;
/** Commands that must end a pipelined group (RFC 2920 §3.1), plus STARTTLS and AUTH. */
const GROUP_ENDERS = new Set(['EHLO', 'HELO', 'LHLO', 'DATA', 'VRFY', 'EXPN', 'NOOP', 'STARTTLS', 'AUTH', 'TURN']);
/** Commands subject to `rejectUnauthPipelining` (Postfix checks them at sender, recipient and data restrictions). */
const PIPELINING_CHECKED = new Set(['MAIL', 'RCPT', 'DATA']);

export class ServerSession {
  readonly record: ServerSessionRecord;
  private socket: Socket;
  private readonly opts: ResolvedOptions;
  private mode: Mode = 'command';
  private readonly reader: LineReader;
  private out: Buffer[] = [];
  private announced = new Map<string, string>();
  private inTls = false;
  private greetingRejected = false;
  private closing: 'server' | 'fault' | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private readHadCommand = false;
  private detached = false;

  private tx: ReceivedTransaction | undefined;
  private txCount = 0;
  private xforward: Record<string, string> = {};
  private errorCount = 0;
  private junkCount = 0;
  private overshoot = 0;
  /** RCPTs of this transaction beyond MAX_RECORDED_RCPTS (not recorded). */
  private rcptOverflow = 0;

  // Content transfer state.
  private sink: MessageSink | undefined;
  private unstuffer: DotUnstuffer | undefined;
  private transferFaultChecked = false;
  private bdatRemaining = 0;
  private bdatSize = 0;
  private bdatLast = false;
  private bdatChunk = 0;
  /** The reply every BDAT of this transaction gets once one has failed (payload still read). */
  private bdatError: string | undefined;
  /** The error reply for the BDAT being read, if it fails. */
  private bdatReject: string | undefined;
  /** Replies a `data-transfer` reply fault already sent for the content being read. */
  private earlyReplies: string[] | undefined;

  private sasl: SaslExchange | undefined;

  constructor(
    socket: Socket,
    index: number,
    private readonly host: SessionHost,
  ) {
    this.socket = socket;
    this.opts = host.options;
    this.record = newSessionRecord(index, socket.remoteAddress);
    this.reader = new LineReader(this.opts.maxLineLength, this.opts.maxAuthLineLength);
    this.attach(socket);
    if (this.opts.wrapperMode) {
      // Postfix smtpd_tls_wrappermode: TLS from the first octet, greeting after the handshake.
      this.startTls(() => this.guard(() => this.greet()));
    } else {
      this.guard(() => this.greet());
    }
  }

  /** The socket has closed. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Destroy the connection now (server.close()). */
  destroy(): void {
    if (this.ended) return;
    if (this.closing === undefined) this.closing = 'server';
    this.mode = 'closed';
    this.socket.destroy();
  }

  /** Stop recording into the server's lists (after `reset()`); the connection goes on. */
  detach(): void {
    this.detached = true;
  }

  // ---------------------------------------------------------------- socket plumbing

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('error', this.onError);
    s.on('close', this.onClose);
    s.on('timeout', this.onTimeout);
    s.on('drain', this.onDrain);
    if (this.opts.idleTimeout > 0) s.setTimeout(this.opts.idleTimeout);
  }

  private readonly onError = (err: Error): void => {
    if (this.mode === 'handshake' && this.record.tlsError === undefined) this.record.tlsError = err.message;
    // ECONNRESET, EPIPE and TLS errors end the session; 'close' follows.
  };

  private readonly onClose = (): void => {
    if (this.ended) return;
    this.ended = true;
    this.mode = 'closed';
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.record.closedBy = this.closing ?? 'client';
    this.record.ended = true;
    this.abortTransaction('disconnect');
    this.host.sessionEnded(this);
  };

  private readonly onTimeout = (): void => {
    if (this.mode === 'stalled' || this.mode === 'closed' || this.ended) return;
    if (this.mode === 'handshake') {
      this.closing ??= 'server';
      this.socket.destroy();
      return;
    }
    // Postfix smtpd_timeout.
    this.send(`421 4.4.2 ${this.opts.hostname} Error: timeout exceeded`);
    this.closeGracefully('server');
    this.flush();
  };

  private readonly onDrain = (): void => {
    if (this.socket.isPaused() && !this.ended) this.socket.resume();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.mode === 'stalled' || this.mode === 'closed' || this.mode === 'handshake') return;
    this.readHadCommand = false;
    let pos = 0;
    this.guard(() => {
      while (pos < chunk.length) {
        const m = this.mode;
        if (m === 'data') pos = this.consumeData(chunk, pos);
        else if (m === 'bdat') pos = this.consumeBdat(chunk, pos);
        else if (m === 'command' || m === 'sasl') pos = this.consumeLine(chunk, pos);
        else break;
      }
    });
    if (this.readHadCommand) this.record.reads++;
    this.flush();
  };

  /** Run server code; a bug in it ends this session with a 421, never the process. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.host.reportError(err);
      if (this.mode !== 'closed' && !this.ended) {
        this.send(`421 4.3.0 ${this.opts.hostname} Error: internal test server error`);
        this.closeGracefully('server');
      }
    }
  }

  /**
   * Call a scripting callback. When it throws, the error is reported to the server
   * (`server.errors`) and the client gets a 451 instead.
   */
  private script<T>(f: () => T): T | string {
    try {
      return f();
    } catch (err) {
      this.host.reportError(err);
      const msg = err instanceof Error ? err.message : String(err);
      return `451 4.3.0 Error: test script failed: ${msg.replace(/[\r\n]+/g, ' ')}`;
    }
  }

  /** Write every queued reply in one write. Pauses reading while the client does not read. */
  private flush(): void {
    if (this.out.length === 0 || this.ended || this.socket.destroyed || this.socket.writableEnded) {
      this.out = [];
      return;
    }
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    if (!this.socket.write(data) && this.mode !== 'closed') this.socket.pause();
  }

  /** FIN after the queued replies; read and discard until the client closes (or LINGER_MS). */
  private closeGracefully(by: 'server' | 'fault'): void {
    if (this.mode === 'closed') return;
    this.closing ??= by;
    this.mode = 'closed';
    this.flush();
    this.socket.setTimeout(0);
    this.socket.resume();
    this.socket.end();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER_MS);
    this.lingerTimer.unref();
  }

  /** Abrupt close after the replies already queued (a `drop` fault). */
  private dropNow(): void {
    this.closing ??= 'fault';
    this.mode = 'closed';
    const pending = this.out;
    this.out = [];
    if (pending.length > 0 && !this.socket.destroyed) {
      this.socket.write(Buffer.concat(pending), () => this.socket.destroy());
      // If the write cannot complete (client not reading), do not wait for it.
      const t = setTimeout(() => this.socket.destroy(), 50);
      t.unref();
    } else {
      this.socket.destroy();
    }
  }

  /** Reply to nothing from now on; keep reading and discarding (a `stall` fault). */
  private stallNow(): void {
    this.flush();
    this.mode = 'stalled';
    this.socket.setTimeout(0);
    this.socket.resume();
  }

  // ---------------------------------------------------------------- replies and faults

  private transcript(line: string): void {
    const t = this.record.transcript;
    if (t.length < this.opts.transcriptLimit) t.push(line);
  }

  /** Queue a reply (lines joined with `\n`); a 421 closes the connection afterwards. */
  private send(text: string, closeBy: 'server' | 'fault' = 'server', closeOn421 = true): void {
    for (const l of replyLines(text)) this.transcript(`S: ${l}`);
    this.out.push(Buffer.from(encodeReply(text), 'utf8'));
    if (closeOn421 && replyCode(text) === 421) this.closeGracefully(closeBy);
  }

  /** A reply the server makes up itself: without enhanced codes when ENHANCEDSTATUSCODES is off. */
  private own(text: string): string {
    return this.opts.extensions.enhancedStatusCodes ? text : stripEnhancedCodes(text);
  }

  /**
   * Reply at a step unless a fault takes over. Returns the reply sent, or undefined when a fault
   * sent none (drop, stall, garbage). `countError`: a 4xx/5xx counts toward the hard error limit.
   */
  private stepReply(step: Step, text: string, point: Omit<FaultPoint, 'step' | 'session'> = {}, countError = true): string | undefined {
    const f = this.takeFault(step, point);
    if (f !== undefined) return this.applyFault(f);
    this.send(text);
    if (countError && replyCode(text) >= 400 && replyCode(text) !== 421) this.countError();
    return text;
  }

  private takeFault(step: Step, point: Omit<FaultPoint, 'step' | 'session'>): Fault | undefined {
    const faults = this.host.faults;
    if (!faults.has(step)) return undefined;
    return faults.take({ step, session: this.record.index, ...point });
  }

  private applyFault(f: Fault): string | undefined {
    switch (f.action) {
      case 'drop':
        this.dropNow();
        return undefined;
      case 'stall':
        this.stallNow();
        return undefined;
      case 'garbage': {
        const g = f.garbage ?? DEFAULT_GARBAGE;
        this.transcript(`S: <garbage ${JSON.stringify(g)}>`);
        this.out.push(Buffer.from(g, 'latin1'));
        if (f.closeAfter ?? true) this.closeGracefully('fault');
        return undefined;
      }
      case 'reply': {
        const text = f.reply!;
        const close = f.closeAfter ?? replyCode(text) === 421;
        this.send(text, 'fault', false);
        if (close) this.closeGracefully('fault');
        return text;
      }
    }
  }

  /** Postfix smtpd_hard_error_limit: the error counter, reset when a message is delivered. */
  private countError(): void {
    this.errorCount++;
    this.record.errors++;
  }

  private checkErrorLimit(): void {
    const limit = this.opts.hardErrorLimit;
    if (limit > 0 && this.errorCount >= limit && this.mode !== 'closed' && this.mode !== 'stalled') {
      this.send(`421 4.7.0 ${this.opts.hostname} Error: too many errors`);
    }
  }

  private ctx(rcptIndex?: number): ScriptContext {
    const c: ScriptContext = {
      session: this.record.index,
      transaction: this.tx ? this.tx.index : this.txCount,
      accepted: this.tx ? this.tx.accepted.slice() : [],
    };
    if (rcptIndex !== undefined) c.rcptIndex = rcptIndex;
    return c;
  }

  // ---------------------------------------------------------------- greeting

  private greet(): void {
    const text = this.opts.greeting;
    const sent = this.stepReply('connect', text, {}, false);
    if (sent !== undefined) {
      const code = replyCode(sent);
      // RFC 5321 §3.1: after a 554 greeting, only QUIT is accepted (503 to everything else).
      if (code >= 400 && code !== 421) this.greetingRejected = true;
    }
    this.flush();
  }

  // ---------------------------------------------------------------- command lines

  private consumeLine(chunk: Buffer, pos: number): number {
    const ev = this.reader.next(chunk, pos);
    switch (ev.kind) {
      case 'partial':
        return chunk.length;
      case 'skipped':
        return ev.end;
      case 'too-long':
        this.readHadCommand = true;
        this.transcript('C: <line too long>');
        if (this.mode === 'sasl') this.endSasl();
        this.send(this.own('500 5.5.0 Error: line too long'));
        this.countError();
        this.checkErrorLimit();
        return ev.end;
      case 'line': {
        this.readHadCommand = true;
        const more = ev.end < chunk.length;
        if (this.mode === 'sasl') this.saslResponse(ev.line.toString('utf8'));
        else this.command(ev.line.toString('utf8'), more);
        this.checkErrorLimit();
        // STARTTLS: whatever followed in this read is plaintext injection (RFC 3207 §4.2).
        if (this.mode === 'handshake') return chunk.length;
        return ev.end;
      }
    }
  }

  private command(line: string, more: boolean): void {
    this.transcript(`C: ${line}`);
    const sp = line.indexOf(' ');
    const verb = (sp === -1 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp === -1 ? '' : line.slice(sp + 1).trim();

    let violation = false;
    // BDAT is followed by its payload by design; its check happens after the payload.
    if (more && verb !== 'QUIT' && verb !== 'BDAT') {
      if (!this.announced.has('PIPELINING') || GROUP_ENDERS.has(verb)) {
        this.record.pipeliningViolations++;
        violation = !this.announced.has('PIPELINING') && this.opts.rejectUnauthPipelining && PIPELINING_CHECKED.has(verb);
      }
    }
    if (this.greetingRejected && verb !== 'QUIT') {
      this.send(this.own('503 5.5.1 Error: no SMTP service'));
      this.countError();
      return;
    }
    const pipeliningReply = violation ? `503 5.5.0 <${verb}>: Improper use of SMTP command pipelining` : undefined;

    switch (verb) {
      case 'EHLO':
      case 'HELO':
      case 'LHLO':
        return this.hello(verb, arg);
      case 'MAIL':
        return this.mail(arg, pipeliningReply);
      case 'RCPT':
        return this.rcpt(arg, pipeliningReply);
      case 'DATA':
        return this.data(arg, pipeliningReply);
      case 'BDAT':
        return this.bdat(arg, more);
      case 'RSET':
        return this.rset(arg);
      case 'NOOP':
        this.junk();
        this.stepReply('noop', this.own('250 2.0.0 Ok'));
        return;
      case 'VRFY':
        this.junk();
        if (arg === '') this.simple(this.own('501 5.5.4 Syntax: VRFY address'));
        else this.simple(this.own(`252 2.0.0 ${arg}`));
        return;
      case 'QUIT':
        return this.quit();
      case 'STARTTLS':
        return this.starttls(arg);
      case 'AUTH':
        return this.auth(arg);
      case 'XFORWARD':
        return this.xforwardCommand(arg);
      case 'CONNECT':
      case 'GET':
      case 'POST':
        // Postfix smtpd_forbidden_commands: a web proxy or browser, not an SMTP client.
        this.send(this.own('221 2.7.0 Error: I can break rules, too. Goodbye.'));
        this.closeGracefully('server');
        return;
      case '':
        this.simple(this.own('500 5.5.2 Error: bad syntax'));
        return;
      default:
        this.simple(this.own('502 5.5.2 Error: command not recognized'));
        return;
    }
  }

  /** A reply that is no fault step. */
  private simple(text: string): void {
    this.send(text);
    const code = replyCode(text);
    if (code >= 400 && code !== 421) this.countError();
  }

  /** Postfix smtpd_junk_command_limit: NOOP, RSET, VRFY beyond the limit count as errors. */
  private junk(): void {
    const limit = this.opts.junkCommandLimit;
    if (limit > 0 && this.junkCount++ >= limit) this.countError();
  }

  private hello(verb: 'EHLO' | 'HELO' | 'LHLO', arg: string): void {
    const step: Step = verb === 'EHLO' ? 'ehlo' : verb === 'HELO' ? 'helo' : 'lhlo';
    const lmtp = this.opts.protocol === 'lmtp';
    let reply: string;
    let ok = false;
    if (lmtp && verb !== 'LHLO') {
      // RFC 2033 §4.1: an LMTP server does not speak SMTP's greeting commands.
      reply = this.own('500 5.5.1 Error: command not recognized');
    } else if (!lmtp && verb === 'LHLO') {
      reply = this.own('502 5.5.2 Error: command not recognized');
    } else if (verb === 'EHLO' && !this.opts.ehlo) {
      reply = this.own('502 5.5.2 Error: command not recognized');
    } else if (arg === '') {
      reply = this.own(`501 5.5.4 Syntax: ${verb} hostname`);
    } else {
      ok = true;
      reply = verb === 'HELO' ? `250 ${this.opts.hostname}` : ehloReply(this.opts.hostname, ehloKeywords(this.opts, this.inTls), this.opts.ehloStyle);
    }
    const sent = this.stepReply(step, reply, {}, true);
    if (sent === undefined || !ok || replyCode(sent) !== 250) return;
    // RFC 5321 §4.1.4: EHLO/HELO resets the transaction state.
    this.abortTransaction('rset');
    this.record.helo = arg;
    this.record.heloVerb = verb;
    this.announced = verb === 'HELO' ? new Map() : announcedKeywords(sent);
    this.record.announced = [...this.announced.keys()];
  }

  private mail(arg: string, pipeliningReply: string | undefined): void {
    const o = this.opts;
    let error: string | undefined;
    const parsed = parsePathArgument(arg, 'FROM');
    if (o.protocol === 'lmtp' && this.record.heloVerb === undefined) error = this.own('503 5.5.1 Error: send LHLO first');
    else if (this.tx) error = this.own('503 5.5.1 Error: nested MAIL command');
    else if (parsed === undefined) error = this.own('501 5.5.4 Syntax: MAIL FROM:<address>');
    else error = checkMailParams(parsed.params, this.announced);
    if (error === undefined && parsed !== undefined) {
      const size = sizeParam(parsed.params);
      // RFC 1870 §6.2: a declared size over the fixed limit is refused at MAIL.
      if (o.extensions.size !== false && o.extensions.size > 0 && size !== undefined && size > o.extensions.size) {
        error = this.own('552 5.3.4 Message size exceeds fixed limit');
      } else if (hasNonAscii(parsed.address) && !hasParam(parsed.params, 'SMTPUTF8')) {
        // RFC 6531 §3.4: a UTF-8 address needs the SMTPUTF8 parameter.
        error = this.own('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
      } else if (pipeliningReply !== undefined) {
        error = this.own(pipeliningReply);
      }
    }
    if (error !== undefined || parsed === undefined) {
      this.stepReply('mail', error ?? '');
      return;
    }
    const index = this.txCount;
    const onMail = o.onMail;
    const script = onMail
      ? this.script(() => onMail(parsed.address, parsed.params.slice(), { session: this.record.index, transaction: index, accepted: [] }))
      : undefined;
    const sent = this.stepReply('mail', script ?? this.own('250 2.1.0 Ok'));
    if (sent === undefined || replyCode(sent) < 200 || replyCode(sent) > 299) return;
    this.txCount++;
    const tx: ReceivedTransaction = {
      session: this.record.index,
      index,
      mailFrom: parsed.address,
      mailParams: parsed.params,
      mailReply: sent,
      rcpts: [],
      accepted: [],
      bdatChunks: [],
      size: 0,
      replies: [],
      queueId: randomBytes(5).toString('hex').toUpperCase(),
      complete: false,
    };
    if (Object.keys(this.xforward).length > 0) {
      tx.xforward = this.xforward;
      this.xforward = {};
    }
    this.tx = tx;
    this.overshoot = 0;
    this.rcptOverflow = 0;
    this.bdatError = undefined;
    if (!this.detached) this.host.transactionStarted(tx);
  }

  private rcpt(arg: string, pipeliningReply: string | undefined): void {
    const o = this.opts;
    const tx = this.tx;
    if (tx === undefined) {
      this.stepReply('rcpt', this.own('503 5.5.1 Error: need MAIL command'));
      return;
    }
    const parsed = parsePathArgument(arg, 'TO');
    const rcptIndex = tx.rcpts.length + this.rcptOverflow;
    const point = { rcptIndex, ...(parsed ? { address: parsed.address } : {}) };
    let error: string | undefined;
    let countError = true;
    if (parsed === undefined) error = this.own('501 5.5.4 Syntax: RCPT TO:<address>');
    else if (parsed.address === '') error = this.own('501 5.1.3 Bad recipient address syntax');
    else error = checkRcptParams(parsed.params, this.announced);
    if (error === undefined && parsed !== undefined) {
      if (hasNonAscii(parsed.address) && !hasParam(tx.mailParams, 'SMTPUTF8')) {
        error = this.own('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
      } else if (o.maxRecipients > 0 && tx.accepted.length >= o.maxRecipients) {
        // Postfix smtpd_recipient_limit; only an overshoot beyond 1000 counts as an error.
        error = this.own('452 4.5.3 Error: too many recipients');
        countError = this.overshoot++ >= RECIPIENT_OVERSHOOT_LIMIT;
      } else if (pipeliningReply !== undefined) {
        error = this.own(pipeliningReply);
      }
    }
    if (error !== undefined || parsed === undefined) {
      const sent = this.stepReply('rcpt', error ?? '', point, countError);
      if (parsed !== undefined) this.recordRcpt(tx, { address: parsed.address, params: parsed.params, reply: sent ?? '' });
      return;
    }
    const onRcpt = o.onRcpt;
    const script = onRcpt ? this.script(() => onRcpt(parsed.address, parsed.params.slice(), this.ctx(rcptIndex))) : undefined;
    const sent = this.stepReply('rcpt', script ?? this.own('250 2.1.5 Ok'), point);
    this.recordRcpt(tx, { address: parsed.address, params: parsed.params, reply: sent ?? '' });
    if (sent !== undefined && replyCode(sent) >= 200 && replyCode(sent) <= 299) tx.accepted.push(parsed.address);
  }

  private recordRcpt(tx: ReceivedTransaction, r: ReceivedTransaction['rcpts'][number]): void {
    if (tx.rcpts.length < MAX_RECORDED_RCPTS) tx.rcpts.push(r);
    else this.rcptOverflow++;
  }

  /** The reply to DATA or BDAT when no recipient was accepted. */
  private noRecipients(): string {
    // Postfix: 554 (SMTP). RFC 2033 §4.2: an LMTP server fails DATA with 503.
    return this.own(this.opts.protocol === 'lmtp' ? '503 5.5.1 Error: no valid recipients' : '554 5.5.1 Error: no valid recipients');
  }

  private data(arg: string, pipeliningReply: string | undefined): void {
    const tx = this.tx;
    let error: string | undefined;
    if (arg !== '') error = this.own('501 5.5.4 Syntax: DATA');
    else if (tx === undefined) error = this.own('503 5.5.1 Error: need RCPT command');
    else if (tx.bdatChunks.length > 0) error = this.own('503 5.5.1 Error: DATA after BDAT');
    else if (tx.accepted.length === 0) error = this.noRecipients();
    else if (pipeliningReply !== undefined) error = this.own(pipeliningReply);
    const sent = this.stepReply('data', error ?? '354 End data with <CR><LF>.<CR><LF>');
    if (tx !== undefined && sent !== undefined) tx.dataReply = sent;
    if (error !== undefined || tx === undefined || sent === undefined || replyCode(sent) !== 354) return;
    tx.method = 'DATA';
    this.startContent(tx);
    this.bdatChunk = 0;
    const sink = this.sink!;
    this.unstuffer = new DotUnstuffer((b) => sink.write(b));
    this.mode = 'data';
  }

  private startContent(tx: ReceivedTransaction): void {
    const limit = this.opts.extensions.size;
    const keep = Math.min(this.opts.maxKeptData, limit !== false && limit > 0 ? limit : Infinity);
    this.sink = new MessageSink(!this.opts.discardData, keep);
    tx.size = 0;
    this.transferFaultChecked = false;
    this.earlyReplies = undefined;
  }

  /** Consume DATA body octets from `chunk` at `pos`; returns the new position. */
  private consumeData(chunk: Buffer, pos: number): number {
    if (!this.transferFaultChecked) {
      this.transferFaultChecked = true;
      if (this.transferFault(0)) return chunk.length;
    }
    const body = pos === 0 ? chunk : chunk.subarray(pos);
    const used = this.unstuffer!.push(body);
    this.tx!.size = this.sink!.size;
    if (this.unstuffer!.done) {
      this.unstuffer = undefined;
      this.mode = 'command';
      this.endOfData(pos + used < chunk.length);
    }
    return pos + used;
  }

  /**
   * The `data-transfer` fault for the content now arriving. Returns true when the rest of the
   * read must be dropped (the session no longer reads content).
   */
  private transferFault(chunk: number): boolean {
    const f = this.takeFault('data-transfer', { chunk });
    if (f === undefined) return false;
    if (f.action === 'reply') {
      // An early reply: it takes the place of the reply this content would get (end of data:
      // one per accepted recipient in LMTP), and the rest of the content is read silently.
      const endsData = this.mode === 'data' || this.bdatLast;
      const n = endsData && this.opts.protocol === 'lmtp' && this.tx ? Math.max(this.tx.accepted.length, 1) : 1;
      const early: string[] = [];
      for (let i = 0; i < n && this.mode !== 'closed'; i++) {
        this.applyFault(f);
        early.push(f.reply!);
      }
      this.earlyReplies = early;
    } else {
      this.applyFault(f);
    }
    return this.mode !== 'data' && this.mode !== 'bdat';
  }

  /** End of data reached (DATA "." or BDAT LAST): reply, per recipient in LMTP. */
  private endOfData(pipelined: boolean): void {
    const tx = this.tx!;
    const sink = this.sink!;
    this.sink = undefined;
    const sizeLimit = this.opts.extensions.size;
    const overLimit = sizeLimit !== false && sizeLimit > 0 && sink.size > sizeLimit;
    const m = sink.finish();
    tx.size = m.size;
    tx.sha256 = m.sha256;
    if (m.data !== undefined) tx.data = m.data;
    if (tx.method === 'DATA') this.transcript(`C: <${m.size} octets of message content>`);

    const lmtp = this.opts.protocol === 'lmtp';
    const n = lmtp ? tx.accepted.length : 1;
    const early = this.earlyReplies;
    if (early !== undefined) {
      this.earlyReplies = undefined;
      this.finishTransaction(tx, early);
      return;
    }
    let replies: string[];
    if (pipelined && !this.announced.has('PIPELINING') && this.opts.rejectUnauthPipelining) {
      this.record.pipeliningViolations++;
      replies = fill(n, this.own('503 5.5.0 <END-OF-MESSAGE>: Improper use of SMTP command pipelining'));
    } else if (overLimit) {
      // RFC 1870 §6.3: the message went over the announced SIZE.
      replies = fill(n, this.own('552 5.3.4 Error: message file too big'));
    } else {
      const onData = this.opts.onData;
      const script = onData ? this.script(() => onData(tx, this.ctx())) : undefined;
      replies = [];
      for (let i = 0; i < n; i++) {
        const s = Array.isArray(script) ? script[i] : script;
        replies.push(s ?? (lmtp ? this.own(`250 2.0.0 <${tx.accepted[i]}> Ok`) : this.own(`250 2.0.0 Ok: queued as ${tx.queueId}`)));
      }
    }
    let answered = true;
    let delivered = false;
    let failed = 0;
    for (let i = 0; i < n; i++) {
      const point = lmtp ? { rcptIndex: i, address: tx.accepted[i]! } : {};
      const sent = this.stepReply('dot', replies[i]!, point, false);
      if (sent === undefined) {
        // drop or stall: unanswered. Garbage without closing: the server thinks it replied.
        if (this.mode === 'closed' || this.mode === 'stalled') {
          answered = false;
          break;
        }
        tx.replies.push('');
        continue;
      }
      tx.replies.push(sent);
      const code = replyCode(sent);
      if (code >= 200 && code <= 299) delivered = true;
      else failed++;
      if (this.mode === 'closed') {
        answered = i === n - 1;
        break;
      }
    }
    this.countOutcome(delivered, failed);
    if (answered) this.finishTransaction(tx);
  }

  /** Error bookkeeping after the end-of-data replies. */
  private countOutcome(delivered: boolean, failed: number): void {
    if (!delivered && failed > 0) this.countError();
    if (delivered) {
      // "errors ... without delivering mail": a delivered message clears the counters.
      this.errorCount = 0;
      this.junkCount = 0;
    }
  }

  /** The end of data was answered: the transaction is over (RFC 5321 §4.1.1.4). */
  private finishTransaction(tx: ReceivedTransaction, earlyReplies?: string[]): void {
    if (earlyReplies !== undefined) {
      tx.replies.push(...earlyReplies);
      const ok = earlyReplies.filter((r) => replyCode(r) >= 200 && replyCode(r) <= 299).length;
      this.countOutcome(ok > 0, earlyReplies.length - ok);
    }
    tx.complete = true;
    if (this.tx === tx) this.tx = undefined;
    this.bdatError = undefined;
    if (!this.detached) this.host.transactionEnded(tx);
  }

  private bdat(arg: string, more: boolean): void {
    // RFC 3030 §2: BDAT <chunk-size> [LAST]
    const m = /^([0-9]{1,15})(?: +(LAST))? *$/i.exec(arg);
    if (!this.announced.has('CHUNKING')) {
      // Not announced: BDAT is an unknown command, and its payload will be read as commands.
      this.simple(this.own('502 5.5.2 Error: command not recognized'));
      return;
    }
    if (!m) {
      // Without a size the payload cannot be skipped: refuse and close.
      this.send(this.own('501 5.5.4 Syntax: BDAT count [LAST]'));
      this.closeGracefully('server');
      return;
    }
    const size = Number(m[1]);
    const last = m[2] !== undefined;
    const tx = this.tx;
    let reject: string | undefined;
    if (tx === undefined) reject = this.own('503 5.5.1 Error: need RCPT command');
    else if (this.bdatError !== undefined) reject = this.bdatError;
    else if (tx.accepted.length === 0) reject = this.noRecipients();
    this.bdatReject = reject;
    this.bdatRemaining = size;
    this.bdatSize = size;
    this.bdatLast = last;
    this.transferFaultChecked = false;
    this.earlyReplies = undefined;
    if (tx !== undefined && reject === undefined) {
      this.bdatChunk = tx.bdatChunks.length;
      if (this.bdatChunk === 0) {
        tx.method = 'BDAT';
        this.startContent(tx);
      }
    } else {
      this.bdatChunk = tx ? tx.bdatChunks.length : 0;
    }
    this.mode = 'bdat';
    if (size === 0) this.finishBdat(more);
  }

  /** Consume BDAT payload octets; returns the new position. */
  private consumeBdat(chunk: Buffer, pos: number): number {
    if (!this.transferFaultChecked) {
      this.transferFaultChecked = true;
      if (this.transferFault(this.bdatChunk)) return chunk.length;
    }
    const take = Math.min(this.bdatRemaining, chunk.length - pos);
    if (this.bdatReject === undefined && this.sink !== undefined) {
      this.sink.write(chunk.subarray(pos, pos + take));
      this.tx!.size = this.sink.size;
    }
    this.bdatRemaining -= take;
    const end = pos + take;
    if (this.bdatRemaining === 0) this.finishBdat(end < chunk.length);
    return end;
  }

  private finishBdat(pipelined: boolean): void {
    this.mode = 'command';
    this.transcript(`C: <${this.bdatSize} octets of message content>`);
    const tx = this.tx;
    const step: Step = this.bdatLast ? 'dot' : 'bdat';
    if (this.bdatReject !== undefined || tx === undefined) {
      const reply = this.bdatReject ?? this.own('503 5.5.1 Error: need RCPT command');
      this.bdatReject = undefined;
      if (this.earlyReplies !== undefined) {
        this.earlyReplies = undefined;
        return;
      }
      // A refused chunk gets one reply, also BDAT LAST in LMTP (as DATA's 503, RFC 2033 §4.2).
      this.stepReply(step, reply, { chunk: this.bdatChunk });
      return;
    }
    tx.bdatChunks.push(this.bdatSize);
    if (pipelined && !this.announced.has('PIPELINING') && this.opts.rejectUnauthPipelining && !this.bdatLast) {
      // RFC 3030 §4.2 without PIPELINING: wait for each BDAT reply. The transaction fails.
      this.record.pipeliningViolations++;
      this.bdatError = this.own('503 5.5.0 <BDAT>: Improper use of SMTP command pipelining');
      this.stepReply('bdat', this.bdatError, { chunk: this.bdatChunk });
      return;
    }
    if (!this.bdatLast) {
      if (this.earlyReplies !== undefined) this.earlyReplies = undefined;
      else this.stepReply('bdat', this.own(`250 2.0.0 ${this.bdatSize} octets received`), { chunk: this.bdatChunk }, false);
      return;
    }
    this.endOfData(pipelined);
  }

  private rset(arg: string): void {
    this.junk();
    if (arg !== '') {
      this.stepReply('rset', this.own('501 5.5.4 Syntax: RSET'));
      return;
    }
    this.abortTransaction('rset');
    this.xforward = {};
    this.stepReply('rset', this.own('250 2.0.0 Ok'));
  }

  private quit(): void {
    this.record.quit = true;
    this.abortTransaction('quit');
    const sent = this.stepReply('quit', this.own('221 2.0.0 Bye'), {}, false);
    if (sent !== undefined && this.mode !== 'closed') this.closeGracefully('server');
  }

  /** End the open transaction without completing it. */
  private abortTransaction(why: 'rset' | 'quit' | 'disconnect'): void {
    const tx = this.tx;
    if (tx === undefined) return;
    this.tx = undefined;
    this.bdatError = undefined;
    if (this.sink !== undefined) {
      tx.size = this.sink.size;
      this.sink = undefined;
    }
    this.unstuffer = undefined;
    tx.aborted = why;
    if (!this.detached) this.host.transactionEnded(tx);
  }

  // ---------------------------------------------------------------- STARTTLS

  private starttls(arg: string): void {
    const o = this.opts;
    let error: string | undefined;
    if (arg !== '') error = this.own('501 5.5.4 Syntax: STARTTLS');
    else if (this.inTls) error = this.own('554 5.5.1 Error: TLS already active');
    else if (!o.extensions.starttls) error = this.own('502 5.5.1 Error: command not implemented');
    else if (this.host.secureContext === undefined) error = this.own('454 4.7.0 TLS not available due to local problem');
    else if (this.tx !== undefined) error = this.own('503 5.5.1 Error: MAIL transaction in progress');
    const sent = this.stepReply('starttls', error ?? this.own('220 2.0.0 Ready to start TLS'));
    if (error !== undefined || sent === undefined || replyCode(sent) !== 220 || this.mode === 'closed') return;
    this.flush();
    this.startTls();
  }

  /**
   * Wrap the socket in TLS (server side). Anything already received in plaintext is discarded
   * and the EHLO is forgotten (RFC 3207 §4.2).
   */
  private startTls(then?: () => void): void {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    raw.removeListener('timeout', this.onTimeout);
    raw.removeListener('drain', this.onDrain);
    raw.setTimeout(0);
    this.reader.clear();
    this.mode = 'handshake';
    this.inTls = true;
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.host.secureContext!,
      requestCert: this.host.requestCert,
      rejectUnauthorized: false,
    });
    this.socket = secure;
    this.attach(secure);
    secure.once('secure', () => {
      if (this.mode === 'closed') return;
      this.record.tls = true;
      const cipher = secure.getCipher();
      const info: NonNullable<ServerSessionRecord['tlsInfo']> = {
        protocol: secure.getProtocol() ?? '',
        cipher: cipher.name,
      };
      const sni = (secure as TLSSocket & { servername?: string | false }).servername;
      if (typeof sni === 'string' && sni !== '') info.servername = sni;
      const peer = secure.getPeerCertificate();
      if (peer && peer.raw) info.peerCertificateSha256 = createHash('sha256').update(peer.raw).digest('hex');
      this.record.tlsInfo = info;
      this.mode = 'command';
      // RFC 3207 §4.2: discard what the client said before TLS.
      this.announced = new Map();
      this.record.announced = [];
      delete this.record.helo;
      delete this.record.heloVerb;
      this.xforward = {};
      then?.();
    });
  }

  // ---------------------------------------------------------------- AUTH

  private authAnnounced(): boolean {
    const a = this.opts.extensions.auth;
    return a !== false && a.length > 0 && (!this.opts.tlsAuthOnly || this.inTls);
  }

  private auth(arg: string): void {
    const sp = arg.indexOf(' ');
    const mechanism = (sp === -1 ? arg : arg.slice(0, sp)).toUpperCase();
    const initial = sp === -1 ? undefined : arg.slice(sp + 1).trim();
    let error: string | undefined;
    if (!this.authAnnounced()) error = this.own('503 5.5.1 Error: authentication not enabled');
    else if (this.record.auth !== undefined) error = this.own('503 5.5.1 Error: already authenticated');
    else if (this.tx !== undefined) error = this.own('503 5.5.1 Error: MAIL transaction in progress');
    else if (mechanism === '') error = this.own('501 5.5.4 Syntax: AUTH mechanism');
    if (error !== undefined) {
      this.simple(error);
      return;
    }
    const offered = this.opts.extensions.auth || [];
    const mech = offered.includes(mechanism)
      ? createSaslMechanism(mechanism, {
          users: this.opts.users,
          hostname: this.opts.hostname,
          peerCertificate: this.record.tlsInfo?.peerCertificateSha256,
        })
      : undefined;
    if (mech === undefined) {
      // RFC 4954 §4: 504 for a mechanism the server does not support.
      this.finishAuth(mechanism, undefined, this.own('504 5.5.4 Unrecognized authentication type'), false);
      return;
    }
    this.sasl = new SaslExchange(mechanism, mech, {
      decide: (attempt) => this.decideAuth(attempt),
      own: (text) => this.own(text),
    });
    this.saslOutcome(this.sasl.start(initial));
  }

  private saslResponse(line: string): void {
    this.transcript(`C: ${line}`);
    this.saslOutcome(this.sasl!.response(line));
  }

  private saslOutcome(o: ExchangeOutcome): void {
    if (o.kind === 'challenge') {
      this.mode = 'sasl';
      this.reader.sasl = true;
      this.send(o.line);
      return;
    }
    const s = this.sasl!;
    this.finishAuth(s.mechanism, s.username, o.reply, o.success);
  }

  /** onAuth, else the users table, else accept (ANONYMOUS always, when enabled). */
  private decideAuth(attempt: AuthAttempt): string {
    const onAuth = this.opts.onAuth;
    const decision = onAuth ? this.script(() => onAuth(attempt, this.ctx())) : undefined;
    if (typeof decision === 'string') return decision;
    const ok = decision ?? attempt.verified ?? (this.opts.users === undefined || attempt.mechanism === 'ANONYMOUS');
    return this.own(ok ? '235 2.7.0 Authentication successful' : '535 5.7.8 Error: authentication failed: authentication failure');
  }

  private finishAuth(mechanism: string, username: string | undefined, reply: string, success: boolean): void {
    this.sasl = undefined;
    this.endSasl();
    const sent = this.stepReply('auth', reply, {}, true);
    const attempt: ServerSessionRecord['authAttempts'][number] = { mechanism, reply: sent ?? '' };
    if (username !== undefined) attempt.username = username;
    this.record.authAttempts.push(attempt);
    if (sent !== undefined && success && replyCode(sent) === 235) {
      this.record.auth = { mechanism, username: username ?? '' };
    }
  }

  private endSasl(): void {
    this.sasl = undefined;
    this.reader.sasl = false;
    if (this.mode === 'sasl') this.mode = 'command';
  }

  // ---------------------------------------------------------------- XFORWARD

  /** Postfix XFORWARD_README: `XFORWARD name=value ...` before MAIL; only when announced. */
  private xforwardCommand(arg: string): void {
    const allowed = this.opts.extensions.xforward;
    if (allowed === false || allowed.length === 0) {
      this.simple(this.own('550 5.7.0 Error: insufficient authorization'));
      return;
    }
    if (this.tx !== undefined) {
      this.simple(this.own('503 5.5.1 Error: MAIL transaction in progress'));
      return;
    }
    const attrs: Record<string, string> = {};
    const parts = arg.split(' ').filter((p) => p !== '');
    if (parts.length === 0) {
      this.simple(this.own('501 5.5.4 Syntax: XFORWARD attribute=value...'));
      return;
    }
    for (const p of parts) {
      const { key, value } = splitParam(p);
      if (value === undefined || !allowed.includes(key)) {
        this.simple(this.own(`501 5.5.4 Bad XFORWARD attribute name: ${key}`));
        return;
      }
      attrs[key] = value;
    }
    Object.assign(this.xforward, attrs);
    this.simple(this.own('250 2.0.0 Ok'));
  }
}

function fill(n: number, s: string): string[] {
  return Array.from({ length: n }, () => s);
}

function sizeParam(params: readonly string[]): number | undefined {
  for (const p of params) {
    const { key, value } = splitParam(p);
    if (key === 'SIZE' && value !== undefined) return Number(value);
  }
  return undefined;
}

function hasParam(params: readonly string[], name: string): boolean {
  return params.some((p) => splitParam(p).key === name);
}
