/**
 * Soak: 100,000 messages through one Pool to a faulty server in another process; every result
 * checked against what the server recorded; RSS of the sending process; and the sending process
 * must exit by itself afterwards.
 *
 *   npx tsx bench/soak.ts [--messages 100000] [--concurrency 50] [--rcpts 5-10] [--fault-rate 0.01]
 *                         [--timeout-ms 400] [--seed 1] [--no-chunking] [--exit-within 5000] [--keep]
 *
 * Three processes:
 *   harness (this file, no flag)  starts the soak process, prints its output, waits for it to exit
 *                                 by itself (within --exit-within ms of its last line), then checks
 *                                 the two record files against each other and prints the verdict.
 *   soak process (--run)          node --expose-gc --import tsx bench/soak.ts --run …: one Pool
 *                                 (defaults: idleTimeout 2 s, 20 connections per destination,
 *                                 32 transactions per connection), --concurrency deliver() calls
 *                                 in flight, each one message (≈ 300 octets) to 5–10 recipients,
 *                                 tls none, every timeout --timeout-ms (the stall faults end
 *                                 there). Writes one line per message to a results file, prints
 *                                 RSS (after a forced GC) at the start, every 10,000 messages and
 *                                 at the end; closes the pool and the server child, and returns
 *                                 (no process.exit: open handles would keep it alive).
 *   server child                  bench/soak-server.ts: TestServer with random faults in about
 *                                 --fault-rate of the steps, a record of every transaction.
 * Checks (harness): one result per recipient and one line per message; no recipient `relayed`
 * unless the server accepted it at RCPT and answered 2xx at the end of data; no recipient the
 * server accepted so (2xx end of data) reported failed or delayed, except when that reply was lost
 * (a drop/stall right after the end of data): then it must be delayed with "message may be sent
 * more than once"; no recipient accepted twice; RSS growth (end − start, both after GC) ≤ 10 MB;
 * the soak process exits by itself with status 0.
 * Addresses: sender s<m>@soak.test, recipients m<m>r<j>@soak.test (m = message, j = recipient).
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { argFlag, argNumber, argValue, BENCH_DIR, REPO_DIR, gcNow, gitHead, mb } from './lib.js';

const MESSAGES = argNumber('--messages', 100_000);
/** Messages before the RSS baseline (JIT, V8 heap and young-generation sizing), verified like the others. */
const WARMUP = argNumber('--warmup', 10_000);
const TOTAL = WARMUP + MESSAGES;
const CONCURRENCY = argNumber('--concurrency', 50);
const [RMIN, RMAX] = (argValue('--rcpts') ?? '5-10').split('-').map(Number) as [number, number];
const FAULT_RATE = argNumber('--fault-rate', 0.01);
const TIMEOUT_MS = argNumber('--timeout-ms', 400);
const SEED = argNumber('--seed', 1);
const CHUNKING = !argFlag('--no-chunking');
const EXIT_WITHIN = argNumber('--exit-within', 5000);
const RSS_LIMIT_MB = 10;

// ---------------------------------------------------------------- soak process

async function soak(): Promise<void> {
  const { deliver, Pool } = await import('../src/index.js');
  const dir = argValue('--dir')!;
  const resultsFile = join(dir, 'results.jsonl');
  const serverFile = join(dir, 'server.jsonl');
  const say = (s: string) => process.stdout.write(s + '\n');

  const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, 'soak-server.ts'), '--out', serverFile, '--fault-rate', String(FAULT_RATE), '--seed', String(SEED), ...(CHUNKING ? [] : ['--no-chunking'])], {
    cwd: REPO_DIR,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  let serverStats = '';
  const listening = new Promise<string>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`soak-server exited with ${c}`)));
    lines.on('line', (l) => {
      const o = JSON.parse(l) as { event: string; destination?: string };
      if (o.event === 'listening') resolve(o.destination!);
      else if (o.event === 'stats') serverStats = l;
    });
  });
  const destination = await listening;
  const childExited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));

  let seed = SEED * 7919 + 1;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const results = createWriteStream(resultsFile);
  const pool = new Pool({ idleTimeout: 2000 });
  const timeouts = { connect: TIMEOUT_MS, helo: TIMEOUT_MS, mail: TIMEOUT_MS, rcpt: TIMEOUT_MS, dataInit: TIMEOUT_MS, dataXfer: TIMEOUT_MS, dataDone: TIMEOUT_MS, rset: TIMEOUT_MS, quit: TIMEOUT_MS };
  const counts: Record<string, number> = {};
  let mayTwice = 0;
  let done = 0;
  let recipients = 0;
  const rssLine = (label: string) => {
    gcNow();
    const m = process.memoryUsage();
    say(`RSS ${label}: ${mb(m.rss)} MB (heapUsed ${mb(m.heapUsed)} MB, external ${mb(m.external)} MB) pool ${JSON.stringify(pool.stats())}`);
    return m.rss;
  };

  say(`soak: ${WARMUP} warm-up + ${MESSAGES} messages, ${CONCURRENCY} in flight, ${RMIN}-${RMAX} recipients each, fault rate ${FAULT_RATE}, timeouts ${TIMEOUT_MS} ms, ${CHUNKING ? 'CHUNKING' : 'DATA'}; server ${destination} (pid ${child.pid}); node ${process.version}, mailwire ${gitHead()}`);
  const rssCold = rssLine('cold (nothing sent yet)');
  let rss0 = rssCold;
  let t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < TOTAL) {
      const m = next++;
      const k = RMIN + Math.floor(rand() * (RMAX - RMIN + 1));
      const to = Array.from({ length: k }, (_, j) => `m${m}r${j}@soak.test`);
      const message = `From: <s${m}@soak.test>\r\nTo: <m${m}r0@soak.test>\r\nSubject: soak ${m}\r\nMessage-ID: <${m}@soak.test>\r\n\r\nmessage ${m} of the mailwire soak test.\r\n${'x'.repeat(160)}\r\n`;
      const r = await deliver({ from: `s${m}@soak.test`, to, message }, destination, { pool, tls: { level: 'none' }, heloName: 'soak.client.test', timeouts });
      let a = '';
      const x: Array<[number, string, string]> = [];
      for (let j = 0; j < r.recipients.length; j++) {
        const res = r.recipients[j]!;
        let c = res.action === 'relayed' ? 'R' : res.action === 'delayed' ? 'D' : res.action === 'failed' ? 'F' : 'X';
        if (c === 'D' && /may be sent more than once/.test(res.reason)) {
          c = 'M';
          mayTwice++;
        }
        counts[c] = (counts[c] ?? 0) + 1;
        a += c;
        if (c !== 'R') x.push([j, res.status, res.reason]);
      }
      recipients += k;
      results.write(JSON.stringify({ m, k, n: r.recipients.length, a, x }) + '\n');
      done++;
      if (done === WARMUP && WARMUP > 0) {
        rss0 = rssLine(`start (after ${WARMUP} warm-up messages, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        t0 = performance.now();
      } else if (done > WARMUP && (done - WARMUP) % 10_000 === 0) {
        const s = (performance.now() - t0) / 1000;
        rssLine(`after ${done - WARMUP} messages (${s.toFixed(0)} s, ${((done - WARMUP) / s).toFixed(0)} msg/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const secs = (performance.now() - t0) / 1000;
  await pool.close();
  child.stdin!.end();
  const code = await childExited;
  await new Promise<void>((r) => results.end(r));
  const rss1 = rssLine('end (pool closed, server child gone)');
  say(`server: ${serverStats} (exit ${code})`);
  say(`client: ${done} messages (warm-up included), ${recipients} recipients; ${MESSAGES} in ${secs.toFixed(1)} s after the warm-up (${(MESSAGES / secs).toFixed(0)} msg/s): ${Object.entries(counts).map(([k, v]) => `${k === 'R' ? 'relayed' : k === 'D' ? 'delayed' : k === 'M' ? 'delayed "may be sent more than once"' : k === 'F' ? 'failed' : 'other'} ${v}`).join(', ')}`);
  say(`SOAK-DONE ${JSON.stringify({ rssCold, rssStart: rss0, rssEnd: rss1, messages: done, recipients, mayTwice, seconds: secs })}`);
  // If something kept the process alive, say what (unref'd: it does not keep it alive itself).
  setTimeout(() => {
    const info = (process as unknown as { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo?.() ?? [];
    process.stderr.write(`soak process still alive 2 s after the end; active resources: ${info.join(', ')}\n`);
  }, 2000).unref();
}

// ---------------------------------------------------------------- verification (harness)

interface ClientLine {
  m: number;
  k: number;
  n: number;
  a: string;
  x: Array<[number, string, string]>;
}
interface ServerLine {
  s: number;
  t: number;
  m: number;
  ml: number | null;
  r: Array<[number, number | null]>;
  e: number | 'lost' | null;
  ab?: string;
}

async function* jsonLines<T>(file: string): AsyncGenerator<T> {
  for await (const line of createInterface({ input: createReadStream(file) })) if (line) yield JSON.parse(line) as T;
}

async function verify(dir: string): Promise<{ ok: boolean; lines: string[] }> {
  const out: string[] = [];
  // server side: per message, per recipient: how often accepted (RCPT 2xx + end of data 2xx) and lost
  const accepted = new Map<number, Map<number, number>>();
  const lost = new Map<number, Map<number, number>>();
  /** Messages whose transaction got a 421 to MAIL or RCPT (the server said it was closing). */
  const saw421 = new Set<number>();
  const bump = (mp: Map<number, Map<number, number>>, m: number, j: number) => {
    let e = mp.get(m);
    if (!e) mp.set(m, (e = new Map()));
    e.set(j, (e.get(j) ?? 0) + 1);
  };
  /** Per message: its server transactions, compactly (for the mismatch report). */
  const txOf = new Map<number, string[]>();
  let txs = 0;
  let txComplete = 0;
  let unknown = 0;
  const eod: Record<string, number> = {};
  for await (const t of jsonLines<ServerLine>(join(dir, 'server.jsonl'))) {
    txs++;
    if (!t.ab) txComplete++;
    if (t.m < 0) unknown++;
    const e = t.e === null ? 'none' : t.e === 'lost' ? 'lost' : `${String(t.e)[0]}xx`;
    eod[e] = (eod[e] ?? 0) + 1;
    txOf.set(t.m, [...(txOf.get(t.m) ?? []), `session ${t.s} tx ${t.t}: MAIL ${t.ml}, RCPT ${t.r.map(([, c]) => c).join(',')}, end of data ${t.e}${t.ab ? ` (${t.ab})` : ''}`]);
    if (t.ml === 421 || t.r.some(([, c]) => c === 421)) saw421.add(t.m);
    for (const [j, c] of t.r) {
      if (c === null || c < 200 || c > 299) continue;
      if (typeof t.e === 'number' && t.e >= 200 && t.e <= 299) bump(accepted, t.m, j);
      else if (t.e === 'lost') bump(lost, t.m, j);
    }
  }
  const seen = new Set<number>();
  let problems = 0;
  const bad: string[] = [];
  const badMessages = new Set<number>();
  /** Problems by kind (message and recipient numbers left out), for the summary. */
  const kinds = new Map<string, number>();
  const problem = (s: string, m?: number) => {
    problems++;
    if (m !== undefined) badMessages.add(m);
    if (bad.length < 20) bad.push(s);
    const kind = s.replace(/^m\d+r\d+: /, '').replace(/^message \d+: /, '');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  };
  const tally = { relayed: 0, delayed: 0, failed: 0, mayTwice: 0, mayTwiceLost: 0, mayTwiceAccepted: 0, mayTwiceNeither: 0, mayTwiceAfter421: 0, lostRecipients: 0, acceptedRecipients: 0 };
  for await (const c of jsonLines<ClientLine>(join(dir, 'results.jsonl'))) {
    if (seen.has(c.m)) problem(`message ${c.m}: two result lines`);
    seen.add(c.m);
    if (c.n !== c.k || c.a.length !== c.k) problem(`message ${c.m}: ${c.n} results for ${c.k} recipients`);
    for (let j = 0; j < c.a.length; j++) {
      const acc = accepted.get(c.m)?.get(j) ?? 0;
      const lst = lost.get(c.m)?.get(j) ?? 0;
      const why = () => c.x.find((x) => x[0] === j)?.slice(1).join(' ') ?? '';
      if (acc > 0) tally.acceptedRecipients++;
      if (lst > 0) tally.lostRecipients++;
      if (acc > 1) problem(`m${c.m}r${j}: accepted ${acc} times by the server`, c.m);
      if (acc > 0 && lst > 0) problem(`m${c.m}r${j}: accepted once and sent again (reply lost) — sent more than once`, c.m);
      switch (c.a[j]) {
        case 'R':
          tally.relayed++;
          if (acc === 0) problem(`m${c.m}r${j}: relayed, but the server did not accept it with 2xx at the end of data${lst ? ' (its end-of-data reply was lost)' : ''}`, c.m);
          break;
        case 'M':
          tally.delayed++;
          tally.mayTwice++;
          if (lst > 0) tally.mayTwiceLost++;
          else if (acc > 0) tally.mayTwiceAccepted++;
          else if (saw421.has(c.m)) tally.mayTwiceAfter421++;
          else tally.mayTwiceNeither++;
          break;
        case 'D':
          tally.delayed++;
          if (acc > 0) problem(`m${c.m}r${j}: delayed (${why()}), but the server accepted it (2xx at end of data)`, c.m);
          if (lst > 0) problem(`m${c.m}r${j}: its end-of-data reply was lost, but the result is delayed without "may be sent more than once": ${why()}`, c.m);
          break;
        case 'F':
          tally.failed++;
          if (acc > 0) problem(`m${c.m}r${j}: failed (${why()}), but the server accepted it`, c.m);
          if (lst > 0) problem(`m${c.m}r${j}: its end-of-data reply was lost, but it failed: ${why()}`, c.m);
          break;
        default:
          problem(`m${c.m}r${j}: unexpected action code ${c.a[j]}`, c.m);
      }
    }
  }
  for (let m = 0; m < TOTAL; m++) if (!seen.has(m)) problem(`message ${m}: no result line`);
  out.push(`server: ${txs} transactions (${txComplete} completed), end of data: ${Object.entries(eod).map(([k, v]) => `${k} ${v}`).join(', ')}${unknown ? `, ${unknown} with an unknown sender` : ''}`);
  out.push(`recipients: relayed ${tally.relayed}, delayed ${tally.delayed}, failed ${tally.failed}; server accepted (2xx end of data) ${tally.acceptedRecipients}, end-of-data reply lost for ${tally.lostRecipients}`);
  out.push(`"message may be sent more than once": ${tally.mayTwice} recipient(s): ${tally.mayTwiceLost} whose end-of-data reply the server did not send (drop/stall after the end of data), ${tally.mayTwiceAccepted} the server had accepted (2xx written, the client did not get it in time), ${tally.mayTwiceAfter421} after a 421 reply to MAIL/RCPT of the same transaction (the server had said it was closing before the end of data), ${tally.mayTwiceNeither} whose end of data the server never read (the client had written it: a stall/drop while the data arrived, or input discarded after a fault in an earlier pipelined transaction)`);
  out.push(`mismatches: ${problems}`);
  for (const [k, n] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 10)) out.push(`  ${n} × ${k}`);
  for (const b of bad) out.push('  ' + b);
  for (const m of [...badMessages].slice(0, 5)) {
    out.push(`  message ${m} at the server:`);
    for (const t of txOf.get(m) ?? ['(no transaction)']) out.push(`    ${t}`);
  }
  const ok = problems === 0 && tally.lostRecipients === tally.mayTwiceLost;
  if (tally.lostRecipients !== tally.mayTwiceLost) out.push(`  ${tally.lostRecipients - tally.mayTwiceLost} recipient(s) whose end-of-data reply was lost are not reported "may be sent more than once"`);
  return { ok, lines: out };
}

// ---------------------------------------------------------------- harness

async function harness(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mailwire-soak-'));
  const passThrough = process.argv.slice(2).filter((a) => a !== '--keep');
  const args = ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--run', '--dir', dir, ...passThrough];
  console.log(`harness: node ${args.join(' ')}`);
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'inherit'] });
  let doneAt: number | undefined;
  let summary: { rssCold: number; rssStart: number; rssEnd: number } | undefined;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    console.log(`  | ${l}`);
    if (l.startsWith('SOAK-DONE ')) {
      doneAt = performance.now();
      summary = JSON.parse(l.slice('SOAK-DONE '.length)) as typeof summary;
    }
  });
  const exit = await new Promise<{ code: number | null; at: number; killed: boolean }>((resolve) => {
    let killed = false;
    const check = setInterval(() => {
      if (doneAt !== undefined && performance.now() - doneAt > EXIT_WITHIN && child.exitCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
    }, 100);
    child.once('exit', (code) => {
      clearInterval(check);
      resolve({ code, at: performance.now(), killed });
    });
  });
  const checks: Array<[boolean, string]> = [];
  if (doneAt === undefined) {
    checks.push([false, `the soak process ended without finishing (exit ${exit.code})`]);
  } else {
    const after = exit.at - doneAt;
    checks.push([!exit.killed && exit.code === 0, exit.killed ? `the soak process did NOT exit within ${EXIT_WITHIN} ms after its last line (killed)` : `the soak process exited by itself ${after.toFixed(0)} ms after its last line, status ${exit.code}`]);
  }
  if (summary) {
    const growth = summary.rssEnd - summary.rssStart;
    checks.push([growth <= RSS_LIMIT_MB * 1024 * 1024, `RSS ${mb(summary.rssStart)} MB at the start (after ${WARMUP} warm-up messages) → ${mb(summary.rssEnd)} MB at the end (after GC): growth ${mb(growth)} MB ≤ ${RSS_LIMIT_MB} MB (from the cold process, before any message: ${mb(summary.rssCold)} MB → ${mb(summary.rssEnd)} MB, ${mb(summary.rssEnd - summary.rssCold)} MB)`]);
    const v = await verify(dir);
    for (const l of v.lines) console.log(l);
    checks.push([v.ok, `results against the server's records: ${v.ok ? 'consistent' : 'MISMATCHES (above)'}`]);
  }
  console.log(`\nharness: ${((performance.now() - t0) / 1000).toFixed(1)} s in all`);
  for (const [ok, s] of checks) console.log(`${ok ? '✓' : '✗'} ${s}`);
  if (argFlag('--keep')) console.log(`records kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  process.exitCode = checks.every(([ok]) => ok) ? 0 : 1;
}

if (argFlag('--run')) await soak();
else await harness();
