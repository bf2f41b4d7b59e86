// The connection pool against a real Postfix smtpd (test/interop/peers.sh, the CHUNKING listener):
// one Pool, 10,000 deliver() calls with 100 in flight (transaction pipelining on, the default).
// Every result must be relayed with its own Postfix queue id, Postfix must have received BDAT
// (never DATA) in as many transactions as there are messages, and stored exactly one copy of
// each (counted in the catchall maildir by a token unique to this run, and by the log's
// status=sent lines). The stored copies are removed afterwards.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { deliver, Pool, type DeliveryResult } from '../../src/index.js';
import { LogCursor, Transcript, peers, smtpNexthop, token, type DeliveryEvent } from './helpers.js';

const P = peers();
const MESSAGES = 10_000;
const IN_FLIGHT = 100;
const SAMPLE_EVERY = 1000;
const catchall = join(P.postfixMaildirs, 'catchall', 'new');

/** Files in the catchall maildir that contain `needle` (Postfix's virtual(8) adds Delivered-To). */
function storedWith(needle: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(catchall);
  } catch {
    return [];
  }
  return names.filter((n) => {
    try {
      return readFileSync(join(catchall, n), 'latin1').includes(needle);
    } catch {
      return false; // removed meanwhile
    }
  });
}

/**
 * The chunking listener's finished smtpd sessions (connect … disconnect, per smtpd PID) that
 * carried at least one of `ids` (`QUEUEID: client=…` lines): their disconnect counters
 * (`mail=500 rcpt=500 bdat=500 …`) and how many of `ids` each carried.
 */
function smtpdSessions(lines: string[], ids: Set<string>): Array<{ counters: Record<string, number>; ids: number }> {
  const open = new Map<string, number>();
  const done: Array<{ counters: Record<string, number>; ids: number }> = [];
  for (const l of lines) {
    const m = /postfix-interop\/chunking\/smtpd\[(\d+)\]: (connect from |disconnect from |([0-9A-F]+): client=)(.*)$/.exec(l);
    if (!m) continue;
    const pid = m[1]!;
    if (m[2] === 'connect from ') open.set(pid, 0);
    else if (m[3] !== undefined) {
      if (ids.has(m[3]) && open.has(pid)) open.set(pid, open.get(pid)! + 1);
    } else if (open.has(pid)) {
      const n = open.get(pid)!;
      open.delete(pid);
      if (n > 0) done.push({ ids: n, counters: Object.fromEntries([...m[4]!.matchAll(/([a-z]+)=(\d+)(?:\/\d+)?/g)].map((c) => [c[1]!, Number(c[2])])) });
    }
  }
  return done;
}

const tok = token('pool');
const rcpt = `pool-${tok}@example.test`;

afterAll(() => {
  for (const n of storedWith(tok)) rmSync(join(catchall, n), { force: true });
});

describe('Pool against Postfix smtpd (CHUNKING listener)', () => {
  it(`delivers ${MESSAGES} messages through one Pool with transaction pipelining; Postfix stores each exactly once`, async () => {
    const cursor = new LogCursor(P.postfixLog);
    const pool = new Pool();
    const samples: Transcript[] = [];
    let opened = 0;
    let reused = 0;
    const count = (e: DeliveryEvent) => {
      if (e.type === 'connected') {
        if (e.reused) reused++;
        else opened++;
      }
    };
    const results: DeliveryResult[] = new Array(MESSAGES);
    const t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < MESSAGES) {
        const i = next++;
        const sample = i % SAMPLE_EVERY === SAMPLE_EVERY - 1 ? new Transcript() : undefined;
        if (sample) samples.push(sample);
        const message = `From: <pool-sender@client.test>\r\nTo: <${rcpt}>\r\nSubject: mailwire pool ${tok} ${i}\r\nMessage-ID: <${tok}.${i}@client.test>\r\n\r\nmessage ${i} of ${MESSAGES} (${tok})\r\n`;
        results[i] = await deliver({ from: 'pool-sender@client.test', to: [rcpt], message }, smtpNexthop(P.postfix), {
          pool,
          tls: { level: 'none' },
          heloName: 'client.test',
          transactionPipelining: true,
          onEvent: sample
            ? (e) => {
                count(e);
                sample.onEvent(e);
              }
            : count,
        });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const sendSeconds = (performance.now() - t0) / 1000;
    const stats = pool.stats();
    await pool.close();

    // --- every result relayed, each with a queue id of its own
    const notRelayed = results.filter((r) => r.recipients[0]?.action !== 'relayed');
    expect(notRelayed.length, `not relayed, e.g. ${JSON.stringify(notRelayed.slice(0, 3).map((r) => r.recipients[0]), null, 1)}`).toBe(0);
    const queueIds: Array<string | undefined> = results.map((r) => /queued as ([0-9A-F]+)/.exec(r.recipients[0]?.diagnosticCode ?? '')?.[1]);
    expect(queueIds.filter((q) => q === undefined)).toHaveLength(0);
    expect(new Set(queueIds).size).toBe(MESSAGES);

    // --- the pool: few connections, reused (Postfix's default concurrency: 20 per destination)
    expect(opened).toBeGreaterThan(0);
    expect(opened).toBeLessThanOrEqual(pool.options.maxConnectionsPerDestination * 3);
    expect(reused).toBeGreaterThan(MESSAGES / 2);

    // --- BDAT on the wire (sample transcripts) ...
    expect(samples.length).toBe(MESSAGES / SAMPLE_EVERY);
    for (const t of samples) {
      const sent = t.sent();
      expect(sent.some((l) => /^BDAT \d+ LAST$/.test(l)), t.toString()).toBe(true);
      expect(sent.filter((l) => /^DATA$/i.test(l)), t.toString()).toHaveLength(0);
    }

    // --- ... and at Postfix: the smtpd sessions that carried our queue ids (other clients may use
    // the same listener meanwhile) add up to one MAIL and one BDAT per message, and no DATA
    const ours = new Set(queueIds as string[]);
    let sessions: Array<{ counters: Record<string, number>; ids: number }> = [];
    for (let waited = 0; waited < 30_000; waited += 200) {
      sessions = smtpdSessions(cursor.lines(), ours);
      if (sessions.length >= opened) break;
      await sleep(200);
    }
    const sum = (k: string) => sessions.reduce((a, s) => a + (s.counters[k] ?? 0), 0);
    expect(sessions.length).toBe(opened);
    expect(sessions.reduce((a, s) => a + s.ids, 0)).toBe(MESSAGES);
    expect(sum('mail')).toBe(MESSAGES);
    expect(sum('bdat')).toBe(MESSAGES);
    expect(sum('data')).toBe(0);

    // --- stored exactly once each: the maildir and the log agree with the results
    let stored: string[] = [];
    const until = Date.now() + 90_000;
    while ((stored = storedWith(tok)).length < MESSAGES && Date.now() < until) await sleep(500);
    await sleep(1000); // a late duplicate would show up now
    stored = storedWith(tok);
    const sentLines = cursor.lines().filter((l) => l.includes(`to=<${rcpt}>`) && l.includes('status=sent'));
    const deliveredIds = new Set(sentLines.map((l) => /: ([0-9A-F]+): to=</.exec(l)?.[1]));
    console.log(
      `pool interop: ${MESSAGES} messages in ${sendSeconds.toFixed(1)} s (${(MESSAGES / sendSeconds).toFixed(0)} msg/s), ` +
        `${opened} connections opened, ${reused} reuses, pool before close ${JSON.stringify(stats)}; Postfix: ${sessions.length} sessions, ` +
        `${sum('mail')} MAIL, ${sum('bdat')} BDAT, ${sum('rset')} RSET; stored ${stored.length}, status=sent ${sentLines.length}`,
    );
    expect(stored.length).toBe(MESSAGES);
    expect(sentLines.length).toBe(MESSAGES);
    expect([...deliveredIds].sort()).toEqual([...new Set(queueIds)].sort());
  }, 240_000);
});
