/**
 * Messages per second: mailwire vs nodemailer vs Postfix's smtp-source, same receiver, same run.
 *
 *   npx tsx bench/throughput.ts [--messages 200] [--size 10240] [--rcpts 5] [--concurrency 1,10]
 *                               [--rounds 5] [--warmup 300] [--server auto|smtp-sink|receiver|postfix]
 *
 * M messages of `size` octets to `rcpts` recipients each, one after another (concurrency 1) and
 * with C in flight, by
 *   mailwire     deliver() per message (it has no connection pool yet, so every message is a new
 *                connection: connect, EHLO, MAIL, RCPT×n, DATA/BDAT, QUIT)
 *   nodemailer   one createTransport({ host, port, secure: false, ignoreTLS: true }) without pool,
 *                sendMail() per message (also a new connection per message)
 *   smtp-source  smtp-source -c -l SIZE -m M -r RCPTS -s C (a new connection per message, no -d;
 *                it does not pipeline), a C program: the floor for per-connection cost
 * Receiver: Postfix smtp-sink on a free loopback port (PIPELINING, no CHUNKING) when installed,
 * else bench/receiver.ts (mailwire TestServer, child process); `--server postfix` uses the
 * interop Postfix (PIPELINING-only listener; stores every message). Each round runs every
 * client at every concurrency (order rotated per round); the median round is reported.
 */
import { performance } from 'node:perf_hooks';
import nodemailer from 'nodemailer';
import { deliver } from '../src/index.js';
import { argNumber, argValue, findPostfix, findPostfixTool, median, run, startReceiver, startSmtpSink, table, type ChildReceiver } from './lib.js';

const M = argNumber('--messages', 200);
const SIZE = argNumber('--size', 10240);
const RCPTS = argNumber('--rcpts', 5);
const ROUNDS = argNumber('--rounds', 5);
const CONCURRENCY = (argValue('--concurrency') ?? '1,10').split(',').map(Number);
const SERVER = argValue('--server', 'auto');
const WARMUP = argNumber('--warmup', 300);

// ---------------------------------------------------------------- receiver

let receiver: ChildReceiver | undefined;
let host: string;
let port: number;
let serverNote: string;
let recipients: string[];
const sinkBin = findPostfixTool('smtp-sink');
const sourceBin = findPostfixTool('smtp-source');

if (SERVER === 'postfix') {
  const pf = await findPostfix();
  if (!pf) {
    console.error('throughput: --server postfix, but the interop Postfix is not running (test/interop/peers.sh start)');
    process.exit(2);
  }
  ({ host, port } = pf.noChunking);
  recipients = Array.from({ length: RCPTS }, (_, i) => `bench${i + 1}@example.test`); // catchall maildir
  serverNote = `real Postfix, PIPELINING-only listener ${host}:${port} (messages are stored in the catchall maildir)`;
} else if ((SERVER === 'auto' && sinkBin) || SERVER === 'smtp-sink') {
  receiver = await startSmtpSink();
  ({ host, port } = receiver);
  recipients = Array.from({ length: RCPTS }, (_, i) => `rcpt${i + 1}@example.test`);
  serverNote = receiver.describe;
} else {
  receiver = await startReceiver({ chunking: false });
  ({ host, port } = receiver);
  recipients = Array.from({ length: RCPTS }, (_, i) => `rcpt${i + 1}@example.test`);
  serverNote = receiver.describe + (sinkBin ? '' : ' (smtp-sink not installed)');
}
const destination = `[${host}]:${port}`;
const from = 'bench@example.test';

/** A text message of exactly SIZE octets. */
function buildMessage(): string {
  const head = [`From: <${from}>`, `To: ${recipients.map((r) => `<${r}>`).join(', ')}`, 'Subject: mailwire throughput benchmark', 'Date: Tue, 25 Nov 2025 12:00:00 +0000', 'Message-ID: <throughput@bench.example.test>', '', ''].join('\r\n');
  const line = 'The quick brown fox jumps over the lazy dog while the queue manager schedules deliveries.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= SIZE - 2) body += line;
  const pad = SIZE - head.length - body.length;
  return head + body + (pad >= 2 ? 'x'.repeat(pad - 2) + '\r\n' : '');
}
const message = buildMessage();

// ---------------------------------------------------------------- clients

type Client = 'mailwire' | 'nodemailer' | 'smtp-source';

/** Run `n` tasks with at most `c` in flight. */
async function pool(n: number, c: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(c, n) }, worker));
}

interface Outcome {
  ms: number;
  ok: number;
  failed: number;
  cpuMs?: number;
  note?: string;
}

async function runMailwire(n: number, c: number): Promise<Outcome> {
  let ok = 0;
  let failed = 0;
  let note: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(n, c, async () => {
    const r = await deliver({ from, to: recipients, message }, destination, { tls: { level: 'none' } });
    if (r.recipients.every((x) => x.action === 'relayed' || x.action === 'delivered')) ok++;
    else {
      failed++;
      note ??= r.recipients.map((x) => `${x.action} ${x.status} ${x.reason}`).join('; ');
    }
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, ok, failed, cpuMs: (cpu.user + cpu.system) / 1000, ...(note ? { note } : {}) };
}

async function runNodemailer(n: number, c: number): Promise<Outcome> {
  const transport = nodemailer.createTransport({ host, port, secure: false, ignoreTLS: true });
  let ok = 0;
  let failed = 0;
  let note: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(n, c, async () => {
    try {
      const info = await transport.sendMail({ envelope: { from, to: recipients }, raw: message });
      if (info.accepted.length === recipients.length) ok++;
      else {
        failed++;
        note ??= `accepted ${info.accepted.length}, rejected ${info.rejected.length}`;
      }
    } catch (err) {
      failed++;
      note ??= err instanceof Error ? err.message : String(err);
    }
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  transport.close();
  return { ms, ok, failed, cpuMs: (cpu.user + cpu.system) / 1000, ...(note ? { note } : {}) };
}

/** smtp-source's payload (-l) excludes the few headers it adds itself. */
async function runSmtpSource(n: number, c: number): Promise<Outcome> {
  const args = ['-c', '-l', String(SIZE), '-m', String(n), '-r', String(RCPTS), '-s', String(c), '-f', from, '-t', recipients[0]!, `${host}:${port}`];
  const r = await run(sourceBin!, args);
  const counted = Number(/(\d+)\s*$/.exec(r.stdout.trim())?.[1] ?? NaN);
  const ok = r.code === 0 ? n : 0;
  return { ms: r.ms, ok, failed: n - ok, ...(r.code !== 0 ? { note: `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}` } : Number.isFinite(counted) && counted !== n ? { note: `counter ${counted}` } : {}) };
}

const clients: Client[] = ['mailwire', 'nodemailer', ...(sourceBin ? (['smtp-source'] as const) : [])];
const runners: Record<Client, (n: number, c: number) => Promise<Outcome>> = { mailwire: runMailwire, nodemailer: runNodemailer, 'smtp-source': runSmtpSource };

// ---------------------------------------------------------------- main

console.log(`mailwire throughput benchmark: ${M} messages of ${SIZE} octets to ${RCPTS} recipients, concurrency ${CONCURRENCY.join(' and ')}, ${ROUNDS} rounds`);
console.log(`receiver: ${serverNote}`);
console.log(`clients: mailwire (src/, deliver() per message, tls none), nodemailer 10 (no pool), ${sourceBin ? `${sourceBin} (Postfix's C load generator, no pipelining)` : 'smtp-source not installed'}`);
console.log('note: mailwire has no connection pool yet (a later issue), so each message is a new connection;');
console.log('      nodemailer without pool and smtp-source without -d do the same.\n');

const sinkBefore = receiver?.lastCounters()?.mesg ?? 0;
// warm-up (module loading, JIT: the first few hundred messages are markedly slower), not counted
await runMailwire(WARMUP, 5);
await runNodemailer(WARMUP, 5);
if (sourceBin) await runSmtpSource(WARMUP, 5);

const results = new Map<string, Outcome[]>();
let failures = 0;
let sent = (sourceBin ? 3 : 2) * WARMUP;
for (let round = 0; round < ROUNDS; round++) {
  const order = clients.map((_, i) => clients[(i + round) % clients.length]!);
  for (const c of CONCURRENCY) {
    for (const client of order) {
      const o = await runners[client](M, c);
      sent += M;
      if (o.failed > 0) {
        failures += o.failed;
        console.log(`  round ${round + 1} ${client} c=${c}: ${o.failed} failed (${o.note ?? ''})`);
      }
      const key = `${client}/${c}`;
      results.set(key, [...(results.get(key) ?? []), o]);
    }
  }
}

const rate = (key: string) => median((results.get(key) ?? []).map((o) => (o.ok / o.ms) * 1000));
const rows: string[][] = [];
for (const c of CONCURRENCY) {
  for (const client of clients) {
    const key = `${client}/${c}`;
    const os = results.get(key)!;
    const per = os.map((o) => ((o.ok / o.ms) * 1000).toFixed(0)).join(' / ');
    const cpu = os[0]?.cpuMs !== undefined ? (median(os.map((o) => o.cpuMs!)) / M).toFixed(2) : '';
    rows.push([`${client}`, String(c), rate(key).toFixed(0), per, cpu]);
  }
}
console.log(table(['client', 'concurrency', 'msgs/s (median)', 'msgs/s per round', 'client CPU ms/msg'], rows));
console.log('');
for (const c of CONCURRENCY) {
  const mw = rate(`mailwire/${c}`);
  const parts = [`mailwire/nodemailer ${(mw / rate(`nodemailer/${c}`)).toFixed(2)}`];
  if (sourceBin) parts.push(`mailwire/smtp-source ${(mw / rate(`smtp-source/${c}`)).toFixed(2)}`, `nodemailer/smtp-source ${(rate(`nodemailer/${c}`) / rate(`smtp-source/${c}`)).toFixed(2)}`);
  console.log(`concurrency ${c}: ${parts.join(', ')}`);
}
if (receiver?.kind === 'smtp-sink') {
  await receiver.waitForMessages(sinkBefore + sent, 5000).catch(() => {});
  const got = (receiver.lastCounters()?.mesg ?? 0) - sinkBefore;
  console.log(`\nsmtp-sink counted ${got} messages (sent ${sent}: every client, round and concurrency, plus ${(sourceBin ? 3 : 2) * WARMUP} warm-up)`);
  if (got !== sent) failures += Math.abs(sent - got);
} else if (receiver?.kind === 'receiver.ts') {
  await receiver.waitForMessages(sent, 5000).catch(() => {});
  console.log(`\nbench/receiver.ts reported ${receiver.transactions.length} messages (sent ${sent}, warm-up included)`);
  if (receiver.transactions.length !== sent) failures += Math.abs(sent - receiver.transactions.length);
}
console.log(failures === 0 ? 'result: every message accepted' : `result: ${failures} message(s) not accepted`);
await receiver?.stop();
process.exitCode = failures === 0 ? 0 : 1;
