/**
 * Reproductions of what the pool benchmarks found, one check each, against the mailwire
 * TestServer on loopback (a few seconds in all). Prints "ok" or "BUG" per check and exits 1 if
 * any check shows the problem, so it can be run again after a fix.
 *
 *   npx tsx bench/pool-findings.ts
 *
 *  1. duplicate delivery: a reused connection dies after the server received (and accepted) a
 *     CHUNKING transaction sent in the same flight as the RSET probe, before the probe's reply
 *     reached the client: the transaction is treated as "not sent" and sent again elsewhere.
 *  2. maxTransactionsPerConnection: 200 concurrent deliver() with maxConnectionsPerDestination 2
 *     and maxTransactionsPerConnection 4; how many transactions one connection carried at once.
 *  3. spread over connections: 320 concurrent deliver() through a 20 ms RTT proxy, 10 connections
 *     allowed: transactions per server session, and the rate with transaction pipelining on/off.
 *  4. events of other callers: three concurrent deliver() calls share one connection; each
 *     caller's onEvent must see only its own commands.
 *  5. a 421 to RCPT before BDAT LAST in the same flight: the other recipients should not be
 *     told "message may be sent more than once" (the server said it was closing first).
 *  6. RSET before every pipelined transaction on a busy connection (informational).
 *  7. waiting callers cost CPU: transactionPipelining off, 10 connections, 10 vs 1000 deliver()
 *     calls in flight (990 of them waiting); CPU per message should not grow with the queue.
 */
import { deliver, Pool, type DeliveryEvent } from '../src/index.js';
import { TestServer } from '../src/testing/index.js';
import { forkLatencyProxy } from './latency-proxy.js';
import { gitHead } from './lib.js';
import { rsetCuttingRelay } from '../test/helpers/cutting-relay.js';

let bugs = 0;
const report = (bug: boolean, what: string) => {
  if (bug) bugs++;
  console.log(`${bug ? 'BUG' : 'ok '}  ${what}`);
};
const env = (i: number | string, to = [`r${i}@y.test`]) => ({ from: `s${i}@x.test`, to, message: `Subject: ${i}\r\n\r\nmessage ${i}\r\n` });
const base = { tls: { level: 'none' as const }, heloName: 'client.test' };
console.log(`mailwire ${gitHead()}, node ${process.version}\n`);

// 1 ------------------------------------------------------------------------------------------
{
  const server = await TestServer.start({ discardData: true });
  const relay = await rsetCuttingRelay(server.port!);
  const dest = relay.destination;
  const pool = new Pool();
  await deliver(env('first'), dest, { ...base, pool });
  const r = await deliver(env('second'), dest, { ...base, pool });
  await pool.close();
  await new Promise((res) => setTimeout(res, 100));
  const copies = server.transactions.filter((t) => t.mailFrom === 'ssecond@x.test' && t.replies.some((x) => x.startsWith('250'))).length;
  report(copies > 1, `1 duplicate delivery: the second message was accepted ${copies} time(s) by the server; its result: ${r.recipients[0]!.action} ${r.recipients[0]!.status} ${r.recipients[0]!.reason}`);
  relay.close();
  await server.close();
}

// 2 ------------------------------------------------------------------------------------------
{
  const s = await TestServer.start({ discardData: true });
  const pool = new Pool({ maxConnectionsPerDestination: 2, maxTransactionsPerConnection: 4 });
  let maxLoad = 0;
  const internals = pool as unknown as { entries?: Set<{ conn: { load: number } }> };
  const sample = () => {
    for (const e of internals.entries ?? []) maxLoad = Math.max(maxLoad, e.conn.load);
  };
  const rs = await Promise.all(Array.from({ length: 200 }, (_, i) => deliver(env(i), s.destination, { ...base, pool, onEvent: sample })));
  await pool.close();
  const relayed = rs.filter((r) => r.recipients[0]!.action === 'relayed').length;
  report(maxLoad > 4, `2 maxTransactionsPerConnection 4: one connection carried up to ${maxLoad} transactions at once (${relayed}/200 relayed, ${s.sessions.length} sessions)`);
  await s.close();
}

// 3 ------------------------------------------------------------------------------------------
{
  const s = await TestServer.start({ discardData: true, extensions: { chunking: false } });
  const proxy = await forkLatencyProxy({ targetPort: s.port!, delayMs: 10, record: false });
  const line: string[] = [];
  let skewed = false;
  for (const tp of [true, false]) {
    s.reset();
    const pool = new Pool({ maxConnectionsPerDestination: 10 });
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 320 }, (_, i) => deliver(env(i), proxy.destination, { ...base, pool, transactionPipelining: tp })));
    const ms = performance.now() - t0;
    await pool.close();
    await new Promise((r) => setTimeout(r, 200));
    const per = new Map<number, number>();
    for (const t of s.transactions) per.set(t.session, (per.get(t.session) ?? 0) + 1);
    const counts = [...per.values()].sort((a, b) => b - a);
    if (tp && counts[0]! > 320 / 2) skewed = true;
    line.push(`pipelining ${tp ? 'on' : 'off'}: ${(320 / (ms / 1000)).toFixed(0)} msg/s, transactions per session ${counts.join(' ')}`);
  }
  await proxy.close();
  await s.close();
  report(skewed, `3 320 calls, 10 connections, 20 ms RTT, DATA path: ${line.join('; ')}`);
}

// 4 ------------------------------------------------------------------------------------------
{
  const s = await TestServer.start({ discardData: true });
  const pool = new Pool({ maxConnectionsPerDestination: 1 });
  const seen = new Map<string, string[]>();
  await Promise.all(
    ['a', 'b', 'c'].map((k) =>
      deliver(env(k, [`${k}-rcpt@y.test`]), s.destination, {
        ...base,
        pool,
        onEvent: (e: DeliveryEvent) => {
          if (e.type === 'send') seen.set(k, [...(seen.get(k) ?? []), e.line]);
        },
      }),
    ),
  );
  await pool.close();
  await s.close();
  const foreign: string[] = [];
  for (const [k, lines] of seen) {
    for (const l of lines) {
      const mine = l.includes(`<s${k}@x.test>`) || l.includes(`<${k}-rcpt@y.test>`);
      if (/^(MAIL FROM|RCPT TO):/.test(l) && !mine) foreign.push(`caller ${k} saw "${l.split(' ')[0]} ${l.split(' ')[1]}"`);
    }
  }
  report(foreign.length > 0, `4 events of other callers: ${foreign.length ? foreign.slice(0, 3).join('; ') : 'none'}`);
}

// 5 ------------------------------------------------------------------------------------------
{
  const s = await TestServer.start({ faults: [{ step: 'rcpt', rcpt: 1, action: 'reply', reply: '421 4.3.2 Service shutting down, closing channel' }] });
  const r = await deliver(env('x', ['one@y.test', 'two@y.test']), s.destination, base);
  await s.close();
  const one = r.recipients[0]!;
  report(/more than once/.test(one.reason), `5 421 to the 2nd RCPT, CHUNKING: 1st recipient ${one.action} ${one.status} "${one.reason}"; the server ${s.transactions.some((t) => t.replies.length > 0) ? 'answered' : 'never saw'} an end of data`);
}

// 6 ------------------------------------------------------------------------------------------
{
  const s = await TestServer.start({ discardData: true });
  const pool = new Pool({ maxConnectionsPerDestination: 1 });
  await Promise.all(Array.from({ length: 6 }, (_, i) => deliver(env(i), s.destination, { ...base, pool })));
  await pool.close();
  await s.waitForSessions(1);
  const t = s.sessions[0]!.transcript;
  const rsets = t.filter((l) => l === 'C: RSET').length;
  console.log(`info 6 six concurrent calls on one connection: ${s.transactions.length} transactions, ${rsets} RSET (one before every transaction that joined the busy connection)`);
  await s.close();
}

// 7 ------------------------------------------------------------------------------------------
{
  const s = await TestServer.start({ discardData: true, extensions: { chunking: false } });
  const cpuPerMessage = async (inflight: number): Promise<number> => {
    const pool = new Pool({ maxConnectionsPerDestination: 10 });
    const n = 3000;
    let next = 0;
    const c0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (next < n) {
          next++;
          await deliver(env(next), s.destination, { ...base, pool, transactionPipelining: false });
        }
      }),
    );
    const c = process.cpuUsage(c0);
    await pool.close();
    s.reset();
    return (c.user + c.system) / n;
  };
  await cpuPerMessage(10); // warm-up
  const few = await cpuPerMessage(10);
  const many = await cpuPerMessage(1000);
  await s.close();
  report(many > 3 * few, `7 transactionPipelining off, 10 connections: ${few.toFixed(0)} µs CPU/message with 10 calls in flight, ${many.toFixed(0)} µs with 1000 (990 waiting; client and test server share this process)`);
}

console.log(bugs === 0 ? '\nno problem reproduced' : `\n${bugs} problem(s) reproduced`);
process.exitCode = bugs === 0 ? 0 : 1;
