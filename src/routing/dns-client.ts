/**
 * One DNS question asked of recursive name servers over UDP, and over TCP when the UDP
 * answer is truncated (RFC 1035 §4.2, RFC 7766). The way glibc and c-ares do it: rounds
 * over the servers in order, `tries` rounds, `timeout` per try; a server that answers
 * SERVFAIL, REFUSED or NOTIMP makes way for the next one (REFUSED and NOTIMP servers are not
 * asked again for this question); FORMERR or NOTIMP to an EDNS query without an OPT record in
 * the reply is asked again without EDNS.
 *
 * Spoofing defense: a fresh UDP socket per try (connected, so the kernel picks a random
 * source port and drops other senders), a random 16-bit ID, and a response counts only when
 * it comes from the server asked and repeats the ID and the question (name compared
 * case-insensitively, type, class). Anything else on the socket is ignored. A socket whose
 * try timed out keeps listening (a late answer still counts) until the question ends.
 *
 * Nothing outlives a call: when the question ends (answer, error, abort), every socket is
 * closed and every timer cleared.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  DnsError,
  RCODE,
  decodeHeaderAndQuestion,
  decodeMessage,
  encodeQuery,
  formatIPv6,
  parseIPv4,
  parseIPv6,
  sameName,
  type DnsErrorCode,
  type DnsMessage,
} from './dns-message.js';

export interface NameServer {
  address: string;
  port: number;
  family: 4 | 6;
}

/** '127.0.0.1', '127.0.0.1:5353', '::1', '[::1]', '[::1]:53' → server; undefined when not that syntax. */
export function parseNameServer(text: string): NameServer | undefined {
  if (typeof text !== 'string') return undefined;
  let host: string;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4 = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (v4) {
    host = v4[1]!;
    if (v4[2] !== undefined) port = Number(v4[2]);
  } else host = text;
  const family = net.isIP(host);
  if (family === 0 || (bracket && family !== 6) || port < 1 || port > 65535) return undefined;
  return { address: host, port, family: family as 4 | 6 };
}

export function formatNameServer(s: NameServer): string {
  return s.family === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;
}

function canonicalAddress(address: string): string {
  const plain = address.replace(/%.*$/, '');
  const v6 = parseIPv6(plain);
  if (v6) return formatIPv6(v6);
  const v4 = parseIPv4(plain);
  return v4 ? plain : address;
}

export interface QueryOptions {
  servers: readonly NameServer[];
  /** Milliseconds per try. */
  timeout: number;
  /** Rounds over the servers. */
  tries: number;
  /** EDNS0: OPT record with this UDP payload size and the DO bit; undefined: none. */
  edns?: { udpSize: number; do: boolean } | undefined;
  signal?: AbortSignal | undefined;
}

interface Expect {
  id: number;
  name: string;
  type: number;
  edns: boolean;
}

type Outcome =
  | { kind: 'answer'; message: DnsMessage }
  | { kind: 'truncated' }
  | { kind: 'error'; error: DnsError; retryWithoutEdns?: boolean; terminal?: boolean; skipServer?: boolean };

interface Exchange {
  readonly server: NameServer;
  readonly transport: 'udp' | 'tcp';
  close(): void;
}

const serverText = formatNameServer;

/**
 * Classifies a response to `expect`. `undefined`: not ours (ignore it). Any response that
 * repeats the ID and question is ours; if the rest is malformed, that is an EBADRESP outcome.
 * Error responses without a question section (allowed for FORMERR and friends) count too;
 * they carry no data that could be forged into an answer.
 */
function classify(buf: Uint8Array, expect: Expect, server: NameServer, transport: 'udp' | 'tcp'): Outcome | undefined {
  let head: ReturnType<typeof decodeHeaderAndQuestion>;
  try {
    head = decodeHeaderAndQuestion(buf);
  } catch {
    return undefined;
  }
  if (head.id !== expect.id || !head.qr || head.opcode !== 0) return undefined;
  const q = head.question;
  if (q) {
    if (q.type !== expect.type || q.class !== 1 || !sameName(q.name, expect.name)) return undefined;
  } else if (head.rcode === RCODE.NOERROR || head.rcode === RCODE.NXDOMAIN) return undefined;
  let message: DnsMessage;
  try {
    message = decodeMessage(buf);
  } catch (err) {
    return { kind: 'error', error: err as DnsError };
  }
  if (message.questions.length > 1) {
    return { kind: 'error', error: new DnsError('EBADRESP', `${serverText(server)} answered with ${message.questions.length} questions`) };
  }
  // Over TCP a truncated answer is as complete as it gets.
  if (message.tc && transport === 'udp') return { kind: 'truncated' };
  const from = serverText(server);
  switch (message.rcode) {
    case RCODE.NOERROR:
    case RCODE.NXDOMAIN:
      return { kind: 'answer', message };
    case RCODE.FORMERR:
    case RCODE.NOTIMP: {
      const retryWithoutEdns = expect.edns && !message.edns;
      const formerr = message.rcode === RCODE.FORMERR;
      return {
        kind: 'error',
        error: new DnsError(formerr ? 'EFORMERR' : 'ENOTIMP', `${from} answered ${formerr ? 'FORMERR' : 'NOTIMP'}`),
        retryWithoutEdns,
        terminal: formerr,
        skipServer: !formerr,
      };
    }
    case RCODE.SERVFAIL:
      return { kind: 'error', error: new DnsError('ESERVFAIL', `${from} answered SERVFAIL`) };
    case RCODE.REFUSED:
      return { kind: 'error', error: new DnsError('EREFUSED', `${from} answered REFUSED`), skipServer: true };
    default:
      return { kind: 'error', error: new DnsError('EBADRESP', `${from} answered with rcode ${message.rcode}`) };
  }
}

function socketError(server: NameServer, transport: string, err: unknown): DnsError {
  const code = (err as { code?: unknown } | undefined)?.code;
  return new DnsError('ECONNREFUSED', `${transport} to ${serverText(server)}: ${typeof code === 'string' ? code : String(err)}`, { cause: err });
}

function udpExchange(server: NameServer, packet: Uint8Array, expect: Expect, done: (ex: Exchange, o: Outcome) => void): Exchange {
  const socket = dgram.createSocket({ type: server.family === 6 ? 'udp6' : 'udp4' });
  const want = canonicalAddress(server.address);
  let closed = false;
  const ex: Exchange = {
    server,
    transport: 'udp',
    close() {
      if (closed) return;
      closed = true;
      try {
        socket.close();
      } catch {
        /* already closed */
      }
    },
  };
  socket.on('error', (err) => {
    if (!closed) done(ex, { kind: 'error', error: socketError(server, 'udp', err) });
  });
  socket.on('message', (msg, rinfo) => {
    if (closed || rinfo.port !== server.port || canonicalAddress(rinfo.address) !== want) return;
    const outcome = classify(msg, expect, server, 'udp');
    if (outcome) done(ex, outcome);
  });
  try {
    socket.connect(server.port, server.address, () => {
      if (closed) return;
      socket.send(packet, (err) => {
        if (err && !closed) done(ex, { kind: 'error', error: socketError(server, 'udp', err) });
      });
    });
  } catch (err) {
    queueMicrotask(() => {
      if (!closed) done(ex, { kind: 'error', error: socketError(server, 'udp', err) });
    });
  }
  return ex;
}

function tcpExchange(server: NameServer, packet: Uint8Array, expect: Expect, done: (ex: Exchange, o: Outcome) => void): Exchange {
  const socket = net.connect({ host: server.address, port: server.port, family: server.family });
  let closed = false;
  const ex: Exchange = {
    server,
    transport: 'tcp',
    close() {
      if (closed) return;
      closed = true;
      socket.destroy();
    },
  };
  const finish = (o: Outcome): void => {
    if (closed) return;
    ex.close();
    done(ex, o);
  };
  const framed = new Uint8Array(packet.length + 2);
  framed[0] = packet.length >> 8;
  framed[1] = packet.length & 0xff;
  framed.set(packet, 2);
  socket.on('connect', () => socket.write(framed));
  let chunks: Buffer[] = [];
  let have = 0;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    have += chunk.length;
    if (have < 2) return;
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks = [buf];
    const len = (buf[0]! << 8) | buf[1]!;
    if (have < len + 2) return;
    const msg = buf.subarray(2, len + 2);
    finish(
      classify(msg, expect, server, 'tcp') ?? {
        kind: 'error',
        error: new DnsError('EBADRESP', `tcp response from ${serverText(server)} does not match the query`),
      },
    );
  });
  socket.on('error', (err) => finish({ kind: 'error', error: socketError(server, 'tcp', err) }));
  socket.on('close', () =>
    finish({ kind: 'error', error: new DnsError('EBADRESP', `tcp connection to ${serverText(server)} closed before a complete response`) }),
  );
  return ex;
}

/** Which error describes the whole question best: a transient one wins (ask again later). */
const ERROR_RANK: readonly DnsErrorCode[] = ['ESERVFAIL', 'ETIMEOUT', 'ECONNREFUSED', 'EBADRESP', 'EREFUSED', 'ENOTIMP', 'EFORMERR'];

function randomId(): number {
  return randomBytes(2).readUInt16BE(0);
}

/**
 * Asks `name`/`type` (class IN). Resolves with the response when its rcode is NOERROR or
 * NXDOMAIN (the caller reads the answer); rejects with a `DnsError` otherwise: ESERVFAIL,
 * EREFUSED, ENOTIMP, EFORMERR, EBADRESP, ECONNREFUSED, ETIMEOUT (every try timed out),
 * ECANCELLED (aborted). `name` must be valid (see nameToLabels); it is asked as is, absolute.
 */
export function query(name: string, type: number, options: QueryOptions): Promise<DnsMessage> {
  return new Promise<DnsMessage>((resolve, reject) => {
    const { signal, servers, timeout, tries } = options;
    const schedule: NameServer[] = [];
    for (let t = 0; t < tries; t++) schedule.push(...servers);
    const live = new Set<Exchange>();
    const noEdns = new Set<NameServer>();
    const skip = new Set<NameServer>();
    const errors: DnsError[] = [];
    let next = 0;
    let current: Exchange | undefined;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;

    const end = (): void => {
      ended = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const ex of live) ex.close();
      live.clear();
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: DnsError): void => {
      if (ended) return;
      end();
      reject(err);
    };
    const succeed = (m: DnsMessage): void => {
      if (ended) return;
      end();
      resolve(m);
    };
    function onAbort(): void {
      fail(new DnsError('ECANCELLED', 'query cancelled', { cause: signal?.reason }));
    }
    const finalError = (): DnsError => {
      for (const code of ERROR_RANK) {
        const last = errors.findLast((e) => e.code === code);
        if (last) return last;
      }
      return errors.at(-1) ?? new DnsError('ETIMEOUT', 'no name server to ask');
    };

    const launch = (server: NameServer, transport: 'udp' | 'tcp'): void => {
      const edns = options.edns && !noEdns.has(server) ? options.edns : undefined;
      const id = randomId();
      const packet = encodeQuery({ id, name, type, ...(edns ? { edns } : {}) });
      const expect: Expect = { id, name, type, edns: edns !== undefined };
      const ex = (transport === 'udp' ? udpExchange : tcpExchange)(server, packet, expect, onOutcome);
      live.add(ex);
      current = ex;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = undefined;
        errors.push(new DnsError('ETIMEOUT', `no answer from ${serverText(server)} over ${transport} within ${timeout} ms`));
        // A UDP socket keeps listening for a late answer; a TCP connection is given up.
        if (transport === 'tcp') {
          ex.close();
          live.delete(ex);
        }
        startNext();
      }, timeout);
    };

    function startNext(): void {
      if (ended) return;
      if (timer) clearTimeout(timer);
      timer = undefined;
      current = undefined;
      while (next < schedule.length && skip.has(schedule[next]!)) next++;
      const server = schedule[next++];
      if (!server) return fail(finalError());
      launch(server, 'udp');
    }

    function onOutcome(ex: Exchange, o: Outcome): void {
      if (ended) return;
      if (o.kind === 'answer') return succeed(o.message);
      ex.close();
      live.delete(ex);
      const isCurrent = ex === current;
      if (o.kind === 'truncated') {
        if (isCurrent) launch(ex.server, 'tcp');
        return;
      }
      errors.push(o.error);
      if (o.retryWithoutEdns && !noEdns.has(ex.server)) {
        noEdns.add(ex.server);
        if (isCurrent) launch(ex.server, ex.transport);
        return;
      }
      if (o.terminal) return fail(o.error);
      if (o.skipServer) skip.add(ex.server);
      if (isCurrent) startNext();
    }

    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (servers.length === 0 || tries < 1) return fail(new DnsError('ETIMEOUT', 'no name server to ask'));
    startNext();
  });
}
