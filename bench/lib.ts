/**
 * Helpers shared by the bench scripts: child receivers (bench/receiver.ts, Postfix smtp-sink),
 * Postfix detection, free ports, statistics and argument parsing. Loopback only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { newestMtime } from '../test/helpers/process.js';
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = dirname(BENCH_DIR);

// ---------------------------------------------------------------- arguments

export function argValue(name: string, dflt: string): string;
export function argValue(name: string): string | undefined;
export function argValue(name: string, dflt?: string): string | undefined {
  const argv = process.argv;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === name) return argv[i + 1] ?? dflt;
    if (a.startsWith(name + '=')) return a.slice(name.length + 1);
  }
  return dflt;
}

export function argFlag(name: string): boolean {
  return process.argv.slice(2).includes(name);
}

export function argNumber(name: string, dflt: number): number {
  const v = argValue(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, not ${JSON.stringify(v)}`);
  return n;
}

// ---------------------------------------------------------------- statistics

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function min(xs: number[]): number {
  return xs.reduce((a, b) => Math.min(a, b), Infinity);
}

export function max(xs: number[]): number {
  return xs.reduce((a, b) => Math.max(a, b), -Infinity);
}

export function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/** Render rows as an aligned text table. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------- ports and probes

/** An unused loopback TCP port (bind 0, read, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Connect, read the greeting, QUIT. Resolves with the greeting line, or undefined. */
export function probeSmtp(host: string, port: number, timeoutMs = 1500): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf = '';
    const done = (v: string | undefined) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const m = /^(220[^\r\n]*)\r?\n/m.exec(buf);
      if (m) {
        s.write('QUIT\r\n');
        done(m[1]);
      } else if (/\r?\n/.test(buf)) done(undefined);
    });
  });
}

/** Wait until something accepts connections on host:port. */
export async function waitForPort(host: string, port: number, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------- Postfix (test/interop peers)

export interface PostfixPeers {
  chunking: { host: string; port: number; greeting: string };
  noChunking: { host: string; port: number; greeting: string };
  source: string;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/**
 * The interop Postfix (test/interop/peers.sh), when it is running: endpoints from the
 * environment, else from $MAILWIRE_INTEROP_DIR/ports.env, else 127.0.0.1:11025 / 11026.
 */
export async function findPostfix(): Promise<PostfixPeers | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  const dir = env.MAILWIRE_INTEROP_DIR ?? '/tmp/mailwire-interop';
  let source = 'defaults';
  const file = join(dir, 'ports.env');
  if ((env.MAILWIRE_INTEROP_POSTFIX === undefined || env.MAILWIRE_INTEROP_POSTFIX_NOCHUNKING === undefined) && existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^(MAILWIRE_INTEROP_POSTFIX(?:_NOCHUNKING)?)=(.*)$/.exec(line.trim());
      if (m && env[m[1]!] === undefined) env[m[1]!] = m[2]!;
    }
    source = file;
  } else if (env.MAILWIRE_INTEROP_POSTFIX !== undefined) source = 'environment';
  const a = hostPort(env.MAILWIRE_INTEROP_POSTFIX ?? '127.0.0.1:11025');
  const b = hostPort(env.MAILWIRE_INTEROP_POSTFIX_NOCHUNKING ?? '127.0.0.1:11026');
  if (!a.host.startsWith('127.') || !b.host.startsWith('127.')) return undefined; // loopback only
  const [ga, gb] = await Promise.all([probeSmtp(a.host, a.port), probeSmtp(b.host, b.port)]);
  if (!ga || !gb) return undefined;
  return { chunking: { ...a, greeting: ga }, noChunking: { ...b, greeting: gb }, source };
}

// ---------------------------------------------------------------- child receivers

export interface ChildReceiver {
  kind: 'receiver.ts' | 'smtp-sink' | 'discard';
  host: string;
  port: number;
  pid: number;
  /** Human description for the report. */
  describe: string;
  /** receiver.ts: transaction lines so far. smtp-sink: empty. */
  transactions: ReceiverTransaction[];
  /** smtp-sink -c: the last counter line (`sess=… quit=… mesg=…`). */
  lastCounters(): { sess: number; quit: number; mesg: number } | undefined;
  /** Resolve when `n` transactions have been reported (receiver.ts) or counted (smtp-sink -c). */
  waitForMessages(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface ReceiverTransaction {
  session: number;
  method: 'DATA' | 'BDAT' | 'RAW';
  size: number;
  sha256: string;
  rcpts: number;
  bdatChunks: number;
}

/** bench/receiver.ts (the mailwire test server) in its own Node process. */
export async function startReceiver(opts: { chunking: boolean; pipelining?: boolean }): Promise<ChildReceiver> {
  const args = ['--import', 'tsx', join(BENCH_DIR, 'receiver.ts'), '--exit-on-stdin-close'];
  if (!opts.chunking) args.push('--no-chunking');
  if (opts.pipelining === false) args.push('--no-pipelining');
  const child = spawn(process.execPath, args, { cwd: REPO_DIR, stdio: ['pipe', 'pipe', 'inherit'] });
  const transactions: ReceiverTransaction[] = [];
  const waiters: Array<() => void> = [];
  const listening = new Promise<{ host: string; port: number }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench/receiver.ts exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let o: { event?: string } & Record<string, unknown>;
      try {
        o = JSON.parse(line) as typeof o;
      } catch {
        return;
      }
      if (o.event === 'listening') resolve({ host: o.host as string, port: o.port as number });
      else if (o.event === 'transaction') {
        transactions.push(o as unknown as ReceiverTransaction);
        for (const w of waiters.splice(0)) w();
      }
    });
  });
  const { host, port } = await listening;
  return {
    kind: 'receiver.ts',
    host,
    port,
    pid: child.pid!,
    describe: `mailwire TestServer in a child process (bench/receiver.ts, pid ${child.pid}; ${opts.chunking ? 'CHUNKING+' : ''}${opts.pipelining === false ? 'no PIPELINING' : 'PIPELINING'}, discardData)`,
    transactions,
    lastCounters: () => undefined,
    waitForMessages: (n, timeoutMs = 30_000) => waitUntil(() => transactions.length >= n, waiters, timeoutMs, `${n} transactions at bench/receiver.ts`),
    stop: () => stopChild(child),
  };
}

/**
 * A raw TCP discard server (no SMTP) in a child Node process: counts the octets of each
 * connection and reports them as a transaction (method 'RAW', no hash) when the client closes.
 */
export async function startDiscard(): Promise<ChildReceiver> {
  const code = `
    const net = require('node:net');
    const srv = net.createServer((s) => {
      let n = 0;
      s.on('data', (d) => { n += d.length; });
      s.on('end', () => { process.stdout.write(JSON.stringify({ event: 'transaction', session: 0, method: 'RAW', size: n, sha256: '', rcpts: 0, bdatChunks: 0 }) + '\\n'); s.end(); });
      s.on('error', () => {});
    });
    srv.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ event: 'listening', host: '127.0.0.1', port: srv.address().port }) + '\\n'));
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
    process.on('SIGTERM', () => process.exit(0));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  const transactions: ReceiverTransaction[] = [];
  const waiters: Array<() => void> = [];
  const { host, port } = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`discard server exited with ${c}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const o = JSON.parse(line) as { event: string } & Record<string, unknown>;
      if (o.event === 'listening') resolve({ host: o.host as string, port: o.port as number });
      else if (o.event === 'transaction') {
        transactions.push(o as unknown as ReceiverTransaction);
        for (const w of waiters.splice(0)) w();
      }
    });
  });
  return {
    kind: 'discard',
    host,
    port,
    pid: child.pid!,
    describe: `raw TCP discard server in a child Node process (pid ${child.pid}; no SMTP)`,
    transactions,
    lastCounters: () => undefined,
    waitForMessages: (n, timeoutMs = 30_000) => waitUntil(() => transactions.length >= n, waiters, timeoutMs, `${n} connections at the discard server`),
    stop: () => stopChild(child),
  };
}

/** Where Debian keeps smtp-sink / smtp-source. */
export function findPostfixTool(name: 'smtp-sink' | 'smtp-source'): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/lib/postfix/sbin', '/usr/libexec/postfix', '/usr/local/sbin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Postfix smtp-sink on a free loopback port. `dumpTemplate` (-d) captures each message to a
 * file (LF line ends, smtp-sink headers first, an empty line last).
 */
export async function startSmtpSink(opts: { dumpTemplate?: string; extraArgs?: string[] } = {}): Promise<ChildReceiver> {
  const bin = findPostfixTool('smtp-sink');
  if (!bin) throw new Error('smtp-sink is not installed');
  const port = await freePort();
  const args = ['-c', '-t', '300'];
  // smtp-sink refuses to run as root without -u
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  if (opts.dumpTemplate) args.push('-d', opts.dumpTemplate);
  args.push(...(opts.extraArgs ?? []), `127.0.0.1:${port}`, '256');
  // The running counters (-c) go to a file, read only when asked: a pipe would wake this
  // process for every message, CPU taken from the client being measured (the more so the
  // faster it is).
  const counterFile = join(mkdtempSync(join(tmpdir(), 'mailwire-sink-')), 'counters');
  const out = openSync(counterFile, 'w');
  const child = spawn(bin, args, { stdio: ['ignore', out, 'pipe'] });
  closeSync(out);
  let stderr = '';
  const readCounters = (): { sess: number; quit: number; mesg: number } | undefined => {
    let tail = '';
    try {
      const fd = openSync(counterFile, 'r');
      try {
        const size = fstatSync(fd).size;
        const n = Math.min(size, 4096);
        const buf = Buffer.alloc(n);
        readSync(fd, buf, 0, n, size - n);
        tail = buf.toString('latin1');
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
    const parts = tail.split(/[\r\n]/).reverse();
    for (const p of parts) {
      const m = /sess=(\d+) quit=(\d+) mesg=(\d+)/.exec(p);
      if (m) return { sess: Number(m[1]), quit: Number(m[2]), mesg: Number(m[3]) };
    }
    return undefined;
  };
  const waiters: Array<() => void> = [];
  // waitForMessages polls (it is only used after a run, while nothing is measured).
  const poll = setInterval(() => {
    for (const w of waiters.splice(0)) w();
  }, 20);
  poll.unref();
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`smtp-sink exited with ${code}: ${stderr.trim()}`))));
  exited.catch(() => {});
  await Promise.race([waitForPort('127.0.0.1', port), exited]);
  return {
    kind: 'smtp-sink',
    host: '127.0.0.1',
    port,
    pid: child.pid!,
    describe: `Postfix smtp-sink (${bin} ${args.join(' ')}; pid ${child.pid})`,
    transactions: [],
    lastCounters: readCounters,
    waitForMessages: (n, timeoutMs = 30_000) => waitUntil(() => (readCounters()?.mesg ?? 0) >= n, waiters, timeoutMs, `${n} messages at smtp-sink`),
    stop: async () => {
      clearInterval(poll);
      await stopChild(child);
      rmSync(dirname(counterFile), { recursive: true, force: true });
    },
  };
}

function waitUntil(done: () => boolean, waiters: Array<() => void>, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    const check = () => {
      if (done()) {
        clearTimeout(t);
        resolve();
      } else waiters.push(check);
    };
    check();
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Run a command to completion; resolve with its output and wall time. */
export function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

// ---------------------------------------------------------------- pooled benchmarks

/** Run `n` tasks with at most `c` in flight (task index 0..n-1). */
export async function inFlight(n: number, c: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(c, n)) }, worker));
}

/** A forced GC when the process runs with --expose-gc (else nothing). */
export function gcNow(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/** A text message of exactly `size` octets (CRLF lines), From/To/Subject/Date/Message-ID headers first. */
export function fixedSizeMessage(size: number, o: { from: string; to: string[]; subject: string; id: string }): string {
  const head = [`From: <${o.from}>`, `To: <${o.to[0] ?? 'nobody@example.test'}>${o.to.length > 1 ? ` (+${o.to.length - 1})` : ''}`, `Subject: ${o.subject}`, 'Date: Tue, 25 Nov 2025 12:00:00 +0000', `Message-ID: <${o.id}>`, '', ''].join('\r\n');
  const line = 'The quick brown fox jumps over the lazy dog while the queue manager schedules deliveries.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= size - 2) body += line;
  const pad = size - head.length - body.length;
  return head + body + (pad >= 2 ? 'x'.repeat(pad - 2) + '\r\n' : '');
}

/**
 * Postfix smtp-source under `bash -c '…; times'`, so that its CPU time (user + system of the
 * shell's children, from the `times` builtin) can be reported next to the wall time.
 */
export async function runSmtpSource(bin: string, args: string[], timeoutMs = 600_000): Promise<{ code: number | null; ms: number; cpuMs: number | undefined; counted: number | undefined; stderr: string }> {
  const quoted = [bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = await run('bash', ['-c', `${quoted}; rc=$?; echo; times; exit $rc`], timeoutMs);
  const lines = r.stdout.trim().split('\n');
  // times: "0m0.001s 0m0.002s" (the shell) then "0m0.120s 0m0.340s" (its children)
  const sec = (s: string) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(s);
    return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  };
  const kids = lines[lines.length - 1]?.trim().split(/\s+/) ?? [];
  const cpu = kids.length === 2 ? (sec(kids[0]!) + sec(kids[1]!)) * 1000 : NaN;
  // -c prints a running counter ("\r1\r2…"); the last number before the times lines
  const counterText = lines.slice(0, -2).join('\n');
  const nums = counterText.match(/\d+/g);
  return { code: r.code, ms: r.ms, cpuMs: Number.isFinite(cpu) ? cpu : undefined, counted: nums ? Number(nums[nums.length - 1]) : undefined, stderr: r.stderr };
}

/** The checkout the numbers are for: commit of HEAD, and whether src/ differs from it. */
export function gitHead(): string {
  const h = spawnSync('git', ['-C', REPO_DIR, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (h.status !== 0) return '?';
  const d = spawnSync('git', ['-C', REPO_DIR, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' });
  return `${h.stdout.trim()}${d.stdout.trim() ? ' (src/ modified)' : ''}`;
}

/**
 * mailwire as a user runs it: the built package (dist/index.js), unless `--src` is given (the
 * TypeScript sources through tsx, which wraps every function for its names and runs a few
 * per cent slower). The build must be newer than every source file.
 */
export async function loadMailwire(): Promise<{ module: typeof import('../src/index.js'); label: string }> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  if (argFlag('--src')) return { module: await import('../src/index.js'), label: 'src/ (tsx)' };
  const built = join(root, 'dist', 'index.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestMtime(join(root, 'src'))) {
    console.log('dist/ is missing or older than src/: npm run build');
    const b = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' });
    if (b.status !== 0) throw new Error('npm run build failed');
  }
  return { module: (await import(pathToFileURL(built).href)) as typeof import('../src/index.js'), label: 'dist/ (the built package)' };
}
