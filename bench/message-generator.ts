/**
 * A large, realistic text message generated chunk by chunk (never materialized whole):
 * headers, then paragraphs of CRLF-terminated lines of words, an occasional line beginning with
 * "." (so the DATA path has to dot-stuff) and blank lines. Deterministic for a given seed, so
 * the expected size and SHA-256 can be computed in another process.
 *
 * Mode `pool` (default) generates 32 distinct text chunks (2 MiB) once and then hands out fresh
 * copies of them in turn: the source costs next to nothing, so the receiver or the sender's
 * socket is the bottleneck and the sender's backpressure handling is what bounds its memory.
 * Mode `fresh` writes every line anew (about 100 MiB/s here: the source is then the bottleneck).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { mulberry32 } from '../test/helpers/random.js';

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you ' +
  'were her she there been one all we their has would when if so no will what can more out up into who time about ' +
  'delivery message server client queue recipient sender transaction reply pipelining chunking postfix mailbox relay ' +
  'report status deferred bounced accepted network connection timeout greeting envelope header body attachment ' +
  'invoice meeting tomorrow schedule quarterly results please find attached regards thanks question answer update'
).split(' ');


export interface GeneratorOptions {
  /** Total octets; a multiple of chunkSize is exact, otherwise the last chunk is shorter. */
  size: number;
  /** Octets per chunk (each chunk ends with CRLF). Default 65536. */
  chunkSize?: number;
  seed?: number;
  /** `pool` (default): cycle through 32 pre-generated chunks, copying each; `fresh`: generate every chunk. */
  mode?: 'pool' | 'fresh';
  from?: string;
  to?: string;
}

function headers(o: GeneratorOptions): string {
  return [
    `From: Bench Sender <${o.from ?? 'bench@example.test'}>`,
    `To: <${o.to ?? 'sink@example.test'}>`,
    'Subject: mailwire memory benchmark: a large text message',
    'Date: Tue, 25 Nov 2025 12:00:00 +0000',
    `Message-ID: <memory-${o.seed ?? 1}@bench.example.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    '',
  ].join('\r\n');
}

/** One chunk of exactly `len` octets (len ≥ 2) of whole CRLF lines. */
function textChunk(rand: () => number, len: number, prefix: string): string {
  const parts: string[] = [prefix];
  let used = prefix.length;
  while (len - used > 0) {
    const left = len - used;
    if (left <= 80) {
      // a last line that fills the chunk exactly
      parts.push('-'.repeat(left - 2) + '\r\n');
      used = len;
      break;
    }
    const r = rand();
    let line: string;
    if (r < 0.04) line = '';
    else if (r < 0.042) line = '.' + WORDS[Math.floor(rand() * WORDS.length)]!;
    else {
      const target = 30 + Math.floor(rand() * 48);
      let s = '';
      while (s.length < target) {
        const w = WORDS[Math.floor(rand() * WORDS.length)]!;
        s += s.length === 0 ? w[0]!.toUpperCase() + w.slice(1) : ' ' + w;
      }
      line = s.length > 78 ? s.slice(0, 78) : s + (rand() < 0.3 ? '.' : '');
    }
    if (left - (line.length + 2) === 1) line += '.'; // never leave a 1-octet remainder (no room for CRLF)
    parts.push(line + '\r\n');
    used += line.length + 2;
  }
  return parts.join('');
}

/** The message as an async generator of Buffers of `chunkSize` octets. */
export async function* generateMessage(o: GeneratorOptions): AsyncGenerator<Buffer> {
  yield* generateMessageSync(o);
}

export function* generateMessageSync(o: GeneratorOptions): Generator<Buffer> {
  const chunkSize = o.chunkSize ?? 65536;
  const rand = mulberry32(o.seed ?? 1);
  const pool: Buffer[] = [];
  const POOL = 32;
  let left = o.size;
  let n = 0;
  while (left > 0) {
    const len = Math.min(chunkSize, left);
    left -= len;
    const prefix = n === 0 ? headers(o) : '';
    if (len < prefix.length + 2) {
      yield Buffer.from(prefix.slice(0, len), 'latin1');
    } else if ((o.mode ?? 'pool') === 'fresh' || n === 0 || len !== chunkSize) {
      yield Buffer.from(textChunk(rand, len, prefix), 'latin1');
    } else {
      // chunks 1..32 are generated once, later ones are copies of them in turn
      const i = (n - 1) % POOL;
      if (pool.length <= i) pool.push(Buffer.from(textChunk(rand, len, ''), 'latin1'));
      yield Buffer.from(pool[i]!);
    }
    n++;
  }
}

/** The same message as a Node Readable (object mode off, 64 KB high-water mark). */
export function messageReadable(o: GeneratorOptions): Readable {
  const it = generateMessageSync(o);
  return new Readable({
    highWaterMark: o.chunkSize ?? 65536,
    read() {
      const r = it.next();
      this.push(r.done ? null : r.value);
    },
  });
}

/** Size and SHA-256 of the message as sent (CRLF) and with LF line ends (smtp-sink's dump form). */
export function expectedDigests(o: GeneratorOptions): { size: number; sha256: string; lfSize: number; lfSha256: string } {
  const h = createHash('sha256');
  const lf = createHash('sha256');
  let size = 0;
  let lfSize = 0;
  for (const chunk of generateMessageSync(o)) {
    h.update(chunk);
    size += chunk.length;
    const l = Buffer.from(chunk.toString('latin1').replaceAll('\r\n', '\n'), 'latin1');
    lf.update(l);
    lfSize += l.length;
  }
  return { size, sha256: h.digest('hex'), lfSize, lfSha256: lf.digest('hex') };
}
