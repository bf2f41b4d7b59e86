/**
 * Round trips of one cold delivery (connect → result) through a latency proxy.
 *
 *   npm run bench                       # = node --import tsx bench/round-trips.ts
 *   npx tsx bench/round-trips.ts [--runs 7] [--warmup 3] [--rtt 20] [--server auto|postfix|test] [--proxy child|inprocess] [--gate nominal|measured] [--verbose]
 *
 * One small message to 3 recipients, each run on a new connection (after unrecorded warm-up runs), through bench/latency-proxy.ts
 * (RTT = 2 × one-way delay; the TCP handshake is not delayed, so the greeting costs 0.5 RTT and
 * every later client→server→client turn 1 RTT). Cases:
 *   (a) mailwire, server with CHUNKING + PIPELINING           target ≤ 2.8 RTT (ideal 2.5)
 *   (b) mailwire, server with PIPELINING only (DATA)          target ≤ 3.8 RTT (ideal 3.5)
 *   (c) nodemailer 10, same PIPELINING-only server            (reference)
 * Server: the interop Postfix (test/interop/peers.sh; 11025 with CHUNKING, 11026 without) when
 * it is running, otherwise the mailwire TestServer in-process with the extensions toggled.
 * The proxy runs in a child process of its own (--proxy inprocess to share this event loop).
 * Prints median and min elapsed/RTT per case, the turns seen at the proxy, and the ratio
 * mailwire/nodemailer; exits 1 if a target is missed (after printing everything). The targets
 * apply to the median in nominal RTT units (--gate measured: in calibrated RTT units).
 */
import { createServer, connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import nodemailer from 'nodemailer';
import { deliver, type DeliveryEvent } from '../src/index.js';
import { TestServer } from '../src/testing/index.js';
import { startLatencyProxy, forkLatencyProxy, flightsOf, type ConnectionRecord, type LatencyProxyOptions } from './latency-proxy.js';
import { argFlag, argNumber, argValue, findPostfix, median, min, table } from './lib.js';

const RUNS = argNumber('--runs', 7);
/** Unrecorded runs per case first: JIT in this process, smtpd processes and caches in Postfix. */
const WARMUP = argNumber('--warmup', 3);
const RTT = argNumber('--rtt', 20);
const DELAY = RTT / 2;
const SERVER = argValue('--server', 'auto');
const VERBOSE = argFlag('--verbose');
/** `child` (default): the proxy runs in its own process; `inprocess`: in this one. */
const PROXY_MODE = argValue('--proxy', 'child');
/**
 * `nominal` (default): the targets apply to elapsed / nominal RTT, as specified. `measured`: to
 * elapsed / the calibrated RTT, which takes the machine's own loopback and wake-up latency out
 * (steadier on a busy machine).
 */
const GATE = argValue('--gate', 'nominal') === 'measured' ? 'measured' : 'nominal';
const TARGET_CHUNKING = 2.8;
const TARGET_PIPELINING = 3.8;

interface Endpoint {
  host: string;
  port: number;
}

interface Case {
  id: 'a' | 'b' | 'c';
  label: string;
  client: 'mailwire' | 'nodemailer';
  upstream: Endpoint;
  target?: number;
  ideal: number;
}

interface RunResult {
  ms: number;
  rtts: number;
  /** Server→client flights delivered to the client before the result: each is a turn awaited. */
  turns: number;
  flights: string;
  breakdown: Breakdown;
  ok: boolean;
  detail: string;
}

// ---------------------------------------------------------------- servers

let cleanup: Array<() => Promise<void>> = [];
let serverNote: string;
let chunkingEp: Endpoint;
let pipeliningEp: Endpoint;
let recipients: string[];
const from = 'bench@example.test';

const postfix = SERVER === 'test' ? undefined : await findPostfix();
if (SERVER === 'postfix' && !postfix) {
  console.error('round-trips: --server postfix, but the interop Postfix is not running (test/interop/peers.sh start)');
  process.exit(2);
}
if (postfix) {
  chunkingEp = postfix.chunking;
  pipeliningEp = postfix.noChunking;
  // local parts other than alice/bob/carol go to the interop Postfix's catchall maildir, out
  // of the way of the interop tests' mailboxes
  recipients = ['bench-rt1@example.test', 'bench-rt2@example.test', 'bench-rt3@example.test'];
  serverNote = `real Postfix (test/interop peers, endpoints from ${postfix.source}): CHUNKING ${chunkingEp.host}:${chunkingEp.port} "${postfix.chunking.greeting}", PIPELINING-only ${pipeliningEp.host}:${pipeliningEp.port}`;
} else {
  const a = await TestServer.start({ extensions: { chunking: true, pipelining: true }, discardData: true });
  const b = await TestServer.start({ extensions: { chunking: false, pipelining: true }, discardData: true });
  cleanup.push(() => a.close(), () => b.close());
  chunkingEp = { host: a.host, port: a.port! };
  pipeliningEp = { host: b.host, port: b.port! };
  recipients = ['alice@example.test', 'bob@example.test', 'carol@example.test'];
  const why = SERVER === 'test' ? '--server test' : 'the interop Postfix is not running';
  serverNote = `mailwire TestServer in-process (src/testing; ${why}): CHUNKING+PIPELINING ${a.host}:${a.port}, PIPELINING-only ${b.host}:${b.port}`;
}

const message =
  [
    `From: Bench <${from}>`,
    `To: ${recipients.join(', ')}`,
    'Subject: mailwire round-trip benchmark',
    'Date: Tue, 25 Nov 2025 12:00:00 +0000',
    'Message-ID: <round-trips@bench.example.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'Hello from bench/round-trips.ts.',
    'This message is small; only round trips matter here.',
    '',
  ].join('\r\n');

const cases: Case[] = [
  { id: 'a', label: 'mailwire, CHUNKING+PIPELINING', client: 'mailwire', upstream: chunkingEp, target: TARGET_CHUNKING, ideal: 2.5 },
  { id: 'b', label: 'mailwire, PIPELINING only', client: 'mailwire', upstream: pipeliningEp, target: TARGET_PIPELINING, ideal: 3.5 },
  { id: 'c', label: 'nodemailer 10, PIPELINING only', client: 'nodemailer', upstream: pipeliningEp, ideal: 3.5 },
];

// ---------------------------------------------------------------- clients

async function runMailwire(destination: string): Promise<{ ok: boolean; detail: string; events: DeliveryEvent[] }> {
  const events: DeliveryEvent[] = [];
  const r = await deliver({ from, to: recipients, message }, destination, { tls: { level: 'none' }, onEvent: (e) => events.push(e) });
  const ok = r.recipients.length === recipients.length && r.recipients.every((x) => x.action === 'relayed' || x.action === 'delivered');
  return { ok, detail: r.recipients.map((x) => `${x.action} ${x.status}`).join(', '), events };
}

async function runNodemailer(port: number): Promise<{ ok: boolean; detail: string }> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ envelope: { from, to: recipients }, raw: message });
    const ok = info.accepted.length === recipients.length && info.rejected.length === 0;
    return { ok, detail: `accepted ${info.accepted.length}, rejected ${info.rejected.length}: ${info.response}` };
  } finally {
    transport.close();
  }
}

// ---------------------------------------------------------------- transcript from the proxy

/** A compact picture of the conversation's flights, e.g. `S:220 → C:EHLO → S:250 → ...`. */
function describeFlights(conn: ConnectionRecord, resolvedAt: number): { turns: number; text: string } {
  const flights = flightsOf(conn, RTT / 4);
  let turns = 0;
  const parts: string[] = [];
  let inData = false; // between a 354 and the "." line
  let bdatLeft = 0;
  let afterResult = false;
  for (const f of flights) {
    const text = f.chunks.map((c) => c.head).join('');
    const delivered = f.lastWrittenAt !== undefined && f.lastWrittenAt <= resolvedAt;
    if (f.dir === 's2c') {
      const codes: string[] = [];
      for (const line of text.split('\r\n')) {
        const m = /^(\d{3})(?: |$)/.exec(line);
        if (m) codes.push(m[1]!);
        if (m && m[1] === '354') inData = true;
      }
      if (delivered) turns++;
      else if (!afterResult) {
        parts.push('| after the result:');
        afterResult = true;
      }
      parts.push(`S:${collapse(codes)}`);
    } else {
      const words: string[] = [];
      let content = 0;
      let rest = text;
      while (rest.length > 0) {
        if (bdatLeft > 0) {
          const n = Math.min(bdatLeft, rest.length);
          content += n;
          bdatLeft -= n;
          rest = rest.slice(n);
          if (bdatLeft === 0) {
            words.push(`<${content} octets>`);
            content = 0;
          }
          continue;
        }
        const eol = rest.indexOf('\r\n');
        const line = eol < 0 ? rest : rest.slice(0, eol);
        rest = eol < 0 ? '' : rest.slice(eol + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            if (content > 0) words.push(`<${content} octets>`);
            content = 0;
            words.push('.');
          } else content += line.length + 2;
          continue;
        }
        const verb = /^([A-Za-z]+)/.exec(line)?.[1]?.toUpperCase() ?? line.slice(0, 8);
        words.push(verb);
        const bdat = /^BDAT (\d+)/i.exec(line);
        if (bdat) bdatLeft = Number(bdat[1]);
      }
      if (content > 0) words.push(`<${content} octets>`);
      if (!afterResult && f.firstReadAt > resolvedAt) {
        parts.push('| after the result:');
        afterResult = true;
      }
      parts.push(`C:${collapse(words)}`);
    }
  }
  return { turns, text: parts.join(' → ').replace(/ → \| /g, ' | ') };
}

function collapse(xs: string[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j < xs.length && xs[j] === xs[i]) j++;
    out.push(j - i > 1 ? `${xs[i]}×${j - i}` : xs[i]!);
    i = j;
  }
  return out.join(',');
}

/**
 * Where the time went, in ms, from the proxy's timestamps: the client's connect and setup
 * (deliver() called → proxy accepted), the client's think time (reply written to it → its next
 * flight read), the server's (flight written to it → its reply read; the greeting counts from
 * accept), the wire (nominal delay per hop crossed) and the proxy's own overhead beyond it, and
 * the tail (last reply written to the client → result).
 */
interface Breakdown {
  connect: number;
  client: number;
  server: number;
  wire: number;
  proxy: number;
  tail: number;
}

function breakdownOf(conn: ConnectionRecord, t0: number, t1: number): Breakdown {
  const b: Breakdown = { connect: conn.acceptedAt - t0, client: 0, server: 0, wire: 0, proxy: 0, tail: 0 };
  const flights = flightsOf(conn, RTT / 4).filter((f) => f.firstReadAt <= t1);
  let prev: (typeof flights)[number] | undefined;
  let lastToClient = conn.acceptedAt;
  for (const f of flights) {
    if (f.dir === 's2c' && f.lastWrittenAt !== undefined && f.lastWrittenAt > t1) break; // not awaited
    if (!prev) b.server += f.firstReadAt - conn.acceptedAt;
    else if (prev.dir !== f.dir && prev.lastWrittenAt !== undefined) {
      if (f.dir === 's2c') b.server += f.firstReadAt - prev.lastWrittenAt;
      else b.client += f.firstReadAt - prev.lastWrittenAt;
    }
    if (f.lastWrittenAt !== undefined) {
      b.wire += DELAY;
      b.proxy += f.lastWrittenAt - f.firstReadAt - DELAY;
      if (f.dir === 's2c') lastToClient = f.lastWrittenAt;
    }
    prev = f;
  }
  b.tail = t1 - lastToClient;
  return b;
}

// ---------------------------------------------------------------- measuring

/** The proxy, in a child process or in this one, behind one interface. */
interface Proxy {
  port: number;
  destination: string;
  records(): Promise<ConnectionRecord[]>;
  clearRecords(): Promise<void>;
  close(): Promise<void>;
}

async function startProxy(o: LatencyProxyOptions): Promise<Proxy> {
  if (PROXY_MODE === 'child') return forkLatencyProxy(o);
  const p = await startLatencyProxy(o);
  return {
    port: p.port,
    destination: p.destination,
    records: async () => p.connections,
    clearRecords: async () => p.clearRecords(),
    close: () => p.close(),
  };
}

async function measure(c: Case, proxy: Proxy, record: boolean): Promise<RunResult> {
  await proxy.clearRecords();
  const t0 = performance.now();
  let ok: boolean;
  let detail: string;
  let events: DeliveryEvent[] | undefined;
  if (c.client === 'mailwire') {
    const r = await runMailwire(proxy.destination);
    ok = r.ok;
    detail = r.detail;
    events = r.events;
  } else {
    const r = await runNodemailer(proxy.port);
    ok = r.ok;
    detail = r.detail;
  }
  const t1 = performance.now();
  // let the tail of the conversation (QUIT, 221, close) pass the proxy before the next run
  await new Promise((r) => setTimeout(r, RTT * 2 + 20));
  const conn = (await proxy.records())[0];
  const d = conn ? describeFlights(conn, t1) : { turns: NaN, text: '(no connection seen)' };
  const breakdown = conn ? breakdownOf(conn, t0, t1) : { connect: NaN, client: NaN, server: NaN, wire: NaN, proxy: NaN, tail: NaN };
  if (record && VERBOSE && conn) {
    console.log(`  (${c.id}) flights at the proxy, ms after the call (read from source → written to the other side):`);
    console.log(`      accepted ${(conn.acceptedAt - t0).toFixed(2)}`);
    for (const f of flightsOf(conn, RTT / 4)) {
      const text = f.chunks.map((x) => x.head).join('').split('\r\n').filter((l) => l !== '').slice(0, 3).join(' | ');
      const w = f.lastWrittenAt === undefined ? '-' : (f.lastWrittenAt - t0).toFixed(2);
      console.log(`      ${f.dir} ${(f.firstReadAt - t0).toFixed(2).padStart(7)} → ${w.padStart(7)}  ${f.bytes} octets  ${JSON.stringify(text.slice(0, 100))}`);
    }
    console.log(`      result ${(t1 - t0).toFixed(2)}`);
  }
  if (record && VERBOSE && events) {
    for (const e of events) if (e.type === 'send' || e.type === 'receive') console.log(`    ${e.type === 'send' ? 'C:' : 'S:'} ${e.line}`);
  }
  return { ms: t1 - t0, rtts: (t1 - t0) / RTT, turns: d.turns, flights: d.text, breakdown, ok, detail };
}

/** RTT actually seen through the proxy: ping-pong 1 octet with an echo server. */
async function calibrate(): Promise<{ median: number; min: number }> {
  const echo = createServer((s) => s.on('data', (d) => s.write(d)));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const port = (echo.address() as { port: number }).port;
  const proxy = await startProxy({ targetPort: port, delayMs: DELAY, record: false });
  const s = connect(proxy.port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    s.write('x');
    await new Promise((r) => s.once('data', r));
    if (i >= 2) times.push(performance.now() - t0);
  }
  s.destroy();
  await proxy.close();
  await new Promise((r) => echo.close(r));
  return { median: median(times), min: min(times) };
}

// ---------------------------------------------------------------- main

console.log(`mailwire round-trip benchmark: ${RUNS} cold deliveries per case (each a new connection, after ${WARMUP} unrecorded), 1 message (${message.length} octets) to ${recipients.length} recipients`);
console.log(`latency proxy: bench/latency-proxy.ts (${PROXY_MODE === 'child' ? 'in a child process' : 'in this process'}), ${DELAY} ms each way, nominal RTT ${RTT} ms (TCP handshake not delayed)`);
console.log(`server: ${serverNote}`);
const cal = await calibrate();
console.log(`proxy calibration (1-octet ping-pong): median ${cal.median.toFixed(2)} ms, min ${cal.min.toFixed(2)} ms per nominal ${RTT} ms RTT`);
console.log(`node ${process.version}, nodemailer ${(nodemailer as unknown as { version?: string }).version ?? '10'}; elapsed/RTT uses the nominal RTT\n`);

const results = new Map<string, RunResult[]>();
let failures = 0;
const proxies = new Map<Case, Proxy>();
for (const c of cases) {
  proxies.set(c, await startProxy({ targetHost: c.upstream.host, targetPort: c.upstream.port, delayMs: DELAY, recordBytes: 4096 }));
}
cleanup.push(async () => {
  for (const p of proxies.values()) await p.close();
});

// unrecorded warm-up runs per case (module loading, JIT; Postfix starting smtpd processes), then
// the runs interleaved by case so that drift on the machine affects every case alike
for (let i = 0; i < WARMUP; i++) for (const c of cases) await measure(c, proxies.get(c)!, false);
for (let i = 0; i < RUNS; i++) {
  for (const c of cases) {
    const r = await measure(c, proxies.get(c)!, i === 0);
    if (!r.ok) {
      failures++;
      console.log(`  run ${i + 1} (${c.id}) did not deliver: ${r.detail}`);
    }
    const list = results.get(c.id) ?? [];
    list.push(r);
    results.set(c.id, list);
  }
}

const rows: string[][] = [];
const medians: Record<string, number> = {};
const gated: Record<string, number> = {};
for (const c of cases) {
  const rs = results.get(c.id)!;
  const rtts = rs.map((r) => r.rtts);
  medians[c.id] = median(rtts);
  gated[c.id] = GATE === 'nominal' ? medians[c.id]! : median(rs.map((r) => r.ms)) / cal.median;
  const turns = [...new Set(rs.map((r) => r.turns))].join('/');
  const verdict = c.target === undefined ? '' : gated[c.id]! <= c.target ? `≤ ${c.target} ok` : `> ${c.target} MISSED`;
  rows.push([
    `(${c.id}) ${c.label}`,
    medians[c.id]!.toFixed(2),
    min(rtts).toFixed(2),
    median(rs.map((r) => r.ms)).toFixed(1),
    (median(rs.map((r) => r.ms)) / cal.median).toFixed(2),
    turns,
    (Number(turns) - 0.5).toFixed(1),
    verdict,
  ]);
}
console.log(table(['case', 'median RTT', 'min RTT', 'median ms', 'per measured RTT', 'turns', 'turns-0.5', `target (${GATE === 'nominal' ? 'median' : 'per measured'})`], rows));
console.log('\n(RTT columns use the nominal RTT; "per measured RTT" divides by the calibrated ping-pong RTT instead.');
console.log(' turns = server→client flights that reached the client before the result, greeting included;');
console.log(' with this proxy the best possible elapsed time is turns − 0.5 RTT)\n');
console.log('conversation as seen by the proxy (first recorded run):');
for (const c of cases) console.log(`  (${c.id}) ${results.get(c.id)![0]!.flights}`);
console.log('\nwhere the time went (median ms per run; from the proxy\'s timestamps):');
const keys: Array<keyof Breakdown> = ['connect', 'client', 'server', 'wire', 'proxy', 'tail'];
console.log(
  table(
    ['case', 'elapsed', ...keys, 'unaccounted'],
    cases.map((c) => {
      const rs = results.get(c.id)!;
      const med = (k: keyof Breakdown) => median(rs.map((r) => r.breakdown[k]));
      const unaccounted = median(rs.map((r) => r.ms - keys.reduce((a, k) => a + r.breakdown[k], 0)));
      return [`(${c.id})`, median(rs.map((r) => r.ms)).toFixed(2), ...keys.map((k) => med(k).toFixed(2)), unaccounted.toFixed(2)];
    }),
  ),
);
console.log('(connect: deliver()/sendMail() called → proxy accepted; client/server: think time between a reply');
console.log(' reaching one side and its next flight leaving it; wire: nominal one-way delays crossed; proxy: the');
console.log(" proxy's lateness beyond them plus the spread of multi-chunk flights; tail: last reply → result)");
console.log('\nper-run elapsed/RTT:');
for (const c of cases) console.log(`  (${c.id}) ${results.get(c.id)!.map((r) => r.rtts.toFixed(2)).join(' ')}`);

const ratio = medians.b! / medians.c!;
console.log(`\nmailwire/nodemailer, PIPELINING-only server (median b / median c): ${ratio.toFixed(3)} (${medians.b!.toFixed(2)} vs ${medians.c!.toFixed(2)} RTT)`);

let missed = 0;
for (const c of cases) if (c.target !== undefined && !(gated[c.id]! <= c.target)) missed++;
if (failures > 0) console.log(`\n${failures} run(s) did not deliver every recipient`);
console.log(missed === 0 && failures === 0 ? '\nresult: all targets met' : `\nresult: ${missed} target(s) missed${failures ? `, ${failures} failed run(s)` : ''}`);

for (const f of cleanup) await f();
cleanup = [];
process.exitCode = missed > 0 || failures > 0 ? 1 : 0;
