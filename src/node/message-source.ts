/**
 * The message as the engine wants it: bytes in memory (measured, encoded once, sent as one
 * BDAT n LAST or DATA), or a stream read chunk by chunk with backpressure, never buffered
 * whole. A factory can be called again for the next server; a one-shot stream cannot.
 */
import type { Envelope, MessageSource } from '../envelope.js';
import { headerBlockEnd } from '../content/header-block.js';
import { concatBytes, utf8Bytes } from '../protocol/bytes.js';

export type PreparedSource =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'stream'; open: () => AsyncIterator<Uint8Array>; reopenable: boolean };


export function prepareSource(message: Envelope['message']): PreparedSource {
  if (typeof message === 'function') {
    // Each attempt calls the factory again (Postfix re-reads the queue file).
    const factory = message;
    const first = fromSource(factory());
    if (first.kind === 'bytes') return first;
    let used = false;
    return {
      kind: 'stream',
      reopenable: true,
      open: () => {
        if (!used) {
          used = true;
          return first.open();
        }
        const next = fromSource(factory());
        return next.kind === 'bytes' ? oneChunk(next.bytes) : next.open();
      },
    };
  }
  return fromSource(message);
}

function fromSource(source: MessageSource): PreparedSource {
  if (typeof source === 'string') return { kind: 'bytes', bytes: utf8Bytes(source) };
  if (source instanceof Uint8Array) return { kind: 'bytes', bytes: source };
  const iterable = source as unknown as AsyncIterable<unknown>;
  if (iterable && typeof iterable[Symbol.asyncIterator] === 'function') {
    let opened = false;
    return {
      kind: 'stream',
      reopenable: false,
      open: () => {
        if (opened) throw new Error('the message stream was already read; pass a factory to let mailwire read it again');
        opened = true;
        return toBytes(iterable[Symbol.asyncIterator]());
      },
    };
  }
  throw new TypeError('message must be a string, a Uint8Array, a readable stream, an async iterable or a factory');
}

async function* bytesOf(it: AsyncIterator<unknown>): AsyncGenerator<Uint8Array> {
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      const v = r.value;
      if (typeof v === 'string') yield utf8Bytes(v);
      else if (v instanceof Uint8Array) yield v;
      else throw new TypeError('message stream yielded something that is not bytes or a string');
    }
  } finally {
    await it.return?.();
  }
}

function toBytes(it: AsyncIterator<unknown>): AsyncIterator<Uint8Array> {
  return bytesOf(it);
}

function oneChunk(bytes: Uint8Array): AsyncIterator<Uint8Array> {
  let done = false;
  return {
    next: async () => {
      if (done) return { done: true, value: undefined };
      done = true;
      return { done: false, value: bytes };
    },
  };
}

/**
 * Read the header block of a message before it is sent (the flag D loop check and SMTPUTF8
 * detection need it, as Postfix has the queue file): at most `limit` octets, up to the empty
 * line. A stream keeps what was read and gives it back first when the message is sent.
 */
export async function peekHeader(source: PreparedSource, limit: number): Promise<{ source: PreparedSource; header: Uint8Array }> {
  if (source.kind === 'bytes') {
    const end = headerBlockEnd(source.bytes.subarray(0, limit));
    return { source, header: source.bytes.subarray(0, end >= 0 ? end : Math.min(limit, source.bytes.length)) };
  }
  const it = source.open();
  const read: Uint8Array[] = [];
  let total = 0;
  let done = false;
  let header: Uint8Array = new Uint8Array(0);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        done = true;
        break;
      }
      read.push(r.value);
      total += r.value.length;
      const all = concatBytes(...read);
      const end = headerBlockEnd(all.subarray(0, limit));
      if (end >= 0 || total >= limit) {
        header = all.subarray(0, end >= 0 ? end : limit);
        break;
      }
      header = all;
    }
  } catch (err) {
    await it.return?.().catch(() => undefined);
    throw err;
  }
  let first = true;
  const peeked: PreparedSource = {
    kind: 'stream',
    reopenable: source.reopenable,
    open: () => {
      if (!first) return source.open();
      first = false;
      return replay(read, done ? undefined : it);
    },
  };
  return { source: peeked, header };
}


async function* replay(read: Uint8Array[], rest: AsyncIterator<Uint8Array> | undefined): AsyncGenerator<Uint8Array> {
  try {
    for (const chunk of read) yield chunk;
    if (!rest) return;
    for (;;) {
      const r = await rest.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await rest?.return?.();
  }
}
