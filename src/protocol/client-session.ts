/**
 * The sans-IO SMTP/LMTP client engine: bytes in, bytes out, events out. No sockets, no
 * timers, no promises (DESIGN.md "The engine's contract"; h11 is the model).
 *
 * The conversation follows Postfix's smtp_proto.c (POSTFIX-BEHAVIOR.md §1.3):
 * - two cursors: the sender writes commands as far as the rules allow, the receiver matches
 *   replies to the commands in the order they were written (the `pending` queue);
 * - with PIPELINING (RFC 2920) one flight is MAIL, RCPT × n, DATA (or BDAT), holding at most
 *   4096 unanswered command octets; without it every command waits for the previous reply;
 * - course corrections: RSET after a rejected MAIL or DATA or when no recipient was accepted,
 *   a lone "." when DATA was accepted with no recipient;
 * - every recipient of a transaction gets exactly one outcome per session (Postfix's
 *   mark-and-sweep, §1.0 I-1), asserted here: marking twice, or ending a session with an
 *   unmarked recipient, throws.
 *
 * The adapter's loop: `receive(bytes)` / `timeout()` / `connectionLost()` in; `nextEvent()`
 * and `takeOutput()` out; `stage` says which deadline applies while a reply is awaited.
 */
import { ContentEncoder, encodeContent } from './content-encoder.js';
import { encodeMailFrom, encodeRcptTo } from './command-encoder.js';
import { encodeXtext } from './xtext.js';
import { concatBytes, hasEightBit, utf8Bytes } from './bytes.js';
import { ContentHookError, MimeConversionError, MimeState, type CheckReport } from '../content/mime-state.js';
import type { BodyCheck, HeaderCheck, RewriteAddress } from '../content/hooks.js';
import { parseEhlo, noCapabilities, type Capabilities } from './ehlo-parser.js';
import { parseMailbox } from './address.js';
import { ReplyParser } from './reply-parser.js';
import type { Reply } from './reply.js';
import type { LocalReason, RepliedCommand, TlsResultType, Why } from './why.js';
import type { SaslMechanism } from './sasl-exchange.js';
import { SaslExchange } from './sasl-exchange.js';

export interface SessionConfig {
  protocol: 'smtp' | 'lmtp';
  /** Postfix `smtp_helo_name` / `lmtp_lhlo_name`. */
  heloName: string;
  /** Postfix `smtp_always_send_ehlo` (true): EHLO even when the greeting lacks "ESMTP". */
  alwaysSendEhlo?: boolean;
  /** Postfix `smtp_never_send_ehlo` (false). */
  neverSendEhlo?: boolean;
  /** Postfix `smtp_skip_quit_response`: SMTP true, LMTP false (PROTO-23). */
  skipQuitResponse?: boolean;
  /** Postfix `smtp_discard_ehlo_keywords`. */
  discardEhloKeywords?: readonly string[];
  /** Postfix `smtp_line_length_limit` (998). */
  lineLengthLimit?: number;
  /** Longest reply line kept (Postfix `line_length_limit`, 2048). */
  replyLineLimit?: number;
  /** Most lines in one reply before the server is judged broken (bounded memory). */
  maxReplyLines?: number;
  /** Postfix `smtp_reply_filter`. */
  replyFilter?: (line: string) => string;
  /** Postfix `smtp_quote_rfc821_envelope` (true). */
  quoteRfc821Envelope?: boolean;
  /** Use RFC 3030 CHUNKING (BDAT) when the server offers it (mailwire; default true). */
  chunking?: boolean;
  /** Largest BDAT chunk for a message of unknown length (default 65536). */
  bdatChunkSize?: number;
  /** Unanswered command octets allowed in one pipelined flight (Postfix: 4096). */
  pipeliningWindow?: number;
  /**
   * STARTTLS policy seam (the TLS issue fills in levels): `never` (level none), `opportunistic`
   * (may: STARTTLS when offered), `required` (encrypt and above: no STARTTLS is a site failure).
   */
  startTls?: 'never' | 'opportunistic' | 'required';
  /** The connection is already inside TLS (wrapper mode, RFC 8314). */
  inTls?: boolean;
  /**
   * SASL: the mechanism for this server, chosen after EHLO (and after TLS), or `undefined` for
   * no AUTH, `{ fail }` for credentials without a usable mechanism (4.7.0), or `{ cached }`: a
   * cached 535 for these credentials (Postfix's auth failure cache; AUTH is not sent).
   */
  sasl?: (caps: Capabilities, inTls: boolean, tlsVerified: boolean) => SaslMechanism | undefined | { fail: string } | { cached: Reply };
  /** Postfix `smtp_send_dummy_mail_auth`. */
  sendDummyMailAuth?: boolean;
  /** `smtp_tls_block_early_mail_reply` (mailwire default true). */
  blockEarlyMailReply?: boolean;
  /** Wrapper mode: the TLS connection was authenticated (for REQUIRETLS). */
  tlsVerified?: boolean;
  /**
   * QUIT once the queued transactions are done (default true). False keeps the session open
   * and idle for more (a pool); `quit()` ends it.
   */
  quitAfterTransaction?: boolean;
  /**
   * Transaction pipelining: the next transaction's MAIL, RCPT and DATA/BDAT may follow the
   * previous transaction's end of data before its reply (RFC 2920 §3.1 allows commands after
   * the message content; RFC 3030 after BDAT LAST). Only with PIPELINING; default false.
   */
  transactionPipelining?: boolean;
  /**
   * MX-7 loop check (Postfix, SMTP on port 25): a server whose EHLO reply starts with our own
   * name is us; the session fails with 5.4.6 at a best-preference MX, else 4.4.6.
   */
  loopCheck?: { name: string; nexthop: string; bestMx: boolean };
}

/** One mail transaction: what `deliver()` hands the engine. */
export interface TransactionInput {
  sender: string;
  /** The recipients still to try in this session; `index` identifies them in outcomes. */
  recipients: ReadonlyArray<{
    index: number;
    address: string;
    notify?: ReadonlyArray<'SUCCESS' | 'FAILURE' | 'DELAY'> | 'NEVER';
    orcpt?: string;
  }>;
  /** The message in memory (raw, as given), or `stream`: the adapter feeds it on `needContent`. */
  content: { kind: 'bytes'; bytes: Uint8Array } | { kind: 'stream' };
  /** Declared size (RFC 1870) for a stream; measured for bytes. */
  size?: number;
  /** Declared body type; detected for bytes. */
  body?: '7BIT' | '8BITMIME';
  /**
   * RFC 6531: `true` asks for SMTPUTF8 (sent when the server has it); `'auto'` (default) asks
   * when an address is not ASCII; `false` never (a non-ASCII address then cannot be sent).
   */
  smtputf8?: boolean | 'auto';
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string };
  requireTls?: boolean;
  /**
   * A reused connection: RSET first, in the same flight as MAIL (Postfix probes a cached
   * session with RSET, POOL-8). If the probe fails and no reply of the transaction came, the
   * recipients get `not-sent` (send them again on a fresh connection).
   */
  probe?: boolean;
  /**
   * smtp_send_xforward_command (PROTO-18): the original client's attributes, sent before MAIL
   * in two commands (NAME ADDR PORT, then PROTO HELO IDENT SOURCE), each attribute only when
   * the server announces it. A non-2xx reply is only a warning (Postfix).
   */
  /**
   * Header lines put in front of the message (flags R, O, D: Return-Path, X-Original-To,
   * Delivered-To), formatted with CRLF. They count toward SIZE (REW-7).
   */
  prefix?: Uint8Array;
  /** The caller found UTF-8 in the message headers (PROTO-12): SMTPUTF8 is needed as for a UTF-8 address. */
  utf8Headers?: boolean;
  /**
   * MIME output conversion (PROTO-10, PROTO-11): 8-bit MIME becomes quoted-printable for a
   * server without 8BITMIME. `outputConversion` default true.
   */
  mime?: { outputConversion?: boolean; boundaryLengthLimit?: number; nestingLimit?: number; headerSizeLimit?: number };
  /** Content hooks (REW-1 .. REW-6), run while the message is written; see MimeState. */
  hooks?: { headerCheck?: HeaderCheck; bodyCheck?: BodyCheck; rewriteAddress?: RewriteAddress };
  xforward?: { name?: string; addr?: string; port?: string | number; proto?: string; helo?: string; ident?: string; domain?: 'LOCAL' | 'REMOTE' };
}

export type CommandKind =
  | 'greeting'
  | 'ehlo'
  | 'helo'
  | 'lhlo'
  | 'starttls'
  | 'auth'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'dot'
  | 'bdat'
  | 'bdat-last'
  | 'lone-dot'
  | 'rset'
  | 'probe'
  | 'xforward-name'
  | 'xforward-proto'
  | 'quit';

/**
 * What the engine waits for: the command whose reply is awaited (the receiver state, as in
 * Postfix), or `body` while the message is being written, `tls` while the adapter runs the
 * TLS handshake, `idle`, or `done`.
 */
export type Stage = CommandKind | 'body' | 'tls' | 'idle' | 'done';

export type SessionEvent =
  /** A line written; `tx` when it belongs to a transaction (its commands, its content). */
  | { type: 'send'; line: string; tx?: number }
  /** A reply line read; `tx` when it answers a transaction's command. */
  | { type: 'receive'; line: string; tx?: number }
  | { type: 'warning'; message: string }
  | { type: 'capabilities'; capabilities: Capabilities }
  /** The handshake (greeting, EHLO, STARTTLS, AUTH) is complete (Postfix counts the session now). */
  | { type: 'ready' }
  /** Exactly one per transaction recipient per session; `tx` is the id `transaction()` returned. */
  | { type: 'outcome'; tx: number; index: number; why: Why }
  /** A transaction is over: every recipient has its outcome and every reply is in. */
  | { type: 'transactionDone'; tx: number }
  /** Feed the message of transaction `tx` now: `content()` while `wantsContent`, then `contentEnd()`. */
  | { type: 'needContent'; tx: number }
  /** A content hook acted on transaction `tx`'s message (info, warn, strip, a change). */
  | { type: 'content-check'; tx: number; report: CheckReport }
  /** Run the TLS handshake on the connection now, then `tlsEstablished()` or `tlsFailed()`. */
  | { type: 'startTls' }
  /** The conversation is over: close the connection (`reusable` is for the pool). */
  | { type: 'done'; reusable: boolean };

/** Postfix's texts for where a conversation broke (smtp_proto.c, checked against 3.7). */
const STAGE_TEXT: Record<Exclude<Stage, 'idle' | 'done'>, string> = {
  greeting: 'receiving the initial server greeting',
  ehlo: 'performing the EHLO handshake',
  helo: 'performing the HELO handshake',
  lhlo: 'performing the LHLO handshake',
  starttls: 'receiving the STARTTLS response',
  tls: 'performing the TLS handshake',
  auth: 'performing the SASL authentication',
  mail: 'sending MAIL FROM',
  rcpt: 'sending RCPT TO',
  data: 'sending DATA command',
  body: 'sending message body',
  bdat: 'sending message body',
  dot: 'sending end of data -- message may be sent more than once',
  'bdat-last': 'sending end of data -- message may be sent more than once',
  'lone-dot': 'sending end of data',
  rset: 'sending final RSET',
  probe: 'sending RSET probe',
  'xforward-name': 'sending XFORWARD name/address',
  'xforward-proto': 'sending XFORWARD protocol/helo_name',
  quit: 'sending QUIT',
};

interface Pending {
  kind: CommandKind;
  /** The receive() batch during which the command was written (early-reply check). */
  batch?: number;
  /** Command octets counted against the pipelining window. */
  bytes: number;
  /** For `rcpt`: position in the transaction's recipient list. */
  rcpt?: number;
  /** The transaction the command belongs to. */
  tx?: Transaction;
}

type RcptState = 'new' | 'sent' | 'accepted' | 'marked';

interface Transaction {
  id: number;
  input: TransactionInput;
  rcpts: Array<{ index: number; line?: string; state: RcptState }>;
  mailLine?: string;
  /** Started on a session that had carried or was carrying other transactions. */
  joined: boolean;
  /** XFORWARD commands still to write before MAIL, with their kinds. */
  xforward: Array<{ line: string; kind: 'xforward-name' | 'xforward-proto' }>;
  step: 'start' | 'mail' | 'rcpt' | 'data' | 'await-data' | 'body' | 'after-body' | 'abort' | 'end';
  nextRcpt: number;
  mailRejected: boolean;
  rcptRepliesDue: number;
  accepted: number[]; // positions, in RCPT order (LMTP maps end-of-data replies onto these)
  useBdat: boolean;
  dotStuff: boolean;
  prepared?: Uint8Array; // in-memory message, encoded
  encoder?: ContentEncoder;
  /** A streamed message goes through this first: content hooks, MIME downgrade. */
  filter?: MimeState;
  chunk: Uint8Array[];
  chunkBytes: number;
  chunkFailed: boolean;
  /** The adapter called contentEnd() (streams). */
  contentDone: boolean;
  /** Nothing more of the body goes out: "." or BDAT LAST was written, or the body was abandoned. */
  bodyEnded: boolean;
  early: Reply[]; // replies that arrived while the DATA body was being written
  lmtpDone: number; // LMTP end-of-data replies consumed
  /** RSET probe: 'sent' until its reply, then 'ok' or 'failed' ('closed': a 421, the server read nothing after it). */
  probe?: 'sent' | 'ok' | 'failed' | 'closed';
  /** Replies received for this transaction's MAIL/RCPT/DATA/BDAT/end of data. */
  replies: number;
  done: boolean;
}

const CRLF = '\r\n';

/** Take exactly `n` octets of buffered BDAT content, splitting a buffer when needed. */
function takeBytes(tx: { chunk: Uint8Array[]; chunkBytes: number }, n: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let left = n;
  while (left > 0) {
    const head = tx.chunk[0]!;
    if (head.length <= left) {
      parts.push(head);
      tx.chunk.shift();
      left -= head.length;
    } else {
      parts.push(head.subarray(0, left));
      tx.chunk[0] = head.subarray(left);
      left = 0;
    }
  }
  tx.chunkBytes -= n;
  return parts;
}

export class ClientSession {
  private readonly config: Required<
    Pick<
      SessionConfig,
      | 'protocol'
      | 'heloName'
      | 'alwaysSendEhlo'
      | 'neverSendEhlo'
      | 'skipQuitResponse'
      | 'lineLengthLimit'
      | 'quoteRfc821Envelope'
      | 'chunking'
      | 'bdatChunkSize'
      | 'pipeliningWindow'
      | 'startTls'
      | 'quitAfterTransaction'
      | 'transactionPipelining'
    >
  > &
    SessionConfig;
  private readonly parser: ReplyParser;
  private readonly events: SessionEvent[] = [];
  private out: Uint8Array[] = [];
  private pending: Pending[] = [{ kind: 'greeting', bytes: 0 }];
  private unanswered = 0;
  private phase: 'handshake' | 'tls' | 'auth' | 'ready' | 'closing' | 'done' = 'handshake';
  /** Transactions started and not yet done, in order (more than one with transaction pipelining). */
  private txs: Transaction[] = [];
  /** Transactions waiting to start. */
  private queue: Array<{ id: number; input: TransactionInput }> = [];
  private nextTxId = 1;
  private inTls: boolean;
  private esmtpGreeting = false;
  private sasl: SaslExchange | undefined;
  private quitSent = false;
  private quitWanted = false;
  private handshakeDone = false;
  /** receive() calls so far: a reply in the same batch as the command it answers came before it. */
  private batch = 0;
  private tlsVerified = false;
  /** Plaintext replies came right after the 220 to STARTTLS (and were discarded). */
  plaintextInjection = false;
  /** The command whose reply is being handled (for `failedStage`). */
  private handling: CommandKind | undefined;
  private protocolError = false;
  private broken = false;
  /** The command a 421 answered (RFC 5321 §3.8: the server closes after it). */
  private closedAt: CommandKind | undefined;
  /** A 421, an SMTPUTF8 mismatch or a failed probe: do not reuse (POOL-9). */
  private noReuse = false;

  /** What the server announced (after EHLO/LHLO; empty after HELO). */
  capabilities: Capabilities | undefined;
  /** The server's greeting. */
  greeting: Reply | undefined;
  /** The first failure that ended this session for all its recipients, if any (for `attempts`). */
  sessionFailure: Why | undefined;
  /** Where the session was when that failure happened. */
  failedStage: Stage | undefined;
  /** Transactions completed on this session. */
  transactionsDone = 0;

  constructor(config: SessionConfig) {
    this.config = {
      alwaysSendEhlo: true,
      neverSendEhlo: false,
      skipQuitResponse: config.protocol === 'smtp',
      lineLengthLimit: 998,
      quoteRfc821Envelope: true,
      chunking: true,
      bdatChunkSize: 65536,
      pipeliningWindow: 4096,
      startTls: 'never',
      quitAfterTransaction: true,
      transactionPipelining: false,
      ...config,
    };
    this.inTls = config.inTls ?? false;
    this.tlsVerified = config.tlsVerified ?? false;
    this.parser = new ReplyParser({
      ...(config.replyLineLimit !== undefined ? { lineLengthLimit: config.replyLineLimit } : {}),
      ...(config.maxReplyLines !== undefined ? { maxReplyLines: config.maxReplyLines } : {}),
      ...(config.replyFilter ? { replyFilter: config.replyFilter } : {}),
    });
  }

  // ---------------------------------------------------------------- inputs

  /**
   * Queue a mail transaction; it starts once the handshake is done and the transactions
   * before it allow (one at a time, or pipelined). Returns its id, which outcomes carry.
   */
  transaction(input: TransactionInput): number {
    if (this.phase === 'done' || this.phase === 'closing' || this.quitWanted) throw new Error('ClientSession: the session is over');
    const id = this.nextTxId++;
    this.queue.push({ id, input });
    if (this.phase === 'ready') this.pump();
    return id;
  }

  /** End an idle session politely (a pool closing it). */
  quit(): void {
    if (this.phase === 'done') return;
    this.quitWanted = true;
    if (this.phase === 'ready' && this.txs.length === 0 && this.queue.length === 0) {
      this.phase = 'closing';
      this.sendQuit();
      this.maybeFinish();
    } else if (this.phase === 'handshake' || this.phase === 'auth' || this.phase === 'tls') {
      this.finish();
    }
  }

  /** Bytes received from the server. */
  receive(bytes: Uint8Array): void {
    if (this.phase === 'done' || this.phase === 'tls') return;
    this.batch++;
    const replies = this.parser.feed(bytes);
    for (let i = 0; i < replies.length; i++) {
      if (this.stopped()) {
        // STARTTLS: what followed the 220 in plaintext is dropped, never acted on (RFC 3207
        // §4.2, CVE-2011-0411); say so, it is the server (or someone on the path) misbehaving.
        if ((this.phase as string) === 'tls') this.reportInjection(replies.length - i);
        break;
      }
      this.handleReply(replies[i]!);
    }
    if (this.parser.overflow && !this.stopped()) {
      this.failSession(
        {
          kind: 'local',
          reason: 'protocol',
          detail: `host sent a reply of more than ${this.config.maxReplyLines ?? 256} lines while ${this.stageText()}`,
        },
        false,
      );
    }
  }

  /** The stage deadline passed. */
  timeout(): void {
    if (this.phase === 'done') return;
    this.failSession({ kind: 'timeout', stage: this.stageText() }, false);
  }

  /** The connection was closed or broke. */
  connectionLost(): void {
    if (this.phase === 'done') return;
    const tx = this.bodyTx();
    // Postfix (LOST_CONNECTION_INSIDE_DATA): a premature failure reply to the body counts.
    if (tx && !tx.useBdat && tx.early.length > 0) {
      const reply = tx.early.find((r) => r.code >= 400) ?? undefined;
      if (reply) {
        tx.early = [];
        tx.replies++;
        this.markAccepted(tx, { kind: 'reply', reply, command: 'end of DATA' });
      }
    }
    this.failSession({ kind: 'lost', stage: this.stageText() }, false);
  }

  /** The caller aborted: every unmarked recipient gets `aborted`; nothing more is written. */
  abort(): void {
    if (this.phase === 'done') return;
    this.failSession({ kind: 'local', reason: 'aborted', detail: 'delivery aborted by the caller' }, false);
  }

  /**
   * The adapter finished the TLS handshake the engine asked for and the certificate passed
   * the level's check; `verified`: the server was authenticated (PKIX or DANE), which
   * REQUIRETLS needs.
   */
  tlsEstablished(info: { verified?: boolean } = {}): void {
    if (this.phase !== 'tls') throw new Error('ClientSession: no TLS handshake was asked for');
    this.inTls = true;
    this.tlsVerified = info.verified ?? false;
    this.phase = 'handshake';
    // RFC 3207 §4.2: forget everything learned before TLS, then EHLO again.
    this.capabilities = undefined;
    this.parser.reset();
    this.sendHello(this.config.protocol === 'lmtp' ? 'lhlo' : 'ehlo');
  }

  /** The TLS handshake failed: the session is forbidden (no QUIT, Postfix §1.6). */
  tlsFailed(detail: string): void {
    if (this.phase !== 'tls') return;
    this.failSession({ kind: 'local', reason: 'tls-handshake', detail, tlsFailure: { resultType: 'validation-failure', detail } }, false);
  }

  /**
   * TLS is up but the certificate failed the level's check (level > encrypt): 4.7.5 "Server
   * certificate not verified", and QUIT politely over TLS (Postfix §1.6). Nothing else is sent:
   * no credentials, no mail.
   */
  tlsNotVerified(detail: string, resultType: TlsResultType): void {
    if (this.phase === 'done') return;
    if (this.phase === 'tls') {
      this.inTls = true;
      this.phase = 'handshake';
      this.parser.reset();
    }
    this.failSession({ kind: 'local', reason: 'tls-not-verified', detail, tlsFailure: { resultType, detail } });
  }

  private reportInjection(replies: number): void {
    this.plaintextInjection = true;
    this.protocolError = true;
    this.events.push({
      type: 'warning',
      message: `server sent ${replies} more repl${replies === 1 ? 'y' : 'ies'} in plaintext right after its 220 to STARTTLS; discarded (response injection, CVE-2011-0411)`,
    });
  }

  /** Message content of the transaction in its body (stream transactions), while `wantsContent`. */
  content(chunk: Uint8Array): void {
    const tx = this.bodyTx();
    if (!tx || tx.contentDone || !tx.encoder) return;
    this.feed(tx, chunk, true);
  }

  /** Encode a piece of a streamed body: into the BDAT chunk, or straight out after DATA. */
  private feed(tx: Transaction, chunk: Uint8Array, pump: boolean): void {
    let data = chunk;
    if (tx.filter) {
      try {
        data = tx.filter.write(chunk);
      } catch (err) {
        this.contentFailed(contentWhy(err));
        return;
      }
    }
    const encoded = tx.encoder!.write(data);
    if (tx.useBdat) {
      if (encoded.length > 0) {
        tx.chunk.push(encoded);
        tx.chunkBytes += encoded.length;
      }
      if (pump) this.pump();
    } else if (encoded.length > 0) {
      this.out.push(encoded);
    }
  }

  /** End of the message (stream transactions). */
  contentEnd(): void {
    const tx = this.bodyTx();
    if (!tx || tx.contentDone || !tx.encoder) return;
    if (tx.filter) {
      let rest: Uint8Array;
      try {
        rest = tx.filter.end();
      } catch (err) {
        this.contentFailed(contentWhy(err));
        return;
      }
      if (rest.length > 0) this.feed(tx, rest, false);
      tx.filter = undefined;
    }
    const tail = tx.encoder.end();
    tx.contentDone = true;
    if (tx.useBdat) {
      if (tail.length > 0) tx.chunk.push(tail);
      tx.chunkBytes += tail.length;
    } else {
      tx.bodyEnded = true;
      if (tail.length > 0) this.out.push(tail);
      this.sendLine('.', { kind: 'dot', bytes: 0, tx }, false);
      const early = tx.early;
      tx.early = [];
      tx.step = 'after-body';
      for (const reply of early) this.handleReply(reply);
    }
    this.pump();
  }

  /**
   * The message could not be read (a string: stream error, 4.3.0) or could not be sent as it
   * is (a content hook or the MIME converter failed): the transaction being written fails with
   * it. Mid-body the only way to cancel is to drop the connection (Postfix smtp_mime_fail), so
   * the server never keeps part of the message; other transactions lose the connection.
   */
  contentFailed(reason: string | Why): void {
    if (this.phase === 'done') return;
    const why: Why = typeof reason === 'string' ? { kind: 'local', reason: 'message-source', detail: reason } : reason;
    const tx = this.bodyTx();
    if (!tx) return this.failSession(why, false);
    this.markUnmarked(tx, why);
    if (!this.sessionFailure) {
      this.sessionFailure = why;
      this.failedStage = 'body';
    }
    this.failSession({ kind: 'lost', stage: this.stageText() }, false);
  }

  /** Reading has stopped: the session is over, or the TLS handshake owns the connection. */
  private stopped(): boolean {
    return this.phase === 'done' || this.phase === 'tls';
  }

  // ---------------------------------------------------------------- outputs

  /** The next event, or undefined. */
  nextEvent(): SessionEvent | undefined {
    return this.events.shift();
  }

  /** Bytes to write now (in order), or an empty array. */
  takeOutput(): Uint8Array[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  /** What the engine waits for; the adapter arms the matching deadline (PROTO-29). */
  get stage(): Stage {
    if (this.phase === 'done') return 'done';
    if (this.phase === 'tls') return 'tls';
    const head = this.pending[0];
    if (head) return head.kind;
    if (this.bodyTx()) return 'body';
    return 'idle';
  }

  /** True while the engine takes message content (`content()`). */
  get wantsContent(): boolean {
    const tx = this.bodyTx();
    if (!tx || tx.contentDone || tx.input.content.kind !== 'stream') return false;
    // BDAT: take more only while less than one chunk waits to be sent (bounded memory).
    return !tx.useBdat || tx.chunkBytes <= this.config.bdatChunkSize;
  }

  /** True while a streamed body is still open (more content, or `contentEnd()`, is due). */
  get bodyPending(): boolean {
    return this.bodyTx() !== undefined;
  }

  /** The transaction whose streamed body is open (the one `content()` feeds), if any. */
  get bodyTransaction(): number | undefined {
    return this.bodyTx()?.id;
  }

  /** True once the conversation is over. */
  get done(): boolean {
    return this.phase === 'done';
  }

  /** Handshake done, no transaction in flight or queued: the session waits for work (a pool's idle). */
  get idle(): boolean {
    return this.phase === 'ready' && this.txs.length === 0 && this.queue.length === 0;
  }

  /** Transactions in flight or queued. */
  get load(): number {
    return this.txs.length + this.queue.length;
  }

  /** The connection may be used for another transaction (POOL-9): no protocol error, no failure, no 421. */
  get reusable(): boolean {
    return !this.broken && !this.protocolError && !this.quitSent && !this.quitWanted && !this.noReuse;
  }

  /** Inside TLS (after STARTTLS, or wrapper mode). */
  get tls(): boolean {
    return this.inTls;
  }

  // ---------------------------------------------------------------- replies

  private handleReply(reply: Reply): void {
    const owner = this.pending[0]?.tx?.id ?? (this.pending.length === 0 ? this.bodyTx()?.id : undefined);
    for (const line of reply.lines) this.events.push({ type: 'receive', line, ...(owner !== undefined ? { tx: owner } : {}) });
    if (reply.protocolError) this.protocolError = true;
    if (reply.code === 421) this.noReuse = true;
    // RFC 5321 §3.8: after a 421 the server closes; nothing written after that command was read.
    if (reply.code === 421 && this.closedAt === undefined && this.pending[0]) this.closedAt = this.pending[0].kind;
    const body = this.bodyTx();
    if (body && !body.useBdat && this.pending.length === 0) {
      body.early.push(reply); // read after ".", as Postfix does; or on EOF (connectionLost)
      return;
    }
    const head = this.pending[0];
    if (!head) {
      // Unsolicited: Postfix reads it as the reply to the next command. Keep that order.
      this.events.push({ type: 'warning', message: `unexpected reply before any command: ${reply.lines.join(' ')}` });
      this.protocolError = true;
      return;
    }
    this.handling = head.kind;
    try {
      this.dispatchReply(head, reply);
    } finally {
      this.handling = undefined;
    }
  }

  private dispatchReply(head: Pending, reply: Reply): void {
    const tx = head.tx;
    // LMTP end of data: one reply per accepted recipient (RFC 2033 §4.2) under one entry.
    if (!(this.config.protocol === 'lmtp' && (head.kind === 'dot' || head.kind === 'bdat-last') && tx && this.lmtpRepliesLeft(tx) > 1)) {
      this.pending.shift();
      this.unanswered -= head.bytes;
    }
    if (tx && head.kind !== 'probe' && head.kind !== 'rset' && head.kind !== 'lone-dot' && head.kind !== 'xforward-name' && head.kind !== 'xforward-proto') tx.replies++;
    switch (head.kind) {
      case 'greeting':
        return this.onGreeting(reply);
      case 'ehlo':
      case 'helo':
      case 'lhlo':
        return this.onHello(head.kind, reply);
      case 'starttls':
        return this.onStartTls(reply);
      case 'auth':
        return this.onAuth(reply);
      case 'probe':
        return this.onProbe(tx!, reply);
      case 'mail':
        return this.onMail(tx!, reply, head.batch);
      case 'rcpt':
        return this.onRcpt(tx!, head.rcpt!, reply);
      case 'data':
        return this.onData(tx!, reply);
      case 'dot':
      case 'bdat-last':
        return this.onEndOfData(tx!, reply);
      case 'bdat':
        return this.onChunk(tx!, reply);
      case 'xforward-name':
      case 'xforward-proto':
        // Postfix: a non-2xx reply to XFORWARD is logged and the transaction goes on.
        if (reply.code < 200 || reply.code > 299) {
          const what = head.kind === 'xforward-name' ? 'XFORWARD name/address command' : 'XFORWARD helo/protocol command';
          this.events.push({ type: 'warning', message: `host said: ${reply.lines.join(' ')} (in reply to ${what})` });
        }
        return this.pump();
      case 'lone-dot':
      case 'rset':
        return this.pump();
      case 'quit':
        return this.finish();
    }
  }

  private onGreeting(reply: Reply): void {
    this.greeting = reply;
    if (reply.code < 200 || reply.code > 299) {
      return this.refuse(reply, true);
    }
    this.esmtpGreeting = /\bESMTP\b/i.test(reply.lines.join(' '));
    if (this.config.protocol === 'lmtp') return this.sendHello('lhlo');
    // Postfix: EHLO when the greeting says ESMTP or smtp_always_send_ehlo; never with smtp_never_send_ehlo.
    const ehlo = !this.config.neverSendEhlo && (this.config.alwaysSendEhlo || this.esmtpGreeting);
    this.sendHello(ehlo ? 'ehlo' : 'helo');
  }

  private onHello(kind: 'ehlo' | 'helo' | 'lhlo', reply: Reply): void {
    if (reply.code >= 200 && reply.code <= 299) {
      const caps =
        kind === 'helo'
          ? noCapabilities(reply.lines[0]?.slice(4).split(/\s+/)[0] ?? '')
          : parseEhlo(reply.lines, { discardEhloKeywords: this.config.discardEhloKeywords ?? [] });
      for (const w of caps.warnings) this.events.push({ type: 'warning', message: w });
      this.capabilities = caps;
      this.events.push({ type: 'capabilities', capabilities: caps });
      const loop = this.config.loopCheck;
      if (loop && caps.serverName.toLowerCase() === loop.name.toLowerCase()) {
        this.events.push({ type: 'warning', message: `host replied to ${kind.toUpperCase()} with my own hostname ${loop.name}` });
        return this.failSession({ kind: 'loop', nexthop: loop.nexthop, greeted: { bestMx: loop.bestMx } });
      }
      return this.afterHello(caps);
    }
    // EHLO refused with anything but 421: try HELO (PROTO-3). LMTP has no fallback.
    if (kind === 'ehlo' && reply.code !== 421) return this.sendHello('helo');
    this.refuse(reply, false);
  }

  private afterHello(caps: Capabilities): void {
    const policy = this.config.startTls;
    if (!this.inTls && policy !== 'never') {
      if (caps.startTls) {
        this.sendLine('STARTTLS', { kind: 'starttls', bytes: 0 });
        return;
      }
      if (policy === 'required') {
        return this.failSession({
          kind: 'local',
          reason: 'starttls-missing',
          detail: 'TLS is required, but was not offered by host',
        });
      }
    }
    if (this.config.sasl && caps.auth.length > 0) {
      const choice = this.config.sasl(caps, this.inTls, this.tlsVerified);
      if (choice && 'fail' in choice) {
        return this.failSession({ kind: 'local', reason: 'sasl', detail: choice.fail });
      }
      if (choice && 'cached' in choice) {
        return this.failSession({ kind: 'reply', reply: choice.cached, command: 'AUTH', cached: true });
      }
      if (choice) {
        this.phase = 'auth';
        this.sasl = new SaslExchange(choice);
        const line = this.sasl.firstLine();
        this.sendLine(line.line, { kind: 'auth', bytes: 0 }, true, line.redacted);
        return;
      }
    }
    this.ready();
  }

  private onStartTls(reply: Reply): void {
    if (reply.code >= 200 && reply.code <= 299) {
      // RFC 3207 §4.2 / CVE-2011-0411: nothing received in plaintext after the 220 is used.
      this.parser.reset();
      this.phase = 'tls';
      this.events.push({ type: 'startTls' });
      return;
    }
    if (this.config.startTls === 'required') {
      return this.failSession({ kind: 'reply', reply, command: 'STARTTLS' });
    }
    this.events.push({ type: 'warning', message: `STARTTLS refused, continuing in plaintext: ${reply.lines.join(' ')}` });
    this.capabilities = this.capabilities ? { ...this.capabilities, startTls: false } : this.capabilities;
    this.afterHello(this.capabilities!);
  }

  private onAuth(reply: Reply): void {
    const sasl = this.sasl!;
    const step = sasl.reply(reply);
    if (step.kind === 'send') {
      this.sendLine(step.line, { kind: 'auth', bytes: 0 }, true, '<credentials>');
      return;
    }
    this.sasl = undefined;
    if (step.kind === 'done') {
      this.phase = 'handshake';
      return this.ready();
    }
    if (step.kind === 'reply') return this.failSession({ kind: 'reply', reply, command: 'AUTH' });
    this.failSession({ kind: 'local', reason: 'sasl', detail: step.detail });
  }

  private ready(): void {
    if (!this.handshakeDone) {
      this.handshakeDone = true;
      this.events.push({ type: 'ready' });
    }
    this.phase = 'ready';
    this.pump();
  }

  private onProbe(tx: Transaction, reply: Reply): void {
    const ok = reply.code >= 200 && reply.code <= 299;
    tx.probe = ok ? 'ok' : reply.code === 421 ? 'closed' : 'failed';
    if (!ok) {
      this.noReuse = true;
      this.events.push({ type: 'warning', message: `RSET probe of a reused connection failed: ${reply.lines.join(' ')}` });
    }
    this.pump();
  }

  private onMail(tx: Transaction, reply: Reply, sentInBatch: number | undefined): void {
    // Inside TLS, a reply to MAIL that was already there before MAIL was written is a
    // hijack sign (smtp_tls_block_early_mail_reply, CVE-2009-3555): site failure 4.7.0, then RSET.
    if (this.inTls && (this.config.blockEarlyMailReply ?? true) && sentInBatch === this.batch && !tx.input.probe && this.txs[0] === tx) {
      this.events.push({ type: 'warning', message: 'server violates the protocol: reply to MAIL FROM received before MAIL FROM was sent (possible CVE-2009-3555 attack)' });
      this.protocolError = true;
      tx.mailRejected = true;
      this.markUnmarked(tx, { kind: 'local', reason: 'unexpected-reply', detail: 'unexpected server message', reply });
      return this.pump();
    }
    if (reply.code < 200 || reply.code > 299) {
      tx.mailRejected = true;
      this.markUnmarked(tx, { kind: 'reply', reply, command: 'MAIL FROM' });
    }
    this.pump();
  }

  private onRcpt(tx: Transaction, pos: number, reply: Reply): void {
    tx.rcptRepliesDue--;
    const r = tx.rcpts[pos]!;
    if (tx.mailRejected || r.state === 'marked') return this.pump(); // already failed with MAIL
    if (reply.code >= 200 && reply.code <= 299) {
      r.state = 'accepted';
      tx.accepted.push(pos);
    } else {
      this.mark(tx, pos, { kind: 'reply', reply, command: 'RCPT TO' });
    }
    this.pump();
  }

  private onData(tx: Transaction, reply: Reply): void {
    if (reply.code >= 300 && reply.code <= 399) {
      if (this.liveAccepted(tx).length === 0) {
        // RFC 2920 §3.1: DATA accepted with no recipient; end it with a lone ".".
        this.sendLine('.', { kind: 'lone-dot', bytes: 0, tx }, false);
        tx.step = 'after-body';
        tx.bodyEnded = true;
        return this.pump();
      }
      return this.startBody(tx);
    }
    if (this.liveAccepted(tx).length > 0) this.markAccepted(tx, { kind: 'reply', reply, command: 'DATA' });
    tx.step = 'abort';
    this.pump();
  }

  private onChunk(tx: Transaction, reply: Reply): void {
    if (reply.code < 200 || reply.code > 299) {
      // RFC 3030 §2: a failed chunk fails the transaction (POSTFIX-BEHAVIOR.md §1.8).
      if (!tx.chunkFailed && this.liveAccepted(tx).length > 0) this.markAccepted(tx, { kind: 'reply', reply, command: 'BDAT' });
      tx.chunkFailed = true;
    }
    this.pump();
  }

  private onEndOfData(tx: Transaction, reply: Reply): void {
    const live = this.liveAccepted(tx);
    if (live.length === 0 || tx.chunkFailed || tx.mailRejected) {
      tx.lmtpDone = Number.MAX_SAFE_INTEGER; // one reply, nothing to apply it to
      return this.pump();
    }
    const success = reply.code >= 200 && reply.code <= 299;
    const why: Why = success ? { kind: 'success', reply } : { kind: 'reply', reply, command: 'end of DATA' };
    if (this.config.protocol === 'lmtp') {
      // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
      const pos = tx.accepted[tx.lmtpDone]!;
      tx.lmtpDone++;
      this.mark(tx, pos, why);
    } else {
      this.markAccepted(tx, why);
    }
    this.pump();
  }

  // ---------------------------------------------------------------- transaction

  /**
   * Start the next queued transaction when the ones before it allow: none in flight, or the
   * last one has written its end of data and transaction pipelining is on (with PIPELINING).
   */
  private maybeStartTransaction(): boolean {
    if (this.phase !== 'ready' || this.queue.length === 0) return false;
    const last = this.txs[this.txs.length - 1];
    if (last) {
      const pipelining = this.capabilities?.pipelining ?? false;
      if (!this.config.transactionPipelining || !pipelining) return false;
      if (!(last.step === 'after-body' || (last.step === 'end' && last.bodyEnded))) return false;
    }
    const next = this.queue.shift()!;
    this.startTransaction(next.id, next.input);
    return true;
  }

  private startTransaction(id: number, input: TransactionInput): void {
    const caps = this.capabilities ?? noCapabilities();
    const useBdat = this.config.chunking && caps.chunking;
    const tx: Transaction = {
      id,
      input,
      rcpts: input.recipients.map((r) => ({ index: r.index, state: 'new' as RcptState })),
      step: 'start',
      joined: this.transactionsDone > 0 || this.txs.length > 0,
      xforward: [],
      nextRcpt: 0,
      mailRejected: false,
      rcptRepliesDue: 0,
      accepted: [],
      useBdat,
      dotStuff: !useBdat,
      chunk: [],
      chunkBytes: 0,
      chunkFailed: false,
      contentDone: false,
      bodyEnded: false,
      early: [],
      lmtpDone: 0,
      replies: 0,
      done: false,
    };
    this.txs.push(tx);

    // RFC 6531: SMTPUTF8 is needed when asked for (or 'auto') and an address or a header really is UTF-8.
    const utf8 =
      input.utf8Headers === true ||
      [input.sender, ...input.recipients.map((r) => r.address)].some((a) => {
        const p = parseMailbox(a, a === input.sender ? 'sender' : 'recipient');
        return p.ok && p.utf8;
      });
    // Postfix: SMTPUTF8 goes on MAIL when the sender asked for it and the server has it; when
    // the server lacks it, delivery fails (5.6.7) only if UTF-8 is really present.
    const requested = input.smtputf8 === true || ((input.smtputf8 ?? 'auto') === 'auto' && utf8);
    const smtputf8 = requested && caps.smtputf8;
    if (requested && utf8 && !caps.smtputf8) {
      this.noReuse = true; // POOL-9: an SMTPUTF8 mismatch is not cached
      this.markUnmarked(tx, {
        kind: 'local',
        reason: 'smtputf8-required',
        detail: 'SMTPUTF8 is required, but was not offered by host',
      });
      return this.endLocally(tx);
    }

    // RFC 8689 §4.2.2: REQUIRETLS needs verified TLS and a server that announces REQUIRETLS;
    // otherwise 5.7.30, soft while another MX remains (Postfix SMTP_MISC_FAIL_SOFT_NON_FINAL).
    if (input.requireTls && (!this.inTls || !this.tlsVerified || !caps.requireTls)) {
      this.noReuse = true;
      this.markUnmarked(tx, {
        kind: 'local',
        reason: 'requiretls',
        detail: !this.inTls || !this.tlsVerified ? 'REQUIRETLS is required, but TLS was not verified with host' : 'REQUIRETLS is required, but was not offered by host',
      });
      return this.endLocally(tx);
    }

    // REW-7: the added header lines count toward a declared size.
    let size = input.size !== undefined && input.prefix ? input.size + input.prefix.length : input.size;
    let body = input.body;
    // PROTO-10: convert when the server lacks 8BITMIME, the message is not declared 7bit, and
    // it needs no SMTPUTF8 (such mail is never downgraded).
    const mayDowngrade = (input.mime?.outputConversion ?? true) && !caps.eightBitMime && body !== '7BIT' && !smtputf8;
    const hooks = input.hooks;
    const hooked = hooks !== undefined && (hooks.headerCheck !== undefined || hooks.bodyCheck !== undefined || hooks.rewriteAddress !== undefined);
    const mimeState = (downgrade: boolean, eightBitMessage: boolean) =>
      new MimeState({
        downgrade,
        eightBitMessage,
        ...(input.mime?.boundaryLengthLimit !== undefined ? { boundaryLengthLimit: input.mime.boundaryLengthLimit } : {}),
        ...(input.mime?.nestingLimit !== undefined ? { nestingLimit: input.mime.nestingLimit } : {}),
        ...(input.mime?.headerSizeLimit !== undefined ? { headerSizeLimit: input.mime.headerSizeLimit } : {}),
        ...(hooks?.headerCheck ? { headerCheck: hooks.headerCheck } : {}),
        ...(hooks?.bodyCheck ? { bodyCheck: hooks.bodyCheck } : {}),
        ...(hooks?.rewriteAddress ? { rewriteAddress: hooks.rewriteAddress } : {}),
        onCheck: (report) => this.events.push({ type: 'content-check', tx: tx.id, report }),
      });
    if (input.content.kind === 'bytes') {
      let raw = input.prefix && input.prefix.length > 0 ? concatBytes(input.prefix, input.content.bytes) : input.content.bytes;
      const eightBit = body === '8BITMIME' || (body === undefined && hasEightBit(raw));
      const downgrade = mayDowngrade && eightBit;
      if (downgrade || hooked) {
        // A message in memory goes through the hooks and the converter before MAIL: a
        // failure then costs no command, and SIZE is exact (REW-7).
        try {
          const m = mimeState(downgrade, eightBit);
          raw = concatBytes(m.write(raw), m.end());
        } catch (err) {
          this.markUnmarked(tx, contentWhy(err));
          return this.endLocally(tx);
        }
      }
      const scanned = body === undefined && !(downgrade || hooked);
      const encoded = encodeContent(raw, { lineLengthLimit: this.config.lineLengthLimit, dotStuff: tx.dotStuff }, scanned ? { eightBit } : undefined);
      tx.prepared = encoded.bytes;
      // RFC 1870 §3: the size of the message as sent, without dot-stuffing.
      size = encoded.size;
      body ??= encoded.eightBit ? '8BITMIME' : '7BIT';
    } else if (mayDowngrade || hooked) {
      // A stream is converted as it is written; its size after that is not known (SIZE left out).
      tx.filter = mimeState(mayDowngrade, body === '8BITMIME');
      size = undefined;
    }
    // Postfix smtp_xfer: a SIZE limit smaller than the message fails every recipient (no failover).
    if (caps.size > 0 && size !== undefined && size > caps.size) {
      this.markUnmarked(tx, {
        kind: 'local',
        reason: 'message-too-big',
        detail: `message size ${size} exceeds size limit ${caps.size} of server`,
      });
      return this.endLocally(tx);
    }
    const mail = encodeMailFrom(
      input.sender,
      {
        ...(size !== undefined ? { size } : {}),
        ...(body !== undefined ? { body } : {}),
        ...(input.dsn?.envid !== undefined ? { envid: input.dsn.envid } : {}),
        ...(input.dsn?.ret !== undefined ? { ret: input.dsn.ret } : {}),
        smtputf8,
        requireTls: input.requireTls ?? false,
        dummyMailAuth: this.config.sendDummyMailAuth ?? false,
        quoteRfc821Envelope: this.config.quoteRfc821Envelope,
      },
      caps,
    );
    if (!mail.ok) {
      this.markUnmarked(tx, { kind: 'local', reason: 'bad-sender', detail: mail.reason });
      return this.endLocally(tx);
    }
    tx.mailLine = mail.line;
    input.recipients.forEach((r, pos) => {
      const rcpt = encodeRcptTo(
        r.address,
        {
          ...(r.notify !== undefined ? { notify: r.notify } : {}),
          ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
          smtputf8,
          quoteRfc821Envelope: this.config.quoteRfc821Envelope,
        },
        caps,
      );
      if (rcpt.ok) tx.rcpts[pos]!.line = rcpt.line;
      else this.mark(tx, pos, { kind: 'local', reason: 'bad-recipient', detail: rcpt.reason });
    });
    if (!tx.rcpts.some((r) => r.line !== undefined)) return this.endLocally(tx);
    if (input.xforward) tx.xforward = xforwardLines(input.xforward, caps.xforward);
    if (input.probe) {
      // POOL-8: probe a reused connection with RSET, in the same flight as the transaction.
      this.sendLine('RSET', { kind: 'probe', bytes: 0, tx });
      tx.probe = 'sent';
    }
    tx.step = 'mail';
  }

  /** A transaction that ended before any command was written (all recipients marked locally). */
  private endLocally(tx: Transaction): void {
    tx.step = 'end';
    tx.bodyEnded = true;
  }

  /**
   * The sender cursor: write every command the rules allow now. Called after every input.
   */
  private pump(): void {
    if (this.phase === 'done') return;
    if (this.phase === 'ready') {
      for (let guard = 0; guard < 10_000; guard++) {
        // A retired transaction can let the next queued one start (without transaction pipelining).
        const progressed = this.pumpTransactions() || this.maybeStartTransaction() || this.retireTransactions();
        if (!progressed) break;
      }
      if (this.phase === 'ready' && this.txs.length === 0 && this.queue.length === 0) {
        if (this.config.quitAfterTransaction && this.transactionsDone > 0) this.quitWanted = true;
        if (this.quitWanted) {
          this.phase = 'closing';
          if (!this.quitSent) this.sendQuit();
        }
      }
    }
    if (this.phase === 'closing') this.maybeFinish();
  }

  /** Run each transaction's sender steps in order; true when anything was written or changed. */
  private pumpTransactions(): boolean {
    const pipelining = this.capabilities?.pipelining ?? false;
    let progressed = false;
    for (const tx of this.txs) {
      const before = tx.step;
      const outBefore = this.out.length;
      this.pumpOne(tx, pipelining);
      if (tx.step !== before || this.out.length !== outBefore) progressed = true;
      // A later transaction only moves once this one's sending is over.
      if (!(tx.step === 'after-body' || tx.step === 'end')) break;
    }
    return progressed;
  }

  private pumpOne(tx: Transaction, pipelining: boolean): void {
    for (;;) {
      switch (tx.step) {
        case 'mail': {
          const xf = tx.xforward[0];
          if (xf) {
            if (!this.canSend(xf.line, pipelining)) return;
            this.sendLine(xf.line, { kind: xf.kind, bytes: 0, tx });
            tx.xforward.shift();
            continue;
          }
          if (!this.canSend(tx.mailLine!, pipelining)) return;
          this.sendLine(tx.mailLine!, { kind: 'mail', bytes: 0, tx });
          tx.step = 'rcpt';
          continue;
        }
        case 'rcpt': {
          if (this.mustAbort(tx)) {
            tx.step = 'abort';
            continue;
          }
          while (tx.nextRcpt < tx.rcpts.length && tx.rcpts[tx.nextRcpt]!.line === undefined) tx.nextRcpt++;
          if (tx.nextRcpt >= tx.rcpts.length) {
            tx.step = 'data';
            continue;
          }
          const r = tx.rcpts[tx.nextRcpt]!;
          if (!this.canSend(r.line!, pipelining)) return;
          this.sendLine(r.line!, { kind: 'rcpt', bytes: 0, rcpt: tx.nextRcpt, tx });
          r.state = 'sent';
          tx.rcptRepliesDue++;
          tx.nextRcpt++;
          continue;
        }
        case 'data': {
          if (this.mustAbort(tx)) {
            tx.step = 'abort';
            continue;
          }
          if (tx.useBdat) {
            // Without PIPELINING, BDAT waits for the RCPT replies like any other command.
            if (!pipelining && this.pending.length > 0) return;
            this.startBody(tx);
            continue;
          }
          if (!this.canSend('DATA', pipelining)) return;
          this.sendLine('DATA', { kind: 'data', bytes: 0, tx });
          tx.step = 'await-data';
          return;
        }
        case 'await-data':
          return;
        case 'body':
          if (!tx.useBdat || tx.bodyEnded) return;
          if (tx.chunkFailed || this.mustAbort(tx)) {
            // Stop between chunks: nothing more is worth sending (RFC 3030 §2).
            tx.bodyEnded = true;
            tx.step = 'abort';
            continue;
          }
          // Full chunks of exactly bdatChunkSize, then the rest as LAST once the content ended;
          // without PIPELINING each chunk waits for the previous chunk's reply.
          if (!pipelining && this.pending.length > 0) return;
          if (tx.chunkBytes > this.config.bdatChunkSize) {
            this.sendBdat(tx, this.config.bdatChunkSize, false, takeBytes(tx, this.config.bdatChunkSize));
            continue;
          }
          if (!tx.contentDone) return;
          tx.bodyEnded = true;
          this.sendBdat(tx, tx.chunkBytes, true, takeBytes(tx, tx.chunkBytes));
          tx.step = 'after-body';
          continue;
        case 'after-body': {
          // QUIT may follow the end of data at once with PIPELINING, when nothing else comes.
          if (this.config.quitAfterTransaction && !this.quitSent && this.queue.length === 0 && this.txs[this.txs.length - 1] === tx) {
            if (pipelining || this.pending.length === 0) {
              this.quitWanted = true;
              this.sendQuit();
            }
          }
          return;
        }
        case 'abort': {
          // RSET after a rejected MAIL, DATA or chunk, or when no recipient was accepted.
          if (!pipelining && this.pending.length > 0) return;
          if (tx.rcptRepliesDue > 0 && !tx.mailRejected) return; // learn every RCPT outcome first
          this.sendLine('RSET', { kind: 'rset', bytes: 0, tx });
          tx.step = 'end';
          tx.bodyEnded = true;
          continue;
        }
        case 'end':
        case 'start':
          return;
      }
    }
  }

  /** Transactions whose every reply is in and every recipient marked are done (in order). */
  /** Drop the finished transactions at the head; true when any was dropped. */
  private retireTransactions(): boolean {
    let retired = false;
    while (this.txs.length > 0) {
      const tx = this.txs[0]!;
      if (!(tx.step === 'after-body' || tx.step === 'end')) return retired;
      if (this.pending.some((p) => p.tx === tx)) return retired;
      // Without PIPELINING, the next command (QUIT, the next transaction) waits for RSET's reply.
      for (let pos = 0; pos < tx.rcpts.length; pos++) {
        if (tx.rcpts[pos]!.state !== 'marked') {
          throw new Error(`ClientSession: transaction ended with recipient ${tx.rcpts[pos]!.index} unmarked (mark-and-sweep)`);
        }
      }
      tx.done = true;
      this.txs.shift();
      this.transactionsDone++;
      this.events.push({ type: 'transactionDone', tx: tx.id });
      retired = true;
    }
    return retired;
  }

  private mustAbort(tx: Transaction): boolean {
    if (tx.mailRejected) return true;
    // Every RCPT sent has its reply and none was accepted.
    return tx.rcptRepliesDue === 0 && tx.nextRcpt >= tx.rcpts.length && tx.accepted.length === 0 && this.allRcptsSent(tx);
  }

  private allRcptsSent(tx: Transaction): boolean {
    return tx.rcpts.every((r) => r.line === undefined || r.state !== 'new');
  }

  private startBody(tx: Transaction): void {
    tx.step = 'body';
    if (tx.input.content.kind === 'bytes') {
      const bytes = tx.prepared!;
      tx.prepared = undefined;
      tx.bodyEnded = true;
      if (tx.useBdat) {
        // The size is known: one BDAT n LAST (RFC 3030 §2).
        this.sendBdat(tx, bytes.length, true, [bytes]);
      } else {
        if (bytes.length > 0) this.out.push(bytes);
        this.events.push({ type: 'send', line: `<${bytes.length} octets of message content>`, tx: tx.id });
        this.sendLine('.', { kind: 'dot', bytes: 0, tx }, false);
      }
      tx.step = 'after-body';
      this.pump();
      return;
    }
    tx.encoder = new ContentEncoder({ lineLengthLimit: this.config.lineLengthLimit, dotStuff: tx.dotStuff });
    if (tx.input.prefix && tx.input.prefix.length > 0) this.feed(tx, tx.input.prefix, false);
    this.events.push({ type: 'needContent', tx: tx.id });
  }

  /** The transaction whose streamed body is open. */
  private bodyTx(): Transaction | undefined {
    const tx = this.txs.find((t) => t.step === 'body' && !t.bodyEnded && t.input.content.kind === 'stream');
    return tx;
  }

  private sendBdat(tx: Transaction, n: number, last: boolean, parts: Uint8Array[]): void {
    const line = last ? `BDAT ${n} LAST` : `BDAT ${n}`;
    this.sendLine(line, { kind: last ? 'bdat-last' : 'bdat', bytes: 0, tx });
    for (const p of parts) this.out.push(p);
    if (n > 0) this.events.push({ type: 'send', line: `<${n} octets of message content>`, tx: tx.id });
  }

  // ---------------------------------------------------------------- failures and marks

  /** A greeting, EHLO-421, HELO or LHLO failure: "refused to talk to me" (Postfix smtp_helo). */
  private refuse(reply: Reply, greeting: boolean): void {
    this.failSession({ kind: 'refused', reply, greeting });
  }

  /**
   * A failure that ends the session for every unmarked recipient (Postfix smtp_site_fail /
   * smtp_stream_except). `polite`: the connection is sound, so QUIT is sent.
   */
  private failSession(why: Why, polite = true): void {
    if (why.kind !== 'refused' && why.kind !== 'reply') this.broken = true;
    this.noReuse = true;
    for (const tx of this.txs) {
      // A reused connection whose RSET probe failed, with no reply of this transaction: the
      // recipients were never really tried; send them again elsewhere (POOL-8). Not when its
      // end of data went out in the probe's flight and the server may have taken it before the
      // connection broke (unless the probe got a 421: then the server read nothing after it).
      // That is the lost-reply window after the end of data, with Postfix's warning.
      const probeFailed = tx.probe !== undefined && tx.probe !== 'ok' && tx.replies === 0;
      // Likewise a transaction that joined a session already in use, when the connection broke
      // before any reply of its own and before its end of data: nothing of it can be committed.
      const joinedAndCut = tx.joined && tx.replies === 0 && !tx.bodyEnded && (why.kind === 'lost' || why.kind === 'timeout');
      const notSent = (probeFailed && (!tx.bodyEnded || tx.probe === 'closed')) || joinedAndCut;
      // A transaction whose end of data went out (BDAT LAST in the flight of its MAIL and RCPT,
      // or behind a probe or another transaction) and whose reply never came: the server may
      // have taken it before the connection broke (a reset also discards replies already sent),
      // so the reason is the lost-reply window after the end of data, with Postfix's warning,
      // whatever reply was awaited first. Postfix never writes an end of data before the
      // replies to MAIL and RCPT, so its receiver-state text cannot say this. Not after a 421:
      // the server read nothing after it.
      const endWritten = tx.step === 'after-body' && this.closedAt === undefined;
      const afterEnd: Why | undefined =
        !notSent && (probeFailed || endWritten) && (why.kind === 'lost' || why.kind === 'timeout') ? { kind: why.kind, stage: STAGE_TEXT[tx.useBdat ? 'bdat-last' : 'dot'] } : undefined;
      this.markUnmarked(tx, notSent ? { kind: 'not-sent', detail: 'the reused connection failed its RSET probe' } : (afterEnd ?? why));
    }
    for (const q of this.queue) {
      // Transactions that never started: before the handshake they share its failure; after
      // it (queued behind others on a working connection) they were never sent.
      const w: Why = this.handshakeDone ? { kind: 'not-sent', detail: 'the connection ended before this transaction started' } : why;
      for (const r of q.input.recipients) this.events.push({ type: 'outcome', tx: q.id, index: r.index, why: w });
      this.events.push({ type: 'transactionDone', tx: q.id });
    }
    this.queue = [];
    if (!this.sessionFailure) {
      this.sessionFailure = why;
      this.failedStage = this.handling ?? this.stage;
    }
    for (const tx of this.txs) {
      tx.done = true;
      this.events.push({ type: 'transactionDone', tx: tx.id });
    }
    this.txs = [];
    if (polite && !this.quitSent && this.phase !== 'tls') {
      this.phase = 'closing';
      this.pending = this.pending.filter((p) => p.kind === 'quit');
      this.sendQuit();
      this.maybeFinish();
      return;
    }
    this.finish();
  }

  private sendQuit(): void {
    this.quitSent = true;
    this.sendLine('QUIT', { kind: 'quit', bytes: 0 });
  }

  private maybeFinish(): void {
    if (this.phase === 'done') return;
    const waiting = this.pending.filter((p) => p.kind !== 'quit' || !this.config.skipQuitResponse);
    if (waiting.length === 0) this.finish();
  }

  private finish(): void {
    if (this.phase === 'done') return;
    if (this.txs.length > 0 || this.queue.length > 0) {
      // The server closed (QUIT reply, or EOF) with work outstanding: that is a lost connection.
      this.failSession({ kind: 'lost', stage: this.stageText() }, false);
      return;
    }
    this.phase = 'done';
    this.pending = [];
    this.events.push({ type: 'done', reusable: false });
  }

  private liveAccepted(tx: Transaction): number[] {
    return tx.accepted.filter((pos) => tx.rcpts[pos]!.state === 'accepted');
  }

  private lmtpRepliesLeft(tx: Transaction): number {
    if (tx.chunkFailed || tx.mailRejected || this.liveAccepted(tx).length === 0) return 1;
    return tx.accepted.length - tx.lmtpDone;
  }

  private markAccepted(tx: Transaction, why: Why): void {
    for (const pos of this.liveAccepted(tx)) this.mark(tx, pos, why);
  }

  private markUnmarked(tx: Transaction, why: Why): void {
    tx.rcpts.forEach((r, pos) => {
      if (r.state !== 'marked') this.mark(tx, pos, why);
    });
  }

  private mark(tx: Transaction, pos: number, why: Why): void {
    const r = tx.rcpts[pos]!;
    if (r.state === 'marked') throw new Error(`ClientSession: recipient ${r.index} marked twice (mark-and-sweep)`);
    r.state = 'marked';
    this.events.push({ type: 'outcome', tx: tx.id, index: r.index, why });
  }

  // ---------------------------------------------------------------- writing

  private sendHello(kind: 'ehlo' | 'helo' | 'lhlo'): void {
    this.sendLine(`${kind.toUpperCase()} ${this.config.heloName}`, { kind, bytes: 0 });
  }

  /** Whether a command may go now (PIPELINING window, or lock-step without it). */
  private canSend(line: string, pipelining: boolean): boolean {
    if (this.pending.length === 0) return true;
    if (!pipelining) return false;
    return this.unanswered + line.length + 2 <= this.config.pipeliningWindow;
  }

  private sendLine(line: string, pending: Pending, count = true, redacted?: string): void {
    pending.batch = this.batch;
    const bytes = utf8Bytes(line + CRLF);
    this.out.push(bytes);
    if (count) {
      pending.bytes = bytes.length;
      this.unanswered += bytes.length;
    }
    this.pending.push(pending);
    const owner = pending.tx?.id;
    this.events.push({ type: 'send', line: redacted ?? line, ...(owner !== undefined ? { tx: owner } : {}) });
  }

  private stageText(): string {
    const stage = this.stage;
    // After a 421 nothing written after that command was read: an end of data the server never
    // read gets that command's stage, not "message may be sent more than once" (Postfix, which
    // never pipelines BDAT, cannot meet this; with DATA its text is the receiver state).
    if (this.closedAt !== undefined && (stage === 'dot' || stage === 'bdat-last')) return STAGE_TEXT[this.closedAt as Exclude<Stage, 'idle' | 'done'>];
    if (stage === 'idle' || stage === 'done') return 'sending QUIT';
    return STAGE_TEXT[stage];
  }
}

/** XFORWARD attribute names (Postfix xforward.h), in Postfix's two commands. */
const XFORWARD_GROUPS = [
  { kind: 'xforward-name', attrs: [['NAME', 'name'], ['ADDR', 'addr'], ['PORT', 'port']] },
  { kind: 'xforward-proto', attrs: [['PROTO', 'proto'], ['HELO', 'helo'], ['IDENT', 'ident'], ['SOURCE', 'domain']] },
] as const;

/** The XFORWARD commands for the announced attributes; a command with none is not sent. */
function xforwardLines(x: NonNullable<TransactionInput['xforward']>, announced: readonly string[]): Transaction['xforward'] {
  const out: Transaction['xforward'] = [];
  for (const group of XFORWARD_GROUPS) {
    const parts: string[] = [];
    for (const [attr, key] of group.attrs) {
      const v = x[key];
      if (v === undefined || !announced.includes(attr)) continue;
      parts.push(`${attr}=${encodeXtext(String(v))}`);
    }
    if (parts.length > 0) out.push({ line: `XFORWARD ${parts.join(' ')}`, kind: group.kind });
  }
  return out;
}


/** What a content failure means for the recipients: MIME 5.6.0, a hook 4.3.0. */
function contentWhy(err: unknown): Why {
  if (err instanceof MimeConversionError) return { kind: 'local', reason: 'mime', detail: err.detail };
  if (err instanceof ContentHookError) return { kind: 'local', reason: 'content-hook', detail: err.message };
  return { kind: 'local', reason: 'content-hook', detail: `content conversion failed: ${err instanceof Error ? err.message : String(err)}` };
}
