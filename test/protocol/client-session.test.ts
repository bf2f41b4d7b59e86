import { describe, expect, it } from 'vitest';
import { run, server, tx, EHLO_FULL } from '../helpers/script-server.js';
import type { Why } from '../../src/protocol/why.js';
import { ClientSession, type SessionEvent } from '../../src/protocol/client-session.js';

function* drainEvents(s: ClientSession): Generator<SessionEvent> {
  for (let e = s.nextEvent(); e; e = s.nextEvent()) yield e;
}

const EHLO_PIPE = ['250-mx.test', '250-PIPELINING', '250-8BITMIME', '250 ENHANCEDSTATUSCODES'];
const EHLO_PLAIN = ['250-mx.test', '250 8BITMIME'];

function kinds(outcomes: Map<number, Why>): string[] {
  return [...outcomes.entries()].sort((a, b) => a[0] - b[0]).map(([, w]) => (w.kind === 'reply' ? `reply:${w.command}:${w.reply.code}` : w.kind === 'success' ? `success:${w.reply.code}` : w.kind === 'local' ? `local:${w.reason}` : w.kind === 'refused' ? `refused:${w.reply.code}` : `${w.kind}:${(w as { stage?: string }).stage}`));
}

function exactlyOnce(r: ReturnType<typeof run>, n: number): void {
  expect([...r.outcomeCount.keys()].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
  for (const c of r.outcomeCount.values()) expect(c).toBe(1);
}

describe('ClientSession: SMTP with CHUNKING and PIPELINING', () => {
  it('sends MAIL, every RCPT and one BDAT LAST in one flight, then QUIT without waiting', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org', 'c@x.org']), server(EHLO_FULL));
    expect(r.flights).toBe(2); // EHLO; MAIL+RCPT×3+BDAT+QUIT
    const client = r.transcript.filter((l) => l.startsWith('C:'));
    expect(client).toEqual([
      'C: EHLO client.test',
      'C: MAIL FROM:<sender@example.org> SIZE=21 BODY=7BIT',
      'C: RCPT TO:<a@x.org> ORCPT=rfc822;a@x.org',
      'C: RCPT TO:<b@x.org> ORCPT=rfc822;b@x.org',
      'C: RCPT TO:<c@x.org> ORCPT=rfc822;c@x.org',
      'C: BDAT 21 LAST',
      'C: <21 octets of message content>',
      'C: QUIT',
    ]);
    expect(kinds(r.outcomes)).toEqual(['success:250', 'success:250', 'success:250']);
    expect(r.bodies).toEqual(['Subject: t\r\n\r\nhello\r\n']);
    expect(r.done).toBe(true);
    exactlyOnce(r, 3);
  });

  it('applies RCPT rejections per recipient and the BDAT LAST reply to the accepted ones', () => {
    const r = run(
      {},
      tx(['a@x.org', 'bad@x.org', 'soft@x.org']),
      server(EHLO_FULL, {
        RCPT: (c) => (c.includes('bad@') ? '550 5.1.1 no such user' : c.includes('soft@') ? '450 4.2.0 busy' : '250 2.1.5 Ok'),
      }),
    );
    expect(kinds(r.outcomes)).toEqual(['success:250', 'reply:RCPT TO:550', 'reply:RCPT TO:450']);
    exactlyOnce(r, 3);
  });

  it('a non-2xx BDAT LAST reply fails every accepted recipient as end of DATA', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org']), server(EHLO_FULL, { 'BDAT-LAST': () => '554 5.7.1 rejected' }));
    expect(kinds(r.outcomes)).toEqual(['reply:end of DATA:554', 'reply:end of DATA:554']);
  });

  it('streams a message of unknown length as bounded BDAT chunks, the last one LAST', () => {
    const chunks = Array.from({ length: 10 }, (_, i) => `line ${i} ${'x'.repeat(300)}\n`);
    const r = run({ bdatChunkSize: 1000 }, tx(['a@x.org'], '', { content: { kind: 'stream' } }), server(EHLO_FULL), { chunks });
    const bdat = r.transcript.filter((l) => /^C: BDAT/.test(l));
    expect(bdat.length).toBeGreaterThan(2);
    expect(bdat[bdat.length - 1]).toMatch(/^C: BDAT \d+ LAST$/);
    for (const l of bdat.slice(0, -1)) expect(l).toBe('C: BDAT 1000');
    expect(Number(/BDAT (\d+)/.exec(bdat.at(-1)!)![1])).toBeGreaterThan(0); // never a needless BDAT 0 LAST
    expect(r.bodies[0]).toBe(chunks.join('').replace(/\n/g, '\r\n'));
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });

  it('splits one large input chunk into chunks of exactly bdatChunkSize; without PIPELINING, lock-step', () => {
    const big = 'z'.repeat(99) + '\n';
    const chunks = [big.repeat(50)]; // 5000 octets in one piece
    // (8BITMIME keeps the MIME converter out: this is about chunk sizes.)
    for (const ehlo of [EHLO_FULL, ['250-mx.test', '250-8BITMIME', '250 CHUNKING']]) {
      const r = run({ bdatChunkSize: 1024 }, tx(['a@x.org'], '', { content: { kind: 'stream' } }), server(ehlo), { chunks });
      const bdat = r.transcript.filter((l) => /^C: BDAT/.test(l));
      expect(bdat).toEqual(['C: BDAT 1024', 'C: BDAT 1024', 'C: BDAT 1024', 'C: BDAT 1024', 'C: BDAT 954 LAST']);
      expect(r.bodies[0]).toBe(chunks[0]!.replace(/\n/g, '\r\n'));
      expect(kinds(r.outcomes)).toEqual(['success:250']);
      if (ehlo !== EHLO_FULL) expect(r.flights).toBe(2 + 1 + 5); // EHLO, MAIL, RCPT, then one flight per chunk
    }
  });

  it('a failed intermediate chunk fails the accepted recipients, stops the body and sends RSET', () => {
    let n = 0;
    const chunks = Array.from({ length: 20 }, () => 'y'.repeat(500) + '\n');
    const r = run(
      { bdatChunkSize: 1000 },
      tx(['a@x.org', 'b@x.org'], '', { content: { kind: 'stream' } }),
      server(EHLO_FULL, { BDAT: () => (n++ === 0 ? '552 5.3.4 too big' : '250 ok') }),
      { chunks, interleave: true },
    );
    expect(kinds(r.outcomes)).toEqual(['reply:BDAT:552', 'reply:BDAT:552']);
    expect(r.transcript.some((l) => /^C: BDAT \d+ LAST/.test(l))).toBe(false);
    expect(r.transcript).toContain('C: RSET');
    exactlyOnce(r, 2);
  });

  it('with no recipient accepted, a pipelined BDAT LAST reply changes nothing; RSET follows', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org']), server(EHLO_FULL, { RCPT: () => '550 5.1.1 no', 'BDAT-LAST': () => '554 5.5.1 no valid recipients' }));
    expect(kinds(r.outcomes)).toEqual(['reply:RCPT TO:550', 'reply:RCPT TO:550']);
    exactlyOnce(r, 2);
  });
});

describe('ClientSession: DATA path', () => {
  it('with PIPELINING: MAIL+RCPT+DATA in one flight, then body, "." and QUIT in the next', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org'], '.dot\n..two\nplain\n.'), server(EHLO_PIPE));
    expect(r.flights).toBe(3);
    const client = r.transcript.filter((l) => l.startsWith('C:'));
    expect(client).toEqual([
      'C: EHLO client.test',
      'C: MAIL FROM:<sender@example.org> BODY=7BIT',
      'C: RCPT TO:<a@x.org>',
      'C: RCPT TO:<b@x.org>',
      'C: DATA',
      'C: <26 octets of message content>',
      'C: .',
      'C: QUIT',
    ]);
    expect(r.bodies).toEqual(['.dot\r\n..two\r\nplain\r\n.\r\n']);
    expect(kinds(r.outcomes)).toEqual(['success:250', 'success:250']);
  });

  it('without PIPELINING every command waits, and QUIT waits for the reply to "."', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org']), server(EHLO_PLAIN));
    // EHLO, MAIL, RCPT, RCPT, DATA, body+"."; then QUIT, whose reply is not awaited
    expect(r.flights).toBe(6);
    expect(r.transcript.filter((l) => l.startsWith('C:')).at(-1)).toBe('C: QUIT');
    expect(r.trailing).toBe('QUIT\r\n');
    expect(kinds(r.outcomes)).toEqual(['success:250', 'success:250']);
  });

  it('chunking: false uses DATA even when CHUNKING is offered', () => {
    const r = run({ chunking: false }, tx(['a@x.org']), server(EHLO_FULL));
    expect(r.transcript).toContain('C: DATA');
    expect(r.transcript.some((l) => l.startsWith('C: BDAT'))).toBe(false);
  });

  it('MAIL rejected: every recipient fails with the MAIL reply, RSET, QUIT', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org']), server(EHLO_PIPE, { MAIL: () => '553 5.1.8 sender rejected', RCPT: () => '503 5.5.1 need MAIL', DATA: () => '503 5.5.1 need RCPT' }));
    expect(kinds(r.outcomes)).toEqual(['reply:MAIL FROM:553', 'reply:MAIL FROM:553']);
    expect(r.transcript.filter((l) => l.startsWith('C:')).slice(-2)).toEqual(['C: RSET', 'C: QUIT']);
    exactlyOnce(r, 2);
  });

  it('no recipient accepted: the DATA reply changes nothing, then RSET', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_PIPE, { RCPT: () => '550 5.1.1 no', DATA: () => '554 5.5.1 Error: no valid recipients' }));
    expect(kinds(r.outcomes)).toEqual(['reply:RCPT TO:550']);
    expect(r.transcript).toContain('C: RSET');
  });

  it('DATA accepted with no recipient accepted: a lone "." (RFC 2920), no content', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_PIPE, { RCPT: () => '550 5.1.1 no' }));
    expect(r.transcript.filter((l) => l.startsWith('C:')).slice(-3)).toEqual(['C: DATA', 'C: .', 'C: QUIT']);
    expect(r.bodies).toEqual(['']);
  });

  it('DATA rejected after an accepted RCPT fails the accepted recipients (in reply to DATA)', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org']), server(EHLO_PIPE, { RCPT: (c) => (c.includes('b@') ? '550 5.1.1 no' : '250 ok'), DATA: () => '451 4.3.0 try later' }));
    expect(kinds(r.outcomes)).toEqual(['reply:DATA:451', 'reply:RCPT TO:550']);
    expect(r.transcript).toContain('C: RSET');
  });

  it('a 250 to DATA is a failure reply (results/ makes it a 5.5.0 protocol error)', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_PIPE, { DATA: () => '250 ok?' }));
    expect(kinds(r.outcomes)).toEqual(['reply:DATA:250']);
  });
});

describe('ClientSession: handshake', () => {
  it('EHLO refused (not 421): HELO fallback, no extensions', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_FULL, { EHLO: () => '502 5.5.2 unknown command' }));
    expect(r.transcript).toContain('C: HELO client.test');
    expect(r.transcript).toContain('C: DATA');
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });

  it('EHLO 421: refused, no HELO', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_FULL, { EHLO: () => '421 4.3.2 shutting down' }));
    expect(r.transcript).not.toContain('C: HELO client.test');
    expect(kinds(r.outcomes)).toEqual(['refused:421']);
  });

  it('a failed greeting refuses every recipient and QUITs politely', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org']), server(EHLO_FULL), { greeting: '554 5.7.1 go away\r\n' });
    expect(kinds(r.outcomes)).toEqual(['refused:554', 'refused:554']);
    expect(r.transcript.filter((l) => l.startsWith('C:'))).toEqual(['C: QUIT']);
    exactlyOnce(r, 2);
  });

  it('neverSendEhlo sends HELO; alwaysSendEhlo=false sends HELO when the greeting lacks ESMTP', () => {
    expect(run({ neverSendEhlo: true }, tx(['a@x.org']), server(EHLO_FULL)).transcript).toContain('C: HELO client.test');
    expect(run({ alwaysSendEhlo: false }, tx(['a@x.org']), server(EHLO_FULL), { greeting: '220 mx.test SMTP\r\n' }).transcript).toContain('C: HELO client.test');
    expect(run({ alwaysSendEhlo: false }, tx(['a@x.org']), server(EHLO_FULL)).transcript).toContain('C: EHLO client.test');
  });

  it('discardEhloKeywords hides CHUNKING and PIPELINING', () => {
    const r = run({ discardEhloKeywords: ['chunking', 'PIPELINING'] }, tx(['a@x.org']), server(EHLO_FULL));
    expect(r.transcript).toContain('C: DATA');
    expect(r.flights).toBe(5); // lock-step: EHLO, MAIL, RCPT, DATA, body; then QUIT
    expect(r.trailing).toBe('QUIT\r\n');
  });

  it('LMTP: LHLO, one reply per accepted recipient after end of data, waits for the QUIT reply', () => {
    const r = run(
      { protocol: 'lmtp' },
      tx(['a@x.org', 'full@x.org', 'tmp@x.org', 'unknown@x.org']),
      server(['250-lmtp.test', '250-PIPELINING', '250 CHUNKING'], {
        RCPT: (c) => (c.includes('unknown') ? '550 5.1.1 unknown' : '250 2.1.5 ok'),
        'BDAT-LAST': () => ['250 2.0.0 <a@x.org> Saved', '552 5.2.2 <full@x.org> Quota', '452 4.2.2 <tmp@x.org> Quota'],
      }),
    );
    expect(r.transcript[1]).toBe('C: LHLO client.test');
    expect(kinds(r.outcomes)).toEqual(['success:250', 'reply:end of DATA:552', 'reply:end of DATA:452', 'reply:RCPT TO:550']);
    expect(r.transcript.at(-1)).toBe('S: 221 2.0.0 Bye');
    exactlyOnce(r, 4);
  });

  it('LMTP over DATA: per-recipient replies after "."', () => {
    const r = run({ protocol: 'lmtp' }, tx(['a@x.org', 'b@x.org']), server(['250-lmtp.test', '250 PIPELINING'], { '.': () => ['250 2.0.0 ok', '450 4.2.0 later'] }));
    expect(kinds(r.outcomes)).toEqual(['success:250', 'reply:end of DATA:450']);
  });
});

describe('ClientSession: local decisions', () => {
  it('SIZE limit smaller than the message: 5.3.4 for all, no MAIL', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org'], 'x'.repeat(100)), server(['250-mx.test', '250-PIPELINING', '250 SIZE 50']));
    expect(kinds(r.outcomes)).toEqual(['local:message-too-big', 'local:message-too-big']);
    expect(r.transcript.some((l) => l.startsWith('C: MAIL'))).toBe(false);
  });

  it('a bad recipient is never written; the others go', () => {
    const r = run({}, tx(['a@x.org', 'evil@x.org>\r\nRSET', 'b@x.org']), server(EHLO_FULL));
    expect(kinds(r.outcomes)).toEqual(['success:250', 'local:bad-recipient', 'success:250']);
    expect(r.transcript.some((l) => l.includes('evil'))).toBe(false);
  });

  it('a bad sender fails every recipient with 5.1.7 and sends no MAIL', () => {
    const r = run({}, { ...tx(['a@x.org', 'b@x.org']), sender: 'a\0b@x.org' }, server(EHLO_FULL));
    expect(kinds(r.outcomes)).toEqual(['local:bad-sender', 'local:bad-sender']);
    expect(r.transcript.some((l) => l.startsWith('C: MAIL'))).toBe(false);
  });

  it('SMTPUTF8 needed and not offered: 5.6.7 before MAIL', () => {
    const r = run({}, tx(['dörte@x.org']), server(EHLO_PIPE));
    expect(kinds(r.outcomes)).toEqual(['local:smtputf8-required']);
  });

  it('smtputf8: true with ASCII only: the keyword goes on MAIL when offered; no 5.6.7 when not', () => {
    const on = run({}, tx(['a@x.org'], undefined, { smtputf8: true }), server(EHLO_FULL));
    expect(on.transcript.find((l) => l.startsWith('C: MAIL'))).toMatch(/ SMTPUTF8$/);
    const off = run({}, tx(['a@x.org'], undefined, { smtputf8: true }), server(EHLO_PIPE));
    expect(off.transcript.find((l) => l.startsWith('C: MAIL'))).not.toMatch(/SMTPUTF8/);
    expect(kinds(off.outcomes)).toEqual(['success:250']);
  });

  it('smtputf8: false with a UTF-8 recipient: that recipient cannot be sent (5.1.3)', () => {
    const r = run({}, tx(['dörte@x.org', 'a@x.org'], undefined, { smtputf8: false }), server(EHLO_FULL));
    expect(kinds(r.outcomes)).toEqual(['local:bad-recipient', 'success:250']);
  });

  it('SMTPUTF8 needed and offered: the keyword goes on MAIL', () => {
    const r = run({}, tx(['dörte@x.org']), server(EHLO_FULL));
    expect(r.transcript.find((l) => l.startsWith('C: MAIL'))).toMatch(/ SMTPUTF8$/);
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });
});

describe('ClientSession: connection trouble', () => {
  const stages: Array<[string, string]> = [
    ['EHLO', 'performing the EHLO handshake'],
    ['MAIL', 'sending MAIL FROM'],
    ['RCPT', 'sending RCPT TO'],
    ['DATA', 'sending DATA command'],
    ['.', 'sending end of data -- message may be sent more than once'],
  ];
  for (const [verb, text] of stages) {
    it(`lost connection at ${verb}: every unmarked recipient, "${text}"`, () => {
      const r = run({ chunking: false }, tx(['a@x.org', 'b@x.org']), server(EHLO_PIPE, { [verb]: () => 'drop' }));
      expect(kinds(r.outcomes)).toEqual([`lost:${text}`, `lost:${text}`]);
      exactlyOnce(r, 2);
    });
  }

  it('lost connection during the greeting', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_FULL), { greeting: '' });
    r.session.connectionLost();
    const ev = r.session.nextEvent();
    expect(ev).toMatchObject({ type: 'outcome', why: { kind: 'lost', stage: 'receiving the initial server greeting' } });
  });

  it('timeout with the stage the reply was awaited in, even when later commands were written', () => {
    const r = run({}, tx(['a@x.org']), server(EHLO_PIPE, { RCPT: () => null }));
    expect(r.session.stage).toBe('rcpt');
    r.session.timeout();
    const ev = r.session.nextEvent();
    expect(ev).toMatchObject({ type: 'outcome', index: 0, why: { kind: 'timeout', stage: 'sending RCPT TO' } });
  });

  it('421 at RCPT, then EOF: the 421 is that recipient\'s 4xx; the accepted one is lost (not delivered)', () => {
    const r = run({}, tx(['a@x.org', 'b@x.org', 'c@x.org']), server(EHLO_PIPE, { RCPT: (c) => (c.includes('b@') ? '421 4.7.0 closing' : c.includes('c@') ? 'drop' : '250 ok') }));
    expect(kinds(r.outcomes)).toEqual(['lost:sending RCPT TO', 'reply:RCPT TO:421', 'lost:sending RCPT TO']);
    exactlyOnce(r, 3);
  });

  it('a premature failure reply during the body is used when the connection then drops', () => {
    const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test', chunking: false });
    session.transaction(tx(['a@x.org'], '', { content: { kind: 'stream' } }));
    const feed = (s: string) => session.receive(new TextEncoder().encode(s));
    feed('220 mx ESMTP\r\n');
    feed('250-mx\r\n250 PIPELINING\r\n');
    feed('250 ok\r\n250 ok\r\n354 go\r\n');
    expect(session.bodyPending).toBe(true);
    session.content(new TextEncoder().encode('Subject: x\r\n\r\nbody\r\n'));
    feed('552 5.3.4 message too big\r\n'); // before "." was sent: held back
    const before = [...drainEvents(session)].filter((e) => e.type === 'outcome');
    expect(before).toEqual([]);
    session.connectionLost();
    const outcomes = [...drainEvents(session)].filter((e) => e.type === 'outcome');
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ why: { kind: 'reply', command: 'end of DATA', reply: { code: 552 } } });
  });

  it('a connection lost while the body streams, without a reply: lost while sending message body', () => {
    const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test', chunking: false });
    session.transaction(tx(['a@x.org'], '', { content: { kind: 'stream' } }));
    const feed = (s: string) => session.receive(new TextEncoder().encode(s));
    feed('220 mx ESMTP\r\n250-mx\r\n250 PIPELINING\r\n');
    feed('250 ok\r\n250 ok\r\n354 go\r\n');
    session.content(new TextEncoder().encode('x'));
    session.connectionLost();
    const outcomes = [...drainEvents(session)].filter((e) => e.type === 'outcome');
    expect(outcomes).toEqual([{ type: 'outcome', tx: 1, index: 0, why: { kind: 'lost', stage: 'sending message body' } }]);
  });

  it('a reply of more than maxReplyLines lines is a protocol error', () => {
    const many = Array.from({ length: 30 }, () => '250-x').join('\n') + '\n250 end';
    const r = run({ maxReplyLines: 10 }, tx(['a@x.org']), server([many]));
    expect(kinds(r.outcomes)).toEqual(['local:protocol']);
  });
});

describe('ClientSession: PIPELINING window', () => {
  it('splits a long recipient list into flights of at most 4096 unanswered octets', () => {
    const rcpts = Array.from({ length: 200 }, (_, i) => `recipient-number-${i}@example.org`);
    const r = run({}, tx(rcpts), server(EHLO_PIPE));
    expect(r.flights).toBeGreaterThan(3);
    expect(kinds(r.outcomes).every((k) => k === 'success:250')).toBe(true);
    exactlyOnce(r, 200);
  });
});

describe('ClientSession: STARTTLS seam', () => {
  const EHLO_TLS = ['250-mx.test', '250-PIPELINING', '250 STARTTLS'];
  it('asks for TLS, drops plaintext injected after the 220, and sends EHLO again', () => {
    const r = run({ startTls: 'opportunistic' }, tx(['a@x.org']), server(EHLO_TLS), { afterStartTls: '250 2.1.0 injected\r\n' });
    expect(r.startTlsAsked).toBe(true);
    expect(r.transcript.filter((l) => l === 'C: EHLO client.test')).toHaveLength(2);
    expect(r.transcript).not.toContain('S: 250 2.1.0 injected');
    expect(r.session.tls).toBe(true);
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });

  it('a failed handshake is a tls-handshake failure and no QUIT', () => {
    const r = run({ startTls: 'opportunistic' }, tx(['a@x.org']), server(EHLO_TLS), { tls: 'fail' });
    expect(kinds(r.outcomes)).toEqual(['local:tls-handshake']);
    expect(r.transcript).not.toContain('C: QUIT');
  });

  it('required TLS without STARTTLS offered: starttls-missing', () => {
    const r = run({ startTls: 'required' }, tx(['a@x.org']), server(EHLO_PIPE));
    expect(kinds(r.outcomes)).toEqual(['local:starttls-missing']);
  });

  it('STARTTLS refused at level may: continue in plaintext', () => {
    const r = run({ startTls: 'opportunistic' }, tx(['a@x.org']), server(EHLO_TLS, { STARTTLS: () => '454 4.7.0 TLS not available' }));
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });
});

describe('ClientSession: AUTH seam (mechanisms come with the SASL issue)', () => {
  const EHLO_AUTH = ['250-mx.test', '250-PIPELINING', '250 AUTH PLAIN LOGIN'];
  const plain = { name: 'PLAIN', start: () => new TextEncoder().encode('\0user\0secret'), next: () => new Error('unexpected challenge') };
  const login = {
    name: 'LOGIN',
    start: () => undefined,
    next: (c: Uint8Array) => new TextEncoder().encode(new TextDecoder().decode(c) === 'Username:' ? 'user' : 'secret'),
  };

  it('sends the initial response inline, redacted in the transcript, then the transaction', () => {
    const r = run({ sasl: () => plain }, tx(['a@x.org']), server(EHLO_AUTH, { AUTH: () => '235 2.7.0 ok' }));
    expect(r.transcript).toContain('C: AUTH PLAIN <credentials>');
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });

  it('answers 334 challenges step by step (LOGIN: Username, Password), then 235', () => {
    const base = server(EHLO_AUTH);
    const seen: string[] = [];
    let auth = 0;
    const r = run({ sasl: () => login }, tx(['a@x.org']), (cmd, ctx) => {
      if (cmd === 'AUTH LOGIN' || auth > 0) {
        seen.push(cmd);
        auth++;
        return auth === 1 ? '334 VXNlcm5hbWU6' : auth === 2 ? '334 UGFzc3dvcmQ6' : ((auth = -100), '235 2.7.0 ok');
      }
      return base(cmd, ctx);
    });
    expect(seen).toEqual(['AUTH LOGIN', 'dXNlcg==', 'c2VjcmV0']);
    expect(r.transcript.filter((l) => l === 'C: <credentials>')).toHaveLength(2);
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });

  it('a 535 fails the session with the AUTH reply (soft-bounced by results/)', () => {
    const r = run({ sasl: () => plain }, tx(['a@x.org', 'b@x.org']), server(EHLO_AUTH, { AUTH: () => '535 5.7.8 bad credentials' }));
    expect(kinds(r.outcomes)).toEqual(['reply:AUTH:535', 'reply:AUTH:535']);
    expect(r.transcript.some((l) => l.startsWith('C: MAIL'))).toBe(false);
  });

  it('no usable mechanism: a local sasl failure (4.7.0), no AUTH sent', () => {
    const r = run({ sasl: () => ({ fail: 'no compatible mechanism' }) }, tx(['a@x.org']), server(EHLO_AUTH));
    expect(kinds(r.outcomes)).toEqual(['local:sasl']);
    expect(r.transcript.some((l) => l.startsWith('C: AUTH'))).toBe(false);
  });
});

describe('ClientSession: EHLO loop check (MX-7)', () => {
  it('a server that greets with our own name: loop, 5.4.6 at a best MX (describe) — engine reports kind loop', () => {
    const ehlo = ['250-CLIENT.TEST', '250 PIPELINING'];
    const best = run({ loopCheck: { name: 'client.test', nexthop: 'example.org', bestMx: true } }, tx(['a@x.org']), server(ehlo));
    expect([...best.outcomes.values()][0]).toEqual({ kind: 'loop', nexthop: 'example.org', greeted: { bestMx: true } });
    expect(best.transcript).toContain('C: QUIT');
    const other = run({ loopCheck: { name: 'client.test', nexthop: 'example.org', bestMx: false } }, tx(['a@x.org']), server(ehlo));
    expect([...other.outcomes.values()][0]).toMatchObject({ kind: 'loop', greeted: { bestMx: false } });
    const off = run({}, tx(['a@x.org']), server(ehlo));
    expect(kinds(off.outcomes)).toEqual(['success:250']);
  });
});

describe('ClientSession: TLS rules', () => {
  const EHLO_TLS = ['250-mx.test', '250-PIPELINING', '250-REQUIRETLS', '250 STARTTLS'];

  it('plaintext sent right after the 220 to STARTTLS is never acted on, and is reported', () => {
    const r = run({ startTls: 'required' }, tx(['a@x.org']), server(EHLO_TLS), { afterStartTls: '250 2.0.0 forged\r\n' });
    expect(r.transcript).not.toContain('S: 250 2.0.0 forged');
    expect(r.session.plaintextInjection).toBe(true);
    expect(r.warnings.some((w) => /CVE-2011-0411/.test(w))).toBe(true);
    expect(kinds(r.outcomes)).toEqual(['success:250']); // the session goes on over TLS, as Postfix does
  });

  it('a certificate that fails the check: 4.7.5 local, QUIT, no MAIL', () => {
    const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test', startTls: 'required' });
    session.transaction(tx(['a@x.org', 'b@x.org']));
    const feed = (t: string) => session.receive(new TextEncoder().encode(t));
    feed('220 mx ESMTP\r\n');
    feed('250-mx\r\n250 STARTTLS\r\n');
    feed('220 go ahead\r\n');
    expect(session.stage).toBe('tls');
    session.tlsNotVerified('certificate name does not match mx.example', 'certificate-host-mismatch');
    const evs = [...drainEvents(session)];
    const outcomes = evs.filter((e) => e.type === 'outcome');
    expect(outcomes).toHaveLength(2);
    expect(outcomes[0]).toMatchObject({ why: { kind: 'local', reason: 'tls-not-verified', tlsFailure: { resultType: 'certificate-host-mismatch' } } });
    const sent = evs.filter((e) => e.type === 'send').map((e) => (e as { line: string }).line);
    expect(sent.at(-1)).toBe('QUIT');
    expect(sent.some((l) => l.startsWith('MAIL'))).toBe(false);
  });

  it('inside TLS, a reply to MAIL that came before MAIL was written: 4.7.0, RSET (CVE-2009-3555)', () => {
    const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test', inTls: true });
    session.transaction(tx(['a@x.org']));
    const feed = (t: string) => session.receive(new TextEncoder().encode(t));
    feed('220 mx ESMTP\r\n');
    // The EHLO reply and a prepended "reply to MAIL" arrive together, before MAIL is sent.
    feed('250-mx\r\n250 PIPELINING\r\n250 2.1.0 injected\r\n');
    // The server's later replies (to RCPT and DATA) change nothing; no content is ever sent.
    feed('250 2.1.5 ok\r\n354 go ahead\r\n');
    const evs = [...drainEvents(session)];
    const outcomes = evs.filter((e) => e.type === 'outcome');
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ why: { kind: 'local', reason: 'unexpected-reply' } });
    expect(evs.some((e) => e.type === 'send' && /octets of message content/.test(e.line))).toBe(false);
    expect(evs.some((e) => e.type === 'warning' && /CVE-2009-3555/.test(e.message))).toBe(true);
  });

  it('the same early reply outside TLS, or with blockEarlyMailReply off, is not this check', () => {
    const session = new ClientSession({ protocol: 'smtp', heloName: 'client.test', inTls: true, blockEarlyMailReply: false });
    session.transaction(tx(['a@x.org']));
    session.receive(new TextEncoder().encode('220 mx ESMTP\r\n'));
    session.receive(new TextEncoder().encode('250-mx\r\n250 PIPELINING\r\n250 2.1.0 early\r\n'));
    expect([...drainEvents(session)].some((e) => e.type === 'outcome' && e.why.kind === 'local')).toBe(false);
  });

  it('REQUIRETLS: needs verified TLS and the server keyword, else 5.7.30 before MAIL', () => {
    const noTls = run({}, tx(['a@x.org'], undefined, { requireTls: true }), server(['250-mx.test', '250 REQUIRETLS']));
    expect(kinds(noTls.outcomes)).toEqual(['local:requiretls']);
    const unverified = run({ startTls: 'required' }, tx(['a@x.org'], undefined, { requireTls: true }), server(EHLO_TLS));
    expect(kinds(unverified.outcomes)).toEqual(['local:requiretls']); // tlsEstablished() without verified
    const ok = run({ inTls: true, tlsVerified: true }, tx(['a@x.org'], undefined, { requireTls: true }), server(['250-mx.test', '250 REQUIRETLS']));
    expect(ok.transcript.find((l) => l.startsWith('C: MAIL'))).toMatch(/ REQUIRETLS$/);
    expect(kinds(ok.outcomes)).toEqual(['success:250']);
    const noKeyword = run({ inTls: true, tlsVerified: true }, tx(['a@x.org'], undefined, { requireTls: true }), server(['250-mx.test', '250 PIPELINING']));
    expect(kinds(noKeyword.outcomes)).toEqual(['local:requiretls']);
  });
});

describe('ClientSession: XFORWARD (PROTO-18)', () => {
  const EHLO_XF = ['250-mx.test', '250-PIPELINING', '250-XFORWARD NAME ADDR PROTO HELO SOURCE', '250 8BITMIME'];
  const xforward = { name: 'client.example', addr: '192.0.2.1', port: 4711, proto: 'ESMTP', helo: 'helo with space', ident: 'abc', domain: 'REMOTE' as const };

  it('two commands before MAIL, announced attributes only, xtext values, in the same flight', () => {
    const r = run({}, tx(['a@x.org'], '', { xforward }), server(EHLO_XF));
    const client = r.transcript.filter((l) => l.startsWith('C:'));
    expect(client.slice(1, 4)).toEqual([
      'C: XFORWARD NAME=client.example ADDR=192.0.2.1',
      'C: XFORWARD PROTO=ESMTP HELO=helo+20with+20space SOURCE=REMOTE',
      'C: MAIL FROM:<sender@example.org> BODY=7BIT',
    ]);
    expect(r.flights).toBe(3); // EHLO; XFORWARD×2+MAIL+RCPT+DATA; body+"."+QUIT
    expect(kinds(r.outcomes)).toEqual(['success:250']);
  });

  it('not announced: nothing sent; a rejected XFORWARD is only a warning', () => {
    const none = run({}, tx(['a@x.org'], '', { xforward }), server(EHLO_PIPE));
    expect(none.transcript.some((l) => l.includes('XFORWARD'))).toBe(false);
    const rejected = run({}, tx(['a@x.org'], '', { xforward }), server(EHLO_XF, { XFORWARD: () => '550 5.7.0 insufficient authorization' }));
    expect(kinds(rejected.outcomes)).toEqual(['success:250']);
    expect(rejected.warnings.some((m) => /550 5\.7\.0 insufficient authorization \(in reply to XFORWARD name\/address command\)/.test(m))).toBe(true);
  });
});

describe('ClientSession: pipelined transactions and a lost connection', () => {
  const enc = new TextEncoder();
  const text = (out: Uint8Array[]) => out.map((b) => new TextDecoder().decode(b)).join('');
  function twoPipelined(): { s: ClientSession; outcomes: Map<number, Map<number, Why>> } {
    const s = new ClientSession({ protocol: 'smtp', heloName: 'client.test', transactionPipelining: true, quitAfterTransaction: false });
    s.receive(enc.encode('220 mx.test ESMTP\r\n'));
    s.receive(enc.encode(EHLO_FULL.join('\r\n') + '\r\n'));
    const a = s.transaction(tx(['a@x.org']));
    const b = s.transaction(tx(['b@x.org']));
    const wire = text(s.takeOutput());
    // Both transactions went out, each with its end of data, before any reply.
    expect(wire.match(/BDAT \d+ LAST/g)).toHaveLength(2);
    const outcomes = new Map<number, Map<number, Why>>([[a, new Map()], [b, new Map()]]);
    return { s, outcomes };
  }
  function collect(s: ClientSession, outcomes: Map<number, Map<number, Why>>): void {
    for (const e of drainEvents(s)) if (e.type === 'outcome') outcomes.get(e.tx)!.set(e.index, e.why);
  }

  it('each transaction whose BDAT LAST went out without a reply: "may be sent more than once", the head one too', () => {
    const { s, outcomes } = twoPipelined();
    drainEvents(s).next();
    s.connectionLost(); // e.g. a reset that discarded replies already sent
    collect(s, outcomes);
    const [first, second] = [...outcomes.values()].map((m) => m.get(0) as Why & { stage?: string });
    expect(first).toMatchObject({ kind: 'lost', stage: 'sending end of data -- message may be sent more than once' });
    expect(second).toMatchObject({ kind: 'lost', stage: 'sending end of data -- message may be sent more than once' });
  });

  it('after a 421 nothing written later was read: the transaction behind is not "may be sent more than once"', () => {
    const { s, outcomes } = twoPipelined();
    s.receive(enc.encode('421 4.3.2 closing\r\n'));
    s.connectionLost();
    collect(s, outcomes);
    const second = [...outcomes.values()][1]!.get(0) as Why & { stage?: string };
    expect(second.kind === 'lost' ? second.stage : second.kind).not.toMatch(/more than once/);
  });
});

