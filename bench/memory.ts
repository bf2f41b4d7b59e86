/**
 * Sender memory while streaming one large message through deliver().
 *
 *   npx tsx bench/memory.ts [--mb 200] [--cases control,bdat,data-sink,data,readable] [--limit-mb 64]
 *                           [--generator pool|fresh] [--no-verify]
 *
 * The message (default 200 MiB of generated text lines, 64 KiB chunks, bench/message-generator.ts)
 * is never held whole: deliver() gets an async generator (or a Node Readable). Each case runs the
 * sender in a fresh Node process (RSS and maxRSS are per process) and the receiver in another:
 *   bdat       mailwire TestServer with CHUNKING (bench/receiver.ts, discardData)  → BDAT path
 *   data-sink  Postfix smtp-sink (no CHUNKING; -d dumps the message to a temp file) → DATA path
 *   data       mailwire TestServer without CHUNKING (bench/receiver.ts)             → DATA path
 *   readable   as bdat, but the message is a Node Readable instead of an async generator
 *   control    for scale: no deliver(), no SMTP, the same chunks written to a plain socket (with
 *              backpressure) to a raw discard server in another process
 * (data-sink is skipped when smtp-sink is not installed.) The sender reports its baseline RSS
 * (after GC, before deliver()), the peak RSS sampled every 10 ms (from a worker thread, so
 * sampling goes on while the main thread is busy), and process.resourceUsage()
 * .maxRSS; the increase is peak − baseline. The receiver's size and SHA-256 (or smtp-sink's dump
 * file) are checked against the generator's. Exits 1 if an increase is over the limit (64 MiB)
 * or a check fails, after printing everything.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, rmSync, statSync, chmodSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { connect } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { argFlag, argNumber, argValue, BENCH_DIR, findPostfixTool, mb, REPO_DIR, startDiscard, startReceiver, startSmtpSink, table, type ChildReceiver } from './lib.js';
import { expectedDigests, generateMessage, messageReadable, type GeneratorOptions } from './message-generator.js';

const MiB = 1024 * 1024;
/** `pool`: cheap source (copies of 32 pre-generated chunks), so backpressure matters; `fresh`: every line generated. */
const GENERATOR = argValue('--generator', 'pool') === 'fresh' ? 'fresh' : 'pool';

interface SenderReport {
  baselineRss: number;
  sampledPeakRss: number;
  maxRssBefore: number;
  maxRssAfter: number;
  samples: number;
  peakHeapUsed: number;
  peakExternal: number;
  peakArrayBuffers: number;
  elapsedMs: number;
  contentBytes: number;
  results: Array<{ action: string; status: string; reason: string }>;
  transcript: string[];
}

// ---------------------------------------------------------------- sender (child process)

async function sender(): Promise<void> {
  const { deliver } = await import('../src/index.js');
  const destination = argValue('--destination')!;
  const gen: GeneratorOptions = {
    size: argNumber('--size', 200 * MiB),
    chunkSize: argNumber('--chunk', 65536),
    seed: argNumber('--seed', 1),
    mode: argValue('--generator', 'pool') === 'fresh' ? 'fresh' : 'pool',
  };
  const source = argValue('--source', 'generator');

  // RSS is sampled from a worker thread, so the samples keep coming while the main thread is
  // busy streaming (RSS is per process; the worker's own few MiB are in the baseline).
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     let peak = 0, samples = 0;
     const t = setInterval(() => { const r = process.memoryUsage.rss(); samples++; if (r > peak) peak = r; }, 10);
     parentPort.on('message', (m) => {
       if (m === 'reset') { peak = process.memoryUsage.rss(); samples = 0; parentPort.postMessage({ peak, samples }); }
       else if (m === 'stop') { clearInterval(t); const r = process.memoryUsage.rss(); if (r > peak) peak = r; parentPort.postMessage({ peak, samples }); }
     });`,
    { eval: true },
  );
  const ask = (m: string) =>
    new Promise<{ peak: number; samples: number }>((res) => {
      worker.once('message', res);
      worker.postMessage(m);
    });

  const gc = (globalThis as { gc?: () => void }).gc;
  // settle: let module loading garbage go, then measure the baseline
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const baselineRss = process.memoryUsage().rss;
  const maxRssBefore = process.resourceUsage().maxRSS * 1024;
  await ask('reset');
  let peakHeapUsed = 0;
  let peakExternal = 0;
  let peakArrayBuffers = 0;
  const sample = () => {
    const m = process.memoryUsage();
    if (m.heapUsed > peakHeapUsed) peakHeapUsed = m.heapUsed;
    if (m.external > peakExternal) peakExternal = m.external;
    if (m.arrayBuffers > peakArrayBuffers) peakArrayBuffers = m.arrayBuffers;
  };
  // heap figures from the main thread (as often as its event loop allows)
  const timer = setInterval(sample, 10);

  let contentBytes = 0;
  const transcript: string[] = [];
  const message = source === 'readable' ? messageReadable(gen) : generateMessage(gen);
  const t0 = performance.now();
  if (source === 'raw') {
    // control: the same chunks written to a plain TCP socket with backpressure, no SMTP
    const [host, port] = destination.replace(/^\[/, '').split(']:') as [string, string];
    const sock = connect({ host, port: Number(port) });
    sock.setNoDelay(true);
    await once(sock, 'connect');
    for await (const c of generateMessage(gen)) {
      contentBytes += c.length;
      if (!sock.write(c)) await once(sock, 'drain');
    }
    sock.end();
    await once(sock, 'close');
  }
  const r = source === 'raw' ? { recipients: [] } : await deliver({ from: 'bench@example.test', to: ['sink@example.test'], message }, destination, {
    tls: { level: 'none' },
    onEvent: (e) => {
      if (e.type === 'content') contentBytes += e.bytes;
      else if ((e.type === 'send' || e.type === 'receive') && transcript.length < 60) transcript.push(`${e.type === 'send' ? 'C' : 'S'}: ${e.line}`);
      else if (e.type === 'warning') transcript.push(`warning: ${e.message}`);
    },
  });
  const elapsedMs = performance.now() - t0;
  sample();
  clearInterval(timer);
  const w = await ask('stop');
  await worker.terminate();
  const report: SenderReport = {
    baselineRss,
    sampledPeakRss: Math.max(w.peak, baselineRss),
    maxRssBefore,
    maxRssAfter: process.resourceUsage().maxRSS * 1024,
    samples: w.samples,
    peakHeapUsed,
    peakExternal,
    peakArrayBuffers,
    elapsedMs,
    contentBytes,
    results: r.recipients.map((x) => ({ action: x.action, status: x.status, reason: x.reason })),
    transcript,
  };
  process.stdout.write('REPORT ' + JSON.stringify(report) + '\n');
}

function runSender(destination: string, size: number, source: string): Promise<SenderReport> {
  return new Promise((resolve, reject) => {
    const args = ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--sender', '--destination', destination, '--size', String(size), '--source', source, '--generator', GENERATOR];
    const child = spawn(process.execPath, args, { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('REPORT '));
      if (!line) return reject(new Error(`sender exited with ${code} without a report:\n${out}`));
      resolve(JSON.parse(line.slice('REPORT '.length)) as SenderReport);
    });
  });
}

// ---------------------------------------------------------------- orchestrator

interface CaseDef {
  id: string;
  path: string;
  source: 'generator' | 'readable' | 'raw';
  receiver: () => Promise<{ r: ChildReceiver; dumpDir?: string }>;
}

async function hashRange(file: string, start: number, endExclusive: number): Promise<string> {
  const h = createHash('sha256');
  if (endExclusive <= start) return h.digest('hex');
  for await (const c of createReadStream(file, { start, end: endExclusive - 1, highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

async function main(): Promise<void> {
  const size = Math.round(argNumber('--mb', 200) * MiB);
  const limit = argNumber('--limit-mb', 64) * MiB;
  const verify = !argFlag('--no-verify');
  const sink = findPostfixTool('smtp-sink');
  const wanted = (argValue('--cases') ?? 'control,bdat,data-sink,data,readable').split(',');

  const all: CaseDef[] = [
    // control: the same chunks over a plain socket to a discard server (Node streaming, no SMTP)
    { id: 'control', path: 'raw TCP', source: 'raw', receiver: async () => ({ r: await startDiscard() }) },
    { id: 'bdat', path: 'BDAT', source: 'generator', receiver: async () => ({ r: await startReceiver({ chunking: true }) }) },
    {
      id: 'data-sink',
      path: 'DATA',
      source: 'generator',
      receiver: async () => {
        let dumpDir: string | undefined;
        let dumpTemplate: string | undefined;
        if (verify) {
          dumpDir = mkdtempSync(join(tmpdir(), 'mailwire-bench-sink-'));
          chmodSync(dumpDir, 0o777); // smtp-sink drops to nobody
          dumpTemplate = dumpDir + '/';
        }
        return { r: await startSmtpSink(dumpTemplate ? { dumpTemplate } : {}), ...(dumpDir ? { dumpDir } : {}) };
      },
    },
    { id: 'data', path: 'DATA', source: 'generator', receiver: async () => ({ r: await startReceiver({ chunking: false }) }) },
    { id: 'readable', path: 'BDAT', source: 'readable', receiver: async () => ({ r: await startReceiver({ chunking: true }) }) },
  ];
  const cases = all.filter((c) => wanted.includes(c.id) && (c.id !== 'data-sink' || sink));

  console.log(`mailwire memory benchmark: one ${mb(size)} MiB message (64 KiB chunks of generated text lines, never held whole;`);
  console.log(`  generator '${GENERATOR}': ${GENERATOR === 'pool' ? 'fresh copies of 32 pre-generated chunks, so the source is fast and backpressure bounds memory' : 'every line generated anew, so the source is the bottleneck'})`);
  console.log(`sender: a fresh node ${process.version} process per case (--expose-gc, tsx, src/), RSS sampled every 10 ms from a worker thread + resourceUsage().maxRSS`);
  console.log(`limit: peak RSS increase ≤ ${mb(limit)} MiB${sink ? '' : '; smtp-sink not installed, data-sink case skipped'}`);
  let expected: ReturnType<typeof expectedDigests> | undefined;
  if (verify) {
    const t = performance.now();
    expected = expectedDigests({ size, chunkSize: 65536, seed: 1, mode: GENERATOR });
    console.log(`expected: ${expected.size} octets sha256 ${expected.sha256.slice(0, 16)}… (LF form ${expected.lfSize} octets, ${((performance.now() - t) / 1000).toFixed(1)} s to compute)`);
  }
  console.log('');

  const rows: string[][] = [];
  const notes: string[] = [];
  let failed = 0;
  for (const c of cases) {
    const { r, dumpDir } = await c.receiver();
    let report: SenderReport;
    try {
      report = await runSender(`[${r.host}]:${r.port}`, size, c.source);
      await r.waitForMessages(1, 30_000).catch(() => {});
      // smtp-sink writes its dump as the data arrives; give it a moment to close the file
      await new Promise((res) => setTimeout(res, 200));
    } finally {
      await r.stop();
    }
    const delivered = report.results.every((x) => x.action === 'relayed' || x.action === 'delivered');
    let check = 'not checked';
    let ok = delivered;
    const control = r.kind === 'discard';
    if (control) {
      const got = r.transactions[0]?.size;
      ok = got === size;
      check = `${got ?? 0} of ${size} octets reached the discard server; for scale, not held to the limit`;
    } else if (!delivered) check = `NOT DELIVERED: ${report.results.map((x) => `${x.action} ${x.status} ${x.reason}`).join('; ')}`;
    else if (expected && r.kind === 'receiver.ts') {
      const tx = r.transactions[0];
      if (!tx) {
        ok = false;
        check = 'receiver reported no transaction';
      } else if (tx.size === expected.size && tx.sha256 === expected.sha256) {
        check = `${tx.method} ${tx.size} octets, sha256 ok${tx.method === 'BDAT' ? ` (${tx.bdatChunks} chunks)` : ''}`;
      } else {
        ok = false;
        check = `MISMATCH: got ${tx.method} ${tx.size} octets sha256 ${tx.sha256}, want ${expected.size} ${expected.sha256}`;
      }
    } else if (expected && dumpDir) {
      const files = readdirSync(dumpDir);
      if (files.length !== 1) {
        ok = false;
        check = `smtp-sink dump: ${files.length} files`;
      } else {
        const file = join(dumpDir, files[0]!);
        const fsize = statSync(file).size;
        // dump = smtp-sink's X-…/Received: header block + the message with LF line ends + "\n"
        const headerLen = fsize - expected.lfSize - 1;
        let headOk = false;
        if (headerLen > 0) {
          const fd = openSync(file, 'r');
          const b = Buffer.alloc(Math.min(headerLen, 4096));
          readSync(fd, b, 0, b.length, 0);
          closeSync(fd);
          headOk = b.toString('latin1').startsWith('X-Client-Addr:') && b.toString('latin1').includes('Received:');
        }
        const sha = headOk ? await hashRange(file, headerLen, fsize - 1) : '';
        if (headOk && sha === expected.lfSha256) check = `smtp-sink dump: ${expected.lfSize} octets (LF form), sha256 ok; counters ${JSON.stringify(r.lastCounters())}`;
        else {
          ok = false;
          check = `smtp-sink dump MISMATCH: file ${fsize} octets, sha256 of body ${sha || '(header block not found)'}`;
        }
      }
      rmSync(dumpDir, { recursive: true, force: true });
    } else if (r.kind === 'smtp-sink') {
      check = `smtp-sink counters ${JSON.stringify(r.lastCounters())}`;
    }
    const peak = Math.max(report.sampledPeakRss, report.maxRssAfter > report.maxRssBefore ? report.maxRssAfter : 0);
    const increase = peak - report.baselineRss;
    const over = !control && increase > limit;
    if (over || !ok) failed++;
    rows.push([
      c.id,
      c.path,
      c.source,
      mb(report.baselineRss),
      mb(report.sampledPeakRss),
      mb(report.maxRssAfter),
      mb(increase),
      control ? '(control)' : over ? 'OVER' : 'ok',
      (report.elapsedMs / 1000).toFixed(2),
      ((size / MiB) / (report.elapsedMs / 1000)).toFixed(0),
    ]);
    notes.push(`${c.id}: receiver ${r.describe}`);
    notes.push(`${c.id}: ${check}; ${control ? '' : `content events: ${report.contentBytes} octets written; `}${report.samples} RSS samples; peak heapUsed ${mb(report.peakHeapUsed)} MiB, external ${mb(report.peakExternal)} MiB, arrayBuffers ${mb(report.peakArrayBuffers)} MiB; maxRSS before deliver() ${mb(report.maxRssBefore)} MiB`);
    if (!ok) notes.push(`${c.id}: transcript: ${report.transcript.join(' / ')}`);
  }

  console.log(table(['case', 'path', 'source', 'base MiB', 'peak MiB (sampled)', 'maxRSS MiB', 'increase MiB', `≤ ${mb(limit)}`, 'seconds', 'MiB/s*'], rows));
  console.log('');
  for (const n of notes) console.log(n);
  console.log('\n(increase = max(sampled peak, maxRSS if it grew during deliver()) − baseline RSS. The control row is');
  console.log(' for scale only: plain Node streaming of the same chunks to a socket, whose RSS grows with the');
  console.log(' allocation rate (freed Buffers wait for GC), not with the message size.');
  console.log(` * MiB/s includes producing the message in the sender${GENERATOR === 'fresh' ? ', which is most of the time' : ''})`);
  console.log(failed === 0 ? 'result: all cases within the limit and verified' : `result: ${failed} case(s) over the limit or not verified`);
  process.exitCode = failed === 0 ? 0 : 1;
}

if (argFlag('--sender')) await sender();
else await main();
void BENCH_DIR;
