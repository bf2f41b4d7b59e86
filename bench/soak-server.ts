/**
 * The soak test's server, as a child process: mailwire's TestServer (CHUNKING + PIPELINING,
 * discardData) with a fault at random in about `--fault-rate` of the protocol steps, and a
 * compact record of every transaction streamed to a file.
 *
 *   node --import tsx bench/soak-server.ts --out FILE [--fault-rate 0.01] [--seed 1] [--no-chunking]
 *
 * stdout: {"event":"listening","host":…,"port":…,"destination":…} once, then on exit
 *         {"event":"stats",…} (faults injected per step and action, transactions written).
 * FILE: one JSON object per ended transaction (completed, or aborted by RSET/QUIT/disconnect):
 *   {"s":session,"t":index in session,"m":message number (from MAIL FROM s<m>@soak.test),
 *    "ml":MAIL reply code,"r":[[recipient number, RCPT reply code], …] (RCPT order),
 *    "e":end-of-data reply code | "lost" (the whole message arrived, no reply was written: a drop
 *        or stall fault at that step) | null (the end of data was never reached),
 *    "ab":"rset"|"quit"|"disconnect" when not completed}
 * Unknown addresses (not s<m>@soak.test / m<m>r<j>@soak.test) are recorded with m = -1 / j = -1.
 * Stops on SIGTERM/SIGINT or when stdin closes: the records of transactions still open are
 * written (as they are), the file is closed, the server closed; then the process exits by itself.
 *
 * Faults (one decision per step, with probability --fault-rate; mulberry32(--seed)):
 *   greeting (connect), EHLO, RSET: 421 (then close), drop, stall
 *   MAIL, RCPT, end of data (dot): 4xx (451/450/452), 421, drop, stall
 *   DATA (354, DATA path only): 451, 421, drop;  message transfer (data-transfer): drop, stall
 * 'stall' writes nothing more and keeps reading: the client's per-reply deadline ends it.
 * Randomness per step needs the server's fault book: its `take`/`has` are replaced on the
 * instance (a TestServer internal; the script checks that it is there).
 */
import { createWriteStream } from 'node:fs';
import { TestServer, type Fault, type Step } from '../src/testing/index.js';
import type { ReceivedTransaction } from '../src/testing/index.js';
import { mulberry32 } from '../test/helpers/random.js';

function value(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const OUT = value('--out', '');
if (OUT === '') throw new Error('soak-server: --out FILE is required');
const RATE = Number(value('--fault-rate', '0.01'));
const SEED = Number(value('--seed', '1'));
const CHUNKING = !process.argv.includes('--no-chunking');

const rand = mulberry32(SEED);

type Action = '4xx' | '421' | 'drop' | 'stall';
const MENU: Partial<Record<Step, Action[]>> = {
  connect: ['421', 'drop', 'stall'],
  ehlo: ['421', 'drop', 'stall'],
  rset: ['421', 'drop', 'stall'],
  mail: ['4xx', '421', 'drop', 'stall'],
  rcpt: ['4xx', '4xx', '421', 'drop', 'stall'],
  dot: ['4xx', '421', 'drop', 'stall'],
  data: ['4xx', '421', 'drop'],
  'data-transfer': ['drop', 'stall'],
};
const SOFT: Partial<Record<Step, string>> = {
  mail: '451 4.3.0 soak: MAIL deferred at random',
  rcpt: '450 4.2.0 soak: recipient deferred at random',
  dot: '451 4.3.0 soak: message deferred at random',
  data: '451 4.3.0 soak: DATA deferred at random',
};
const injected = new Map<string, number>();
let decisions = 0;

function decide(step: Step): Fault | undefined {
  const menu = MENU[step];
  if (!menu) return undefined;
  decisions++;
  if (rand() >= RATE) return undefined;
  const action = menu[Math.floor(rand() * menu.length)]!;
  injected.set(`${step}:${action}`, (injected.get(`${step}:${action}`) ?? 0) + 1);
  if (action === '4xx') return { step, action: 'reply', reply: SOFT[step]! };
  if (action === '421') return { step, action: 'reply', reply: '421 4.3.2 soak: closing the connection at random' };
  return { step, action };
}

const server = await TestServer.start({
  hostname: 'soak.bench.invalid',
  discardData: true,
  transcriptLimit: 0,
  hardErrorLimit: 0,
  junkCommandLimit: 0,
  extensions: { chunking: CHUNKING, pipelining: true },
});

// Random faults per step: replace the fault book's lookup on this instance.
const book = (server as unknown as { faults?: { take?: unknown; has?: unknown } }).faults;
if (!book || typeof book.take !== 'function' || typeof book.has !== 'function') {
  throw new Error('soak-server: TestServer has no fault book with take()/has() any more; update bench/soak-server.ts');
}
book.has = (step: Step) => MENU[step] !== undefined;
book.take = (point: { step: Step }) => decide(point.step);

// ---------------------------------------------------------------- records

const out = createWriteStream(OUT);
let written = 0;
const code = (reply: string | undefined): number | null => (reply ? Number(reply.slice(0, 3)) || null : null);
const msgOf = (from: string): number => Number(/^s(\d+)@soak\.test$/i.exec(from)?.[1] ?? -1);
const rcptOf = (addr: string): number => Number(/^m\d+r(\d+)@soak\.test$/i.exec(addr)?.[1] ?? -1);

function record(tx: ReceivedTransaction): string {
  const e = tx.replies.length > 0 ? code(tx.replies[0]) : tx.sha256 !== undefined ? 'lost' : null;
  const o: Record<string, unknown> = {
    s: tx.session,
    t: tx.index,
    m: msgOf(tx.mailFrom),
    ml: code(tx.mailReply),
    r: tx.rcpts.map((r) => [rcptOf(r.address), code(r.reply)]),
    e,
  };
  if (!tx.complete) o.ab = tx.aborted ?? 'open';
  return JSON.stringify(o) + '\n';
}

function sweep(all: boolean): void {
  const keep: ReceivedTransaction[] = [];
  let chunk = '';
  for (const tx of server.transactions) {
    if (all || tx.complete || tx.aborted !== undefined) {
      chunk += record(tx);
      written++;
    } else keep.push(tx);
  }
  server.transactions = keep;
  if (chunk) out.write(chunk);
}
const sweeper = setInterval(() => sweep(false), 100);

process.stdout.write(JSON.stringify({ event: 'listening', host: server.host, port: server.port, destination: server.destination, chunking: CHUNKING, faultRate: RATE, seed: SEED }) + '\n');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(sweeper);
  await server.close(); // open sessions end: their transactions are aborted ('disconnect')
  sweep(true);
  await new Promise<void>((r) => out.end(r));
  process.stdout.write(JSON.stringify({ event: 'stats', transactions: written, sessions: server.sessions.length, stepsDecided: decisions, injected: Object.fromEntries(injected), serverErrors: server.errors.length }) + '\n');
  process.stdin.destroy();
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.on('close', () => void stop());
process.stdin.resume();
