/**
 * A pure, in-memory SMTP/LMTP peer for engine transcript tests: it reads what the
 * ClientSession writes, answers through `respond`, and counts flights (round trips).
 */
import { ClientSession, type SessionConfig, type TransactionInput } from '../../src/protocol/client-session.js';
import type { Why } from '../../src/protocol/why.js';

export interface ServerCtx {
  /** Message content received for the current DATA/BDAT (unstuffed for DATA). */
  body: string;
}

/** Return the reply (or replies, for LMTP end of data) or `null` to stay silent. */
export type Respond = (command: string, ctx: ServerCtx) => string | string[] | null | 'drop';

export interface RunResult {
  transcript: string[];
  outcomes: Map<number, Why>;
  outcomeCount: Map<number, number>;
  flights: number;
  session: ClientSession;
  bodies: string[];
  done: boolean;
  warnings: string[];
  startTlsAsked: boolean;
  /** Bytes written after the session ended (e.g. QUIT whose reply is not awaited). */
  trailing: string;
}

export interface RunOptions {
  greeting?: string;
  /** Stream content chunks (for `content: { kind: 'stream' }`). */
  chunks?: string[];
  /** What to do when the engine asks for TLS: established (default) or failed. */
  tls?: 'ok' | 'fail';
  /** Extra bytes the server sends right after its reply to STARTTLS (injection test). */
  afterStartTls?: string;
  maxFlights?: number;
  /** Exchange with the server after every content chunk (replies arrive while the body streams). */
  interleave?: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function run(config: Partial<SessionConfig>, tx: TransactionInput | undefined, respond: Respond, options: RunOptions = {}): RunResult {
  const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test', ...config });
  if (tx) session.transaction(tx);
  const transcript: string[] = [];
  const outcomes = new Map<number, Why>();
  const outcomeCount = new Map<number, number>();
  const bodies: string[] = [];
  const warnings: string[] = [];
  let flights = 0;
  let startTlsAsked = false;
  let mode: { kind: 'cmd' } | { kind: 'data'; buf: string } | { kind: 'bdat'; left: number; buf: string; last: boolean } = { kind: 'cmd' };
  let pendingBdat = '';
  let inbox = options.greeting ?? '220 mx.test ESMTP\r\n';
  let dropped = false;
  let stalled = false;
  const ctx: ServerCtx = { body: '' };

  const drain = () => {
    for (let ev = session.nextEvent(); ev; ev = session.nextEvent()) {
      if (ev.type === 'send') transcript.push(`C: ${ev.line}`);
      else if (ev.type === 'receive') transcript.push(`S: ${ev.line}`);
      else if (ev.type === 'warning') warnings.push(ev.message);
      else if (ev.type === 'outcome') {
        outcomes.set(ev.index, ev.why);
        outcomeCount.set(ev.index, (outcomeCount.get(ev.index) ?? 0) + 1);
      } else if (ev.type === 'needContent') {
        for (const c of options.chunks ?? []) {
          while (!session.wantsContent && session.bodyPending) {
            // without PIPELINING, BDAT chunks wait for replies: answer what is out so far
            exchange();
            if (dropped) return;
          }
          session.content(enc.encode(c));
          if (options.interleave) exchange();
          if (dropped || !session.bodyPending) return;
        }
        while (!session.wantsContent && session.bodyPending) {
          exchange();
          if (dropped) return;
        }
        session.contentEnd();
      } else if (ev.type === 'startTls') {
        startTlsAsked = true;
        if (options.tls === 'fail') session.tlsFailed('handshake failure');
        else session.tlsEstablished();
      }
    }
  };

  // Server side: parse client bytes into commands and payloads, collect replies.
  const serve = (bytes: string): string => {
    let out = '';
    let s = pendingBdat + bytes;
    pendingBdat = '';
    while (s.length > 0) {
      if (mode.kind === 'data') {
        mode.buf += s;
        s = '';
        const end = mode.buf.indexOf('\r\n.\r\n');
        const lone = mode.buf.startsWith('.\r\n');
        if (end === -1 && !lone) break;
        const cut = lone ? 0 : end + 2;
        const body = lone ? '' : mode.buf.slice(0, cut).replace(/^\.\./gm, '.');
        s = mode.buf.slice(cut + 3);
        ctx.body = body;
        bodies.push(body);
        mode = { kind: 'cmd' };
        out += reply('.');
        continue;
      }
      if (mode.kind === 'bdat') {
        const take = s.slice(0, mode.left);
        mode.buf += take;
        mode.left -= take.length;
        s = s.slice(take.length);
        if (mode.left > 0) break;
        ctx.body += mode.buf;
        const last = mode.last;
        mode = { kind: 'cmd' };
        if (last) bodies.push(ctx.body);
        out += reply(last ? 'BDAT-LAST' : 'BDAT');
        continue;
      }
      const nl = s.indexOf('\r\n');
      if (nl === -1) {
        pendingBdat = s;
        break;
      }
      const line = s.slice(0, nl);
      s = s.slice(nl + 2);
      const m = /^BDAT (\d+)( LAST)?$/.exec(line);
      if (m) {
        mode = { kind: 'bdat', left: Number(m[1]), buf: '', last: !!m[2] };
        if (mode.left === 0) {
          const last = mode.last;
          mode = { kind: 'cmd' };
          if (last) bodies.push(ctx.body);
          out += reply(last ? 'BDAT-LAST' : 'BDAT');
        }
        continue;
      }
      if (line === '.') {
        // a lone dot outside DATA mode (after a 354 we did not track): treat as end of data
        out += reply('.');
        continue;
      }
      const r = reply(line);
      out += r;
      if (line === 'DATA' && /^354/.test(r)) {
        mode = { kind: 'data', buf: '' };
        ctx.body = '';
      }
      if (line === 'STARTTLS' && /^220/.test(r)) out += options.afterStartTls ?? '';
      if (line.startsWith('MAIL')) ctx.body = '';
    }
    return out;
  };
  const reply = (cmd: string): string => {
    if (dropped || stalled) return '';
    const r = respond(cmd, ctx);
    if (r === 'drop') {
      dropped = true;
      return '';
    }
    if (r === null) {
      stalled = true; // silent from here on, like a stalled server
      return '';
    }
    const list = Array.isArray(r) ? r : [r];
    return list.map((x) => x.replace(/\n/g, '\r\n') + '\r\n').join('');
  };
  const exchange = () => {
    const out = session.takeOutput();
    if (out.length === 0) return false;
    flights++;
    const text = out.map((b) => dec.decode(b)).join('');
    inbox += serve(text);
    if (inbox.length > 0) {
      const b = inbox;
      inbox = '';
      session.receive(enc.encode(b));
    }
    if (dropped && !session.done) session.connectionLost();
    return true;
  };

  session.receive(enc.encode(inbox));
  inbox = '';
  drain();
  const max = options.maxFlights ?? 1000;
  while (!session.done && flights < max) {
    const progressed = exchange();
    drain();
    if (!progressed && !session.done) break; // stalled: the caller decides (timeout / lost)
  }
  drain();
  const trailing = session.takeOutput().map((b) => dec.decode(b)).join('');
  return { trailing, transcript, outcomes, outcomeCount, flights, session, bodies, done: session.done, warnings, startTlsAsked };
}

export const EHLO_FULL = ['250-mx.test', '250-PIPELINING', '250-SIZE 10000000', '250-8BITMIME', '250-DSN', '250-SMTPUTF8', '250-ENHANCEDSTATUSCODES', '250 CHUNKING'];

export function tx(recipients: string[], message = 'Subject: t\r\n\r\nhello\r\n', extra: Partial<TransactionInput> = {}): TransactionInput {
  return {
    sender: 'sender@example.org',
    recipients: recipients.map((address, index) => ({ index, address })),
    content: { kind: 'bytes', bytes: enc.encode(message) },
    ...extra,
  };
}

/** A responder built from per-command defaults plus overrides. */
export function server(ehlo: string[], overrides: Partial<Record<string, (cmd: string, ctx: ServerCtx) => ReturnType<Respond>>> = {}): Respond {
  return (cmd, ctx) => {
    const verb = cmd === 'BDAT-LAST' || cmd === 'BDAT' || cmd === '.' ? cmd : cmd.split(/[ :]/)[0]!.toUpperCase();
    const o = overrides[verb];
    if (o) return o(cmd, ctx);
    switch (verb) {
      case 'EHLO':
      case 'LHLO':
        return ehlo.join('\n');
      case 'HELO':
        return '250 mx.test';
      case 'MAIL':
        return '250 2.1.0 Ok';
      case 'RCPT':
        return '250 2.1.5 Ok';
      case 'DATA':
        return '354 End data with <CR><LF>.<CR><LF>';
      case '.':
      case 'BDAT-LAST':
        return '250 2.0.0 Ok: queued as ABC';
      case 'BDAT':
        return '250 2.0.0 chunk ok';
      case 'RSET':
      case 'XFORWARD':
        return '250 2.0.0 Ok';
      case 'QUIT':
        return '221 2.0.0 Bye';
      case 'STARTTLS':
        return '220 2.0.0 Ready to start TLS';
      default:
        return '502 5.5.2 Error: command not recognized';
    }
  };
}
