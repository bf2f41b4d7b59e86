/**
 * Pooled throughput: messages/s and client CPU per message, mailwire's Pool vs nodemailer's pool
 * vs Postfix's smtp-source, same servers, same run.
 *
 *   node --import tsx bench/pool-throughput.ts [--runs 3] [--messages 5000] [--messages-postfix 2000]
 *        [--budget 3] [--warmup 20000] [--rtt 0,20] [--conns 1,10] [--rcpts 1,10] [--size 1024]
 *        [--servers sink,postfix] [--postfix bench|interop] [--per-conn 32] [--sweep 10,320,2000]
 *        [--clients mailwire,mailwire-tp-off,mailwire-split,nodemailer,smtp-source,smtp-source-d]
 *        [--quick] [--src]
 *
 * Cells: server × RTT × connections C × recipients per message; 1 KB messages; tls none.
 *   mailwire         new Pool({ idleTimeout: 2000, maxConnectionsPerDestination: C,
 *                    maxConnections: 100, maxTransactionsPerConnection: 32 }) per run,
 *                    deliver() per message, C × 32 calls in flight (transactionPipelining default)
 *   mailwire-tp-off  the same with transactionPipelining: false
 *   mailwire-split   what-if (C > 1 only): C pools of one connection each, caller i on pool i mod C,
 *                    pipelining on: the callers spread evenly over the connections (one Pool
 *                    does not do that at this commit: most callers join one connection)
 *   nodemailer       createTransport({ pool: true, maxConnections: C, maxMessages: Infinity }) per
 *                    run (maxMessages lifted so it never reconnects), sendMail() per message,
 *                    the same C × 32 calls in flight
 *   smtp-source      smtp-source -c -l SIZE -m N -s C -r R (a new connection per message, no
 *                    pipelining: Postfix's C load generator as the brief runs it)
 *   smtp-source-d    the same with -d: each session keeps its connection (the pooled comparison;
 *                    still no pipelining)
 * Servers:
 *   sink      Postfix smtp-sink on a free port (PIPELINING, no CHUNKING: the DATA path)
 *   postfix   real Postfix smtpd with CHUNKING: by default a private instance started here
 *             (bench/postfix-discard.ts: smtpd → cleanup → queue → discard(8); nothing stored),
 *             or with --postfix interop the interop Postfix on 11025 (test/interop/peers.sh;
 *             every recipient is stored in its catchall maildir and removed at the end)
 * RTT 20: through bench/latency-proxy.ts in a child process (10 ms each way).
 *
 * Each Node client (mailwire, mailwire-tp-off, mailwire-split, nodemailer) runs in a worker process
 * of its own, forked once and reused: no shared heap, GC or JIT feedback between clients. Each
 * worker first delivers --warmup messages (20,000: V8 needs ~10,000 deliveries to finish
 * optimizing mailwire on this 2-vCPU machine; the steady state of a long-running pool is what
 * is measured; 1,000 for the next server).
 * Each cell: one unrecorded pilot run per client (at 20 ms it sizes N so that a run takes about
 * --budget seconds: N = clamp(rate × budget, 30, 5000)), then --runs runs with the client order
 * rotated; the median rate is reported. CPU/msg = process.cpuUsage() (user + system) of the
 * client's worker over the run / N (the servers and the proxy are other processes), and the
 * shell `times` of the smtp-source child for smtp-source. No forced GC between runs (a forced
 * full GC made the next runs ~30 % slower here).
 * Then an in-flight sweep (smtp-sink, 0 ms, 10 connections, 1 recipient): mailwire and
 * nodemailer with --sweep calls in flight.
 * Acceptance (exit 1 if missed): sink, 0 ms, 10 connections, 1 recipient:
 *   mailwire ≥ 2 × nodemailer pool, and mailwire ≥ smtp-source with 10 sessions.
 */
import { performance } from 'node:perf_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { forkLatencyProxy, type RemoteLatencyProxy } from './latency-proxy.js';
import { argFlag, argNumber, argValue, findPostfix, findPostfixTool, fixedSizeMessage, gitHead, inFlight, loadMailwire, median, runSmtpSource, startSmtpSink, table, type ChildReceiver } from './lib.js';
import { startBenchPostfix, type BenchPostfix } from './postfix-discard.js';

const mailwire = await loadMailwire();
const { deliver, Pool } = mailwire.module;
const QUICK = argFlag('--quick');
const RUNS = argNumber('--runs', QUICK ? 1 : 3);
const M0_SINK = argNumber('--messages', QUICK ? 3000 : 5000);
const M0_POSTFIX = argNumber('--messages-postfix', QUICK ? 500 : 2000);
const BUDGET_S = argNumber('--budget', QUICK ? 1 : 3);
// JIT warm-up: on a 2-vCPU machine whose other CPU runs the server, V8 finishes optimizing
// mailwire's hot paths only after ~10,000 deliveries (the optimizing compiler runs in the
// background); a long-running pool is measured here, so each Node client first runs this many.
const WARMUP = argNumber('--warmup', 20000);
/** A worker process runs one Node client (see remote()). */
const WORKER = argFlag('--worker');
const SIZE = argNumber('--size', 1024);
const PER_CONN = argNumber('--per-conn', 32);
const RTTS = (argValue('--rtt') ?? '0,20').split(',').map(Number);
const CONNS = (argValue('--conns') ?? '1,10').split(',').map(Number);
const RCPTS = (argValue('--rcpts') ?? '1,10').split(',').map(Number);
const SERVERS = (argValue('--servers') ?? 'sink,postfix').split(',') as Array<'sink' | 'postfix'>;
const SWEEP = (argValue('--sweep') ?? (QUICK ? '' : '10,320,2000')).split(',').filter((x) => x !== '').map(Number);
const POSTFIX_MODE = argValue('--postfix', 'bench') === 'interop' ? 'interop' : 'bench';
type Client = 'mailwire' | 'mailwire-tp-off' | 'mailwire-split' | 'nodemailer' | 'smtp-source' | 'smtp-source-d';
const sourceBin = findPostfixTool('smtp-source');
const ALL_CLIENTS: Client[] = ['mailwire', 'mailwire-tp-off', 'mailwire-split', 'nodemailer', 'smtp-source', 'smtp-source-d'];
const CLIENTS = ((argValue('--clients') ?? ALL_CLIENTS.join(',')).split(',') as Client[]).filter((c) => sourceBin || !c.startsWith('smtp-source'));

const TOKEN = argValue('--token') ?? `pool${Date.now().toString(36)}`;
const FROM = `bench-${TOKEN}@example.test`;

// ---------------------------------------------------------------- servers

interface Server {
  id: 'sink' | 'postfix';
  label: string;
  host: string;
  port: number;
  describe: string;
  sink?: ChildReceiver;
  bench?: BenchPostfix;
  stop(): Promise<void>;
}

async function startServer(id: 'sink' | 'postfix'): Promise<Server | undefined> {
  if (id === 'sink') {
    if (!findPostfixTool('smtp-sink')) {
      console.log('smtp-sink is not installed: the sink cells are skipped');
      return undefined;
    }
    const sink = await startSmtpSink();
    return { id, label: 'smtp-sink', host: sink.host, port: sink.port, describe: sink.describe, sink, stop: () => sink.stop() };
  }
  if (POSTFIX_MODE === 'interop') {
    const pf = await findPostfix();
    if (!pf) {
      console.log('the interop Postfix is not running (test/interop/peers.sh start): the postfix cells are skipped');
      return undefined;
    }
    return { id, label: 'Postfix', host: pf.chunking.host, port: pf.chunking.port, describe: `interop Postfix smtpd with CHUNKING ${pf.chunking.host}:${pf.chunking.port} (stores every recipient in its catchall maildir; removed at the end)`, stop: async () => {} };
  }
  try {
    const bench = await startBenchPostfix();
    return { id, label: 'Postfix', host: bench.host, port: bench.chunkingPort, describe: bench.describe, bench, stop: () => bench.stop() };
  } catch (err) {
    console.log(`the bench Postfix could not start (${err instanceof Error ? err.message : String(err)}): the postfix cells are skipped`);
    return undefined;
  }
}

// ---------------------------------------------------------------- clients

interface Outcome {
  n: number;
  ms: number;
  ok: number;
  cpuMs: number | undefined;
  note?: string;
}

interface Target {
  host: string;
  port: number;
}

function recipientsFor(r: number): string[] {
  return Array.from({ length: r }, (_, i) => `r${i + 1}-${TOKEN}@example.test`);
}

const messages = new Map<number, string>();
function messageFor(r: number): string {
  let m = messages.get(r);
  if (!m) {
    m = fixedSizeMessage(SIZE, { from: FROM, to: recipientsFor(r), subject: `mailwire pool throughput ${TOKEN}`, id: `${TOKEN}.${r}@bench.example.test` });
    messages.set(r, m);
  }
  return m;
}

/** Time `n` sends, `inflight` at a time; a send resolves undefined, or why its message was not accepted. */
async function timed(n: number, inflight: number, send: (i: number) => Promise<string | undefined>): Promise<Outcome> {
  let ok = 0;
  let note: string | undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await inFlight(n, inflight, async (i) => {
    const failed = await send(i);
    if (failed === undefined) ok++;
    else note ??= failed;
  });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { n, ms, ok, cpuMs: (cpu.user + cpu.system) / 1000, ...(note ? { note } : {}) };
}

/**
 * mailwire: one Pool of `conns` connections per run. `split` is a what-if for the pool's caller
 * distribution: `conns` pools of one connection each, caller i always on pool i mod C (so every
 * connection carries an equal share of the calls in flight).
 */
async function runMailwire(t: Target, n: number, conns: number, r: number, o: { transactionPipelining?: boolean; inflight?: number; split?: boolean } = {}): Promise<Outcome> {
  const newPool = (connections: number) => new Pool({ idleTimeout: 2000, maxConnectionsPerDestination: connections, maxConnections: 100, maxTransactionsPerConnection: 32 });
  const pools = o.split ? Array.from({ length: conns }, () => newPool(1)) : [newPool(conns)];
  const to = recipientsFor(r);
  const message = messageFor(r);
  const destination = `[${t.host}]:${t.port}`;
  const transactionPipelining = o.transactionPipelining ?? true;
  const outcome = await timed(n, o.inflight ?? conns * PER_CONN, async (i) => {
    const res = await deliver({ from: FROM, to, message }, destination, { pool: pools[i % pools.length]!, tls: { level: 'none' }, heloName: 'bench.example.test', transactionPipelining });
    return res.recipients.every((x) => x.action === 'relayed') ? undefined : res.recipients.map((x) => `${x.action} ${x.status} ${x.reason}`).join('; ');
  });
  await Promise.all(pools.map((p) => p.close()));
  return outcome;
}

async function runNodemailer(t: Target, n: number, conns: number, r: number, inflight = conns * PER_CONN): Promise<Outcome> {
  const transport = nodemailer.createTransport({ host: t.host, port: t.port, secure: false, ignoreTLS: true, pool: true, maxConnections: conns, maxMessages: Infinity, name: 'bench.example.test' });
  const to = recipientsFor(r);
  const raw = messageFor(r);
  const outcome = await timed(n, inflight, async () => {
    try {
      const info = await transport.sendMail({ envelope: { from: FROM, to }, raw });
      return info.accepted.length === to.length ? undefined : `accepted ${info.accepted.length}, rejected ${info.rejected.length}`;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  });
  transport.close();
  return outcome;
}

/** smtp-source's -l is the payload without its own few headers (From, To, Date, Message-Id: ~130 octets). */
async function runSource(t: Target, n: number, conns: number, r: number, keep: boolean): Promise<Outcome> {
  const args = ['-c', ...(keep ? ['-d'] : []), '-l', String(SIZE), '-m', String(n), '-s', String(conns), '-r', String(r), '-M', 'bench.example.test', '-f', FROM, '-t', `r-${TOKEN}@example.test`, `${t.host}:${t.port}`];
  const res = await runSmtpSource(sourceBin!, args);
  const ok = res.code === 0 ? (res.counted ?? n) : 0;
  return { n, ms: res.ms, ok, cpuMs: res.cpuMs, ...(res.code !== 0 ? { note: `exit ${res.code}: ${res.stderr.trim().slice(0, 200)}` } : {}) };
}

type NodeClient = 'mailwire' | 'mailwire-tp-off' | 'mailwire-split' | 'nodemailer';
interface Job {
  id: number;
  client: NodeClient;
  t: Target;
  n: number;
  conns: number;
  r: number;
  inflight?: number;
}

/** A job in this process (the worker side). */
function runLocal(j: Job): Promise<Outcome> {
  if (j.client === 'nodemailer') return runNodemailer(j.t, j.n, j.conns, j.r, j.inflight);
  return runMailwire(j.t, j.n, j.conns, j.r, {
    transactionPipelining: j.client !== 'mailwire-tp-off',
    split: j.client === 'mailwire-split',
    ...(j.inflight !== undefined ? { inflight: j.inflight } : {}),
  });
}

/**
 * Each Node client runs in a process of its own (forked once, reused for every run): the
 * clients do not share a heap, a garbage collector or the JIT's type feedback for Node's own
 * net and stream code, and each one's process.cpuUsage() is its own.
 */
const workers = new Map<NodeClient, { child: ChildProcess; pending: Map<number, (o: Outcome) => void> }>();
let nextJob = 1;
function remote(client: NodeClient, t: Target, n: number, conns: number, r: number, inflight?: number): Promise<Outcome> {
  let w = workers.get(client);
  if (!w) {
    const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--worker', '--token', TOKEN], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const pending = new Map<number, (o: Outcome) => void>();
    child.on('message', (m: { id: number; o: Outcome }) => {
      pending.get(m.id)?.(m.o);
      pending.delete(m.id);
    });
    child.on('exit', (code) => {
      for (const done of pending.values()) done({ n: 0, ms: 1, ok: 0, cpuMs: undefined, note: `${client} worker exited with ${code}` });
      pending.clear();
      workers.delete(client);
    });
    w = { child, pending };
    workers.set(client, w);
  }
  const job: Job = { id: nextJob++, client, t, n, conns, r, ...(inflight !== undefined ? { inflight } : {}) };
  const worker = w;
  return new Promise((resolve) => {
    worker.pending.set(job.id, resolve);
    worker.child.send(job);
  });
}

function runClient(c: Client, t: Target, n: number, conns: number, r: number): Promise<Outcome> {
  if (c === 'smtp-source' || c === 'smtp-source-d') return runSource(t, n, conns, r, c === 'smtp-source-d');
  return remote(c, t, n, conns, r);
}

// ---------------------------------------------------------------- main

interface CellResult {
  server: string;
  rtt: number;
  conns: number;
  rcpts: number;
  per: Map<Client, Outcome[]>;
}

const rate = (o: Outcome) => (o.ok / o.ms) * 1000;
const medRate = (os: Outcome[] | undefined) => (os && os.length ? median(os.map(rate)) : NaN);
const medCpuUs = (os: Outcome[] | undefined) => {
  const xs = (os ?? []).filter((o) => o.cpuMs !== undefined && o.n > 0).map((o) => (o.cpuMs! * 1000) / o.n);
  return xs.length ? median(xs) : NaN;
};

async function main(): Promise<void> {
  console.log(`mailwire pool throughput: ${SIZE}-octet messages, tls none, ${RUNS} run(s) per cell (median), clients ${CLIENTS.join(', ')}`);
  console.log(`messages per run: ${M0_SINK} (0 ms, smtp-sink), ${M0_POSTFIX} (0 ms, Postfix); at 20 ms about ${BUDGET_S} s worth per run (from a pilot run), 30..5000`);
  console.log(`in flight: connections × ${PER_CONN} deliver()/sendMail() calls; mailwire-tp-off = mailwire with transactionPipelining: false; node ${process.version}, mailwire ${gitHead()} from ${mailwire.label}`);

  const results: CellResult[] = [];
  let failures = 0;
  const notes: string[] = [];

  let firstServer = true;
  for (const sid of SERVERS) {
    const server = await startServer(sid);
    if (!server) continue;
    console.log(`\nserver ${server.label}: ${server.describe}`);
    try {
      // warm-up: JIT in this process, smtpd processes in Postfix; not counted
      const direct: Target = { host: server.host, port: server.port };
      // The worker processes stay warm from one server to the next; smtp-source needs no JIT.
      const warm = firstServer ? WARMUP : Math.min(WARMUP, 1000);
      firstServer = false;
      for (const c of CLIENTS) await runClient(c, direct, c.startsWith('smtp-source') ? Math.min(warm, 1000) : warm, 10, 1);
      await server.bench?.drain();
      for (const rtt of RTTS) {
        let proxy: RemoteLatencyProxy | undefined;
        let target = direct;
        if (rtt > 0) {
          proxy = await forkLatencyProxy({ targetHost: server.host, targetPort: server.port, delayMs: rtt / 2, record: false });
          target = { host: proxy.host, port: proxy.port };
        }
        try {
          for (const conns of CONNS) {
            for (const rcpts of RCPTS) {
              const cell: CellResult = { server: server.label, rtt, conns, rcpts, per: new Map() };
              const sizes = new Map<Client, number>();
              const cellClients = CLIENTS.filter((c) => !(c === 'mailwire-split' && conns === 1));
              for (const c of cellClients) {
                // pilot: unrecorded; at 20 ms it sizes the runs
                const pilotN = rtt === 0 ? Math.min(500, sid === 'sink' ? M0_SINK : M0_POSTFIX) : c.startsWith('smtp-source') ? Math.max(conns * 2, 4) : conns * PER_CONN * 2;
                const p = await runClient(c, target, pilotN, conns, rcpts);
                const n = rtt === 0 ? (sid === 'sink' ? M0_SINK : M0_POSTFIX) : Math.round(Math.min(5000, Math.max(30, rate(p) * BUDGET_S)));
                sizes.set(c, n);
                await server.bench?.drain();
              }
              for (let run = 0; run < RUNS; run++) {
                const order = cellClients.map((_, i) => cellClients[(i + run + rcpts + conns) % cellClients.length]!);
                for (const c of order) {
                  const before = server.sink?.lastCounters()?.mesg;
                  const o = await runClient(c, target, sizes.get(c)!, conns, rcpts);
                  if (server.sink && before !== undefined) {
                    // smtp-sink's own count of messages (DATA completions) for this run
                    await server.sink.waitForMessages(before + o.n, 5000).catch(() => {});
                    const got = (server.sink.lastCounters()?.mesg ?? 0) - before;
                    if (got !== o.n) o.note = `${o.note ? o.note + '; ' : ''}smtp-sink counted ${got} of ${o.n}`;
                  }
                  if (o.ok !== o.n || o.note) {
                    failures++;
                    notes.push(`${server.label} ${rtt} ms ${conns}c ${rcpts}r ${c} run ${run + 1}: ${o.ok}/${o.n} ok ${o.note ?? ''}`);
                  }
                  cell.per.set(c, [...(cell.per.get(c) ?? []), o]);
                  await server.bench?.drain();
                }
              }
              results.push(cell);
              const line = cellClients.map((c) => `${c} ${medRate(cell.per.get(c)).toFixed(0)}/s`).join(', ');
              console.log(`  ${rtt} ms, ${conns} conn, ${rcpts} rcpt: ${line}`);
            }
          }
        } finally {
          await proxy?.close();
        }
      }
    } finally {
      await server.stop();
    }
  }

  // ---------------------------------------------------------------- report

  const rows: string[][] = [];
  for (const cell of results) {
    for (const c of CLIENTS) {
      const os = cell.per.get(c);
      if (!os) continue;
      rows.push([
        cell.server,
        String(cell.rtt),
        String(cell.conns),
        String(cell.rcpts),
        c,
        String(os[0]!.n),
        medRate(os).toFixed(0),
        os.map((o) => rate(o).toFixed(0)).join(' / '),
        Number.isFinite(medCpuUs(os)) ? medCpuUs(os).toFixed(0) : '-',
      ]);
    }
  }
  console.log('\n' + table(['server', 'RTT ms', 'conns', 'rcpts', 'client', 'msgs/run', 'msgs/s (median)', 'msgs/s per run', 'CPU µs/msg'], rows));

  const ratioRows: string[][] = [];
  const r2 = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '-');
  for (const cell of results) {
    const mw = medRate(cell.per.get('mailwire'));
    ratioRows.push([
      cell.server,
      String(cell.rtt),
      String(cell.conns),
      String(cell.rcpts),
      r2(mw, medRate(cell.per.get('mailwire-tp-off'))),
      r2(medRate(cell.per.get('mailwire-split')), medRate(cell.per.get('mailwire-tp-off'))),
      r2(mw, medRate(cell.per.get('nodemailer'))),
      r2(mw, medRate(cell.per.get('smtp-source'))),
      r2(mw, medRate(cell.per.get('smtp-source-d'))),
      r2(medCpuUs(cell.per.get('nodemailer')), medCpuUs(cell.per.get('mailwire'))),
    ]);
  }
  console.log('\nratios of medians, same run (rate: > 1 means mailwire is faster; CPU: nodemailer µs/msg ÷ mailwire µs/msg)');
  console.log(table(['server', 'RTT ms', 'conns', 'rcpts', 'tp on/off', 'split on/off', 'mw/nodemailer', 'mw/smtp-source', 'mw/smtp-source -d', 'CPU nm/mw'], ratioRows));
  console.log('(tp on/off: mailwire with transactionPipelining on (default) ÷ off, same pool settings; split on/off: the');
  console.log(' what-if mailwire-split (C pools × 1 connection, callers spread evenly, pipelining on) ÷ off)');

  // acceptance
  const acc = results.find((c) => c.server === 'smtp-sink' && c.rtt === 0 && c.conns === 10 && c.rcpts === 1);
  let accepted = true;
  console.log('\nacceptance (smtp-sink, 0 ms, 10 connections, 1 KB, 1 recipient):');
  if (!acc) {
    console.log('  - cell not measured');
  } else {
    const mw = medRate(acc.per.get('mailwire'));
    const nm = medRate(acc.per.get('nodemailer'));
    const ss = medRate(acc.per.get('smtp-source'));
    const sd = medRate(acc.per.get('smtp-source-d'));
    if (Number.isFinite(nm)) {
      const pass = mw >= 2 * nm;
      accepted &&= pass;
      console.log(`  ${pass ? '✓' : '✗'} mailwire ${mw.toFixed(0)}/s ≥ 2 × nodemailer pool ${nm.toFixed(0)}/s (= ${(2 * nm).toFixed(0)}/s): ratio ${(mw / nm).toFixed(2)}`);
    }
    if (Number.isFinite(ss)) {
      const pass = mw >= ss;
      accepted &&= pass;
      console.log(`  ${pass ? '✓' : '✗'} mailwire ${mw.toFixed(0)}/s ≥ smtp-source -s 10 ${ss.toFixed(0)}/s: ratio ${(mw / ss).toFixed(2)}`);
    }
    if (Number.isFinite(sd)) console.log(`  (info) mailwire vs smtp-source -d -s 10 (connections kept) ${sd.toFixed(0)}/s: ratio ${(mw / sd).toFixed(2)}`);
  }

  // in-flight sweep: how many concurrent deliver() calls the pool is given (same cell)
  if (SWEEP.length > 0) {
    const sink = SERVERS.includes('sink') && findPostfixTool('smtp-sink') ? await startSmtpSink() : undefined;
    if (sink) {
      const t: Target = { host: sink.host, port: sink.port };
      const srows: string[][] = [];
      // (the workers are warm already: this only opens the new sink's connections once)
      await remote('mailwire', t, 1000, 10, 1);
      await remote('nodemailer', t, 1000, 10, 1);
      for (const f of SWEEP) {
        const mw: Outcome[] = [];
        const nm: Outcome[] = [];
        for (let run = 0; run < RUNS; run++) {
          mw.push(await remote('mailwire', t, Math.max(M0_SINK, f), 10, 1, f));
          nm.push(await remote('nodemailer', t, Math.max(M0_SINK, f), 10, 1, f));
        }
        for (const o of [...mw, ...nm]) {
          if (o.ok !== o.n) {
            failures++;
            notes.push(`sweep in-flight ${f}: ${o.ok}/${o.n} ok ${o.note ?? ''}`);
          }
        }
        srows.push([String(f), String(mw[0]!.n), medRate(mw).toFixed(0), medCpuUs(mw).toFixed(0), medRate(nm).toFixed(0), medCpuUs(nm).toFixed(0), r2(medRate(mw), medRate(nm))]);
      }
      await sink.stop();
      console.log('\nin-flight sweep (smtp-sink, 0 ms, 10 connections, 1 recipient): concurrent deliver() / sendMail() calls');
      console.log(table(['in flight', 'msgs/run', 'mailwire msgs/s', 'mailwire CPU µs/msg', 'nodemailer msgs/s', 'nodemailer CPU µs/msg', 'mw/nm'], srows));
    }
  }

  for (const n of notes) console.log('  ' + n);
  console.log(failures === 0 ? '\nevery message accepted (smtp-sink counts checked per run)' : `\n${failures} run(s) with messages not accepted (above)`);

  if (POSTFIX_MODE === 'interop' && SERVERS.includes('postfix')) {
    // remove what the interop Postfix stored for this run (recipients and sender carry TOKEN)
    const envFile = join(process.env.MAILWIRE_INTEROP_DIR ?? '/tmp/mailwire-interop', 'ports.env');
    let maildirs = '/tmp/mailwire-interop/postfix/mail';
    try {
      maildirs = /^MAILWIRE_INTEROP_POSTFIX_MAILDIRS=(.*)$/m.exec(readFileSync(envFile, 'utf8'))?.[1] ?? maildirs;
    } catch {
      /* defaults */
    }
    await new Promise((r) => setTimeout(r, 3000));
    const dir = join(maildirs, 'catchall', 'new');
    let removed = 0;
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (readFileSync(p, 'latin1').includes(TOKEN)) {
        rmSync(p);
        removed++;
      }
    }
    console.log(`removed ${removed} stored message(s) with token ${TOKEN} from ${dir}`);
  }

  process.exitCode = accepted && failures === 0 ? 0 : 1;
  for (const w of workers.values()) w.child.disconnect();
}

if (WORKER) {
  process.on('message', (j: Job) => {
    void runLocal(j).then((o) => process.send!({ id: j.id, o }));
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}
