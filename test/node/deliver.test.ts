import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { deliver, type DeliveryEvent } from '../../src/index.js';
import { encodeContent } from '../../src/protocol/content-encoder.js';
import { start } from '../helpers/test-servers.js';


const base = { from: 'sender@client.test', message: 'Subject: t\r\n\r\nhello\r\n' };
const opts = { tls: { level: 'none' as const }, heloName: 'client.test' };

describe('deliver(): failover across next hops', () => {
  it('a 4xx greeting moves on to the next destination; attempts record both', async () => {
    const a = await start({ greeting: '421 4.3.2 busy' });
    const b = await start();
    const r = await deliver({ ...base, to: ['x@t.test', 'y@t.test'] }, `${a.destination}, ${b.destination}`, opts);
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    expect(r.attempts.map((x) => x.outcome)).toEqual(['session-failed', 'completed']);
    expect(r.attempts[0]!.reason).toMatch(/refused to talk to me: 421 4.3.2 busy/);
  });

  it('a 5xx greeting is soft (skip5xxGreeting): next server; at the last one it defers', async () => {
    const a = await start({ greeting: '554 5.7.1 no service' });
    const r1 = await deliver({ ...base, to: ['x@t.test'] }, a.destination, opts);
    expect(r1.recipients[0]).toMatchObject({ action: 'delayed', status: '4.7.1' });
    const r2 = await deliver({ ...base, to: ['x@t.test'] }, a.destination, { ...opts, skip5xxGreeting: false });
    expect(r2.recipients[0]).toMatchObject({ action: 'failed', status: '5.7.1' });
  });

  it('a per-recipient 4xx tries only that recipient at the next server; a 5xx is final at once', async () => {
    const a = await start({ onRcpt: (addr) => (addr.startsWith('soft') ? '450 4.2.0 busy' : addr.startsWith('hard') ? '550 5.1.1 unknown' : undefined) });
    const b = await start();
    const r = await deliver({ ...base, to: ['ok@t.test', 'soft@t.test', 'hard@t.test'] }, `${a.destination} ${b.destination}`, opts);
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['relayed', '2.0.0'],
      ['relayed', '2.0.0'],
      ['failed', '5.1.1'],
    ]);
    expect(b.transactions[0]!.rcpts.map((x) => x.address)).toEqual(['soft@t.test']);
  });

  it('the last error reaches recipients kept until the end (Postfix why buffer)', async () => {
    const a = await start({ onRcpt: () => '450 4.2.0 busy' });
    const r = await deliver({ ...base, to: ['x@t.test'] }, `${a.destination} [127.0.0.1]:1`, opts);
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.1' });
    expect(r.recipients[0]!.reason).toMatch(/^connect to 127\.0\.0\.1\[127\.0\.0\.1\]:1: Connection refused$/);
  });

  it('a one-shot stream that was sent cannot go to the next server; a factory can', async () => {
    const a = await start({ onData: () => '451 4.3.0 try again' });
    const b = await start();
    const events: DeliveryEvent[] = [];
    const r1 = await deliver({ ...base, to: ['x@t.test'], message: Readable.from([Buffer.from('Subject: s\r\n\r\nbody\r\n')]) }, `${a.destination} ${b.destination}`, { ...opts, onEvent: (e) => events.push(e) });
    expect(r1.recipients[0]).toMatchObject({ action: 'delayed', status: '4.3.0' });
    expect(events.some((e) => e.type === 'warning' && /cannot be read again/.test(e.message))).toBe(true);
    expect(b.transactions).toHaveLength(0);
    const r2 = await deliver({ ...base, to: ['x@t.test'], message: () => Readable.from([Buffer.from('Subject: s\r\n\r\nbody\r\n')]) }, `${a.destination} ${b.destination}`, opts);
    expect(r2.recipients[0]).toMatchObject({ action: 'relayed' });
    expect(b.transactions[0]!.data!.toString()).toBe('Subject: s\r\n\r\nbody\r\n');
  });
});

describe('deliver(): content', () => {
  for (const chunking of [true, false]) {
    it(`streams 3 MB with backpressure and the receiver gets it intact (${chunking ? 'BDAT' : 'DATA'})`, async () => {
      const s = await start({ extensions: { chunking }, discardData: true });
      const line = Buffer.from('.a line that starts with a dot and has 8-bit \u00e9 text ' + 'x'.repeat(60) + '\n');
      const n = Math.ceil((3 * 1024 * 1024) / line.length);
      async function* gen() {
        for (let i = 0; i < n; i += 100) yield Buffer.concat(Array(Math.min(100, n - i)).fill(line));
      }
      const r = await deliver({ ...base, to: ['x@t.test'], message: gen() }, s.destination, opts);
      expect(r.recipients[0]).toMatchObject({ action: 'relayed' });
      const expected = encodeContent(Buffer.concat(Array(n).fill(line)), { dotStuff: false }).bytes;
      const tx = s.transactions[0]!;
      expect(tx.size).toBe(expected.length);
      expect(tx.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      expect(tx.method).toBe(chunking ? 'BDAT' : 'DATA');
      if (chunking) expect(tx.bdatChunks.length).toBeGreaterThan(10);
    });
  }

  it('in-memory message: SIZE= and BODY=8BITMIME measured, one BDAT LAST', async () => {
    const s = await start({ extensions: { size: 1000000 } });
    await deliver({ ...base, to: ['x@t.test'], message: 'Subject: \u00e9\n\nbody\n' }, s.destination, opts);
    const tx = s.transactions[0]!;
    // "Subject: é" CRLF CRLF "body" CRLF: 21 octets after CRLF conversion (é is two)
    // The UTF-8 Subject asks for SMTPUTF8 too (PROTO-12).
    expect(tx.mailParams).toEqual(['SIZE=21', 'BODY=8BITMIME', 'SMTPUTF8']);
    expect(tx.bdatChunks).toEqual([21]);
  });

  it('a message over the server SIZE limit fails 5.3.4 before MAIL, with no failover', async () => {
    const a = await start({ extensions: { size: 10 } });
    const b = await start();
    const r = await deliver({ ...base, to: ['x@t.test'] }, `${a.destination} ${b.destination}`, opts);
    expect(r.recipients[0]).toMatchObject({ action: 'failed', status: '5.3.4' });
    expect(r.recipients[0]!.reason).toMatch(/^message size 21 exceeds size limit 10 of server /);
    expect(a.transactions).toHaveLength(0);
    expect(b.sessions).toHaveLength(0);
  });

  it('a stream that fails mid-way defers with 4.3.0 and never reports success', async () => {
    const s = await start({ extensions: { chunking: false } });
    async function* broken() {
      yield Buffer.from('Subject: x\r\n\r\n');
      throw new Error('disk on fire');
    }
    const r = await deliver({ ...base, to: ['x@t.test'], message: broken() }, s.destination, opts);
    expect(r.recipients[0]).toMatchObject({ action: 'delayed', status: '4.3.0' });
    expect(r.recipients[0]!.reason).toMatch(/disk on fire/);
    await s.waitForSessions(1);
    expect(s.transactions.filter((t) => t.complete)).toHaveLength(0);
  });

  it('without PIPELINING, nothing is pipelined (a reject_unauth_pipelining server sees no violation)', async () => {
    const s = await start({ extensions: { pipelining: false, chunking: true }, rejectUnauthPipelining: true });
    const r = await deliver({ ...base, to: ['x@t.test', 'y@t.test'] }, s.destination, opts);
    expect(r.recipients.map((x) => x.action)).toEqual(['relayed', 'relayed']);
    await s.waitForSessions(1);
    expect(s.sessions[0]!.pipeliningViolations).toBe(0);
  });
});

describe('deliver(): LMTP', () => {
  it('over a unix socket, final: true → delivered when the server lacks DSN, relayed when it has it', async () => {
    const path = `/tmp/mailwire-test-${process.pid}.sock`;
    const s = await start({ protocol: 'lmtp', path, extensions: { dsn: false } });
    const r = await deliver({ ...base, to: ['a@t.test'] }, `unix:${path}`, { protocol: 'lmtp', final: true });
    expect(r.recipients[0]).toMatchObject({ action: 'delivered', remoteAddress: path });
    const s2 = await start({ protocol: 'lmtp', extensions: { dsn: true } });
    const r2 = await deliver({ ...base, to: ['a@t.test'] }, s2.destination.replace(/^\[/, 'inet:['), { protocol: 'lmtp', final: true, tls: { level: 'none' } });
    expect(r2.recipients[0]).toMatchObject({ action: 'relayed', successNotifyHandedOff: true });
  });
});

describe('deliver(): AbortSignal', () => {
  it('aborting while the end-of-data reply is awaited: delayed 4.4.7, never relayed', async () => {
    const s = await start({ faults: [{ step: 'dot', action: 'stall' }] });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await deliver({ ...base, to: ['x@t.test', 'y@t.test'] }, s.destination, { ...opts, signal: ac.signal });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delayed', '4.4.7'],
      ['delayed', '4.4.7'],
    ]);
  });

  it('a result already final is kept when the caller aborts (LMTP: first reply in, then stall)', async () => {
    const s = await start({ protocol: 'lmtp', extensions: { dsn: false }, faults: [{ step: 'dot', action: 'stall', rcpt: 1 }] });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const r = await deliver({ ...base, to: ['x@t.test', 'y@t.test', 'z@t.test'] }, s.destination, { ...opts, protocol: 'lmtp', final: true, signal: ac.signal });
    expect(r.recipients.map((x) => [x.action, x.status])).toEqual([
      ['delivered', '2.0.0'],
      ['delayed', '4.4.7'],
      ['delayed', '4.4.7'],
    ]);
  });
});

describe('deliver(): events', () => {
  it('reports the transcript, with BDAT when CHUNKING is offered', async () => {
    const s = await start();
    const lines: string[] = [];
    await deliver({ ...base, to: ['x@t.test'] }, s.destination, { ...opts, onEvent: (e) => (e.type === 'send' || e.type === 'receive') && lines.push(`${e.type}: ${e.line}`) });
    expect(lines).toContain('send: BDAT 21 LAST');
    expect(lines[0]).toMatch(/^receive: 220 /);
  });

  it('an onEvent listener that throws does not break the delivery', async () => {
    const s = await start();
    const r = await deliver({ ...base, to: ['x@t.test'] }, s.destination, { ...opts, onEvent: () => { throw new Error('boom'); } });
    expect(r.recipients[0]!.action).toBe('relayed');
  });
});
