/**
 * The fault matrix: for every protocol step and every fault, against the real test server
 * over loopback, every recipient gets exactly one correct result, and nothing is reported
 * relayed or delivered without a 2xx to the end of data.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { deliver, type DeliveryResult } from '../../src/index.js';
import { TestServer, type Fault, type Step } from '../../src/testing/index.js';

type Action = 'drop' | 'stall' | 'garbage' | '421' | '4xx' | '5xx';
type Expect = [action: string, status: string, reason: RegExp];

const RCPTS = ['r0@example.test', 'r1@example.test', 'r2@example.test'];
const FAST = { connect: 2000, helo: 300, mail: 300, rcpt: 300, dataInit: 300, dataXfer: 300, dataDone: 300, quit: 300, rset: 300 };
const REPLY: Record<'421' | '4xx' | '5xx', string> = { '421': '421 4.3.2 Service shutting down', '4xx': '451 4.3.0 Temporary failure', '5xx': '554 5.7.1 Rejected' };
const RCPT_REPLY: Record<'421' | '4xx' | '5xx', string> = { '421': '421 4.3.2 Service shutting down', '4xx': '450 4.2.0 Mailbox busy', '5xx': '550 5.1.1 User unknown' };
const ACTIONS: Action[] = ['drop', 'stall', 'garbage', '421', '4xx', '5xx'];

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function fault(step: Step, action: Action, rcpt?: number): Fault {
  const f: Fault =
    action === 'drop' || action === 'stall' || action === 'garbage'
      ? { step, action }
      : { step, action: 'reply', reply: (step === 'rcpt' ? RCPT_REPLY : REPLY)[action] };
  if (rcpt !== undefined) f.rcpt = rcpt;
  return f;
}

const ok: Expect = ['relayed', '2.0.0', /^250 /];
const all = (e: Expect): Expect[] => [e, e, e];
const lost = (stage: string): Expect => ['delayed', '4.4.2', new RegExp(`^lost connection with .* while ${stage}`)];
const timedOut = (stage: string): Expect => ['delayed', '4.4.2', new RegExp(`^conversation with .* timed out while ${stage}`)];
const said = (action: 'delayed' | 'failed', status: string, code: string, cmd: string): Expect => [action, status, new RegExp(`^host .* said: ${code} .*\\(in reply to ${cmd} command\\)$`)];
const refused = (status: string, code: string): Expect => ['delayed', status, new RegExp(`^host .* refused to talk to me: ${code} `)];
const END = 'sending end of data -- message may be sent more than once';
const BODY_OR_END = '(sending end of data -- message may be sent more than once|sending message body)';

/**
 * What Postfix decides (POSTFIX-BEHAVIOR.md §1.2) for a fault at a step. On the BDAT path the
 * `BDAT … LAST` goes out in the flight of MAIL and RCPT, so a connection lost or timed out while
 * their replies are awaited is already in the lost-reply window after the end of data: the
 * server may have taken the message (a reset discards replies it sent). Postfix, which writes
 * "." only after those replies, cannot be in that state; mailwire then says what is true,
 * "sending end of data -- message may be sent more than once" (§1.8).
 */
function expected(step: Step, action: Action, path: 'DATA' | 'BDAT' = 'DATA'): Expect[] {
  const stage: Partial<Record<Step, string>> = {
    connect: 'receiving the initial server greeting',
    ehlo: 'performing the EHLO handshake',
    mail: 'sending MAIL FROM',
    rcpt: 'sending RCPT TO',
    data: 'sending DATA command',
    'data-transfer': BODY_OR_END,
    dot: END,
  };
  if (step === 'quit') return all(ok);
  const s = path === 'BDAT' && (step === 'mail' || step === 'rcpt') ? END : stage[step]!;
  if (action === 'drop' || action === 'garbage') return all(lost(s));
  if (action === 'stall') return all(timedOut(s));
  switch (step) {
    case 'connect':
      return all(action === '421' ? refused('4.3.2', '421') : action === '4xx' ? refused('4.3.0', '451') : refused('4.7.1', '554'));
    case 'ehlo':
      return action === '421' ? all(refused('4.3.2', '421')) : all(ok); // HELO fallback
    case 'mail':
      return all(action === '5xx' ? said('failed', '5.7.1', '554', 'MAIL FROM') : action === '421' ? said('delayed', '4.3.2', '421', 'MAIL FROM') : said('delayed', '4.3.0', '451', 'MAIL FROM'));
    case 'rcpt':
      if (action === '421') return [lost(stage.rcpt!), said('delayed', '4.3.2', '421', 'RCPT TO'), lost(stage.rcpt!)];
      return [ok, action === '4xx' ? said('delayed', '4.2.0', '450', 'RCPT TO') : said('failed', '5.1.1', '550', 'RCPT TO'), ok];
    case 'data':
    case 'data-transfer':
    case 'dot': {
      const cmd = step === 'data' ? 'DATA' : 'end of DATA';
      return all(action === '5xx' ? said('failed', '5.7.1', '554', cmd) : action === '421' ? said('delayed', '4.3.2', '421', cmd) : said('delayed', '4.3.0', '451', cmd));
    }
    default:
      throw new Error(`no expectation for ${step}`);
  }
}

async function runCase(path: 'DATA' | 'BDAT', protocol: 'smtp' | 'lmtp', f: Fault): Promise<{ result: DeliveryResult; server: TestServer }> {
  const server = await TestServer.start({ protocol, extensions: { chunking: path === 'BDAT', dsn: false }, faults: [f] });
  servers.push(server);
  const result = await deliver(
    { from: 'sender@client.test', to: RCPTS, message: 'Subject: fault matrix\r\n\r\n.body line\r\n' },
    server.destination,
    { protocol, tls: { level: 'none' }, timeouts: FAST, heloName: 'client.test' },
  );
  return { result, server };
}

function check(result: DeliveryResult, server: TestServer, want: Expect[], protocol: 'smtp' | 'lmtp'): void {
  // Exactly one result per recipient, in order.
  expect(result.recipients.map((r) => r.recipient)).toEqual(RCPTS);
  result.recipients.forEach((r, i) => {
    const [action, status, reason] = want[i]!;
    const success = action === 'relayed';
    expect({ i, action: r.action, status: r.status }).toEqual({ i, action: success && protocol === 'lmtp' ? 'relayed' : action, status });
    expect(success ? r.reply?.text ?? '' : r.reason).toMatch(reason);
    if (r.action === 'relayed' || r.action === 'delivered') {
      // Never success without a 2xx to the end of data for this recipient.
      // (LMTP: the transaction may be cut short after this recipient's own reply.)
      const tx = server.transactions.find((t) => (t.complete || protocol === 'lmtp') && t.accepted.includes(r.recipient));
      expect(tx, `a completed transaction for ${r.recipient}`).toBeDefined();
      const reply = protocol === 'lmtp' ? tx!.replies[tx!.accepted.indexOf(r.recipient)] : tx!.replies[0];
      expect(reply).toMatch(/^2/);
    }
  });
}

for (const path of ['BDAT', 'DATA'] as const) {
  const steps: Step[] = ['connect', 'ehlo', 'mail', 'rcpt', ...(path === 'DATA' ? (['data'] as Step[]) : []), 'data-transfer', 'dot', 'quit'];
  describe(`fault matrix, SMTP, ${path} path`, () => {
    for (const step of steps) {
      for (const action of ACTIONS) {
        it(`${step} × ${action}`, async () => {
          const { result, server } = await runCase(path, 'smtp', fault(step, action, step === 'rcpt' ? 1 : undefined));
          check(result, server, expected(step, action, path), 'smtp');
        });
      }
    }
  });
}

describe('fault matrix, LMTP per-recipient end of data', () => {
  for (const path of ['BDAT', 'DATA'] as const) {
    for (const action of ACTIONS) {
      it(`${path}: dot reply for recipient 1 × ${action}`, async () => {
        const { result, server } = await runCase(path, 'lmtp', fault('dot', action, 1));
        let want: Expect[];
        if (action === 'drop' || action === 'garbage') want = [ok, lost(END), lost(END)];
        else if (action === 'stall') want = [ok, timedOut(END), timedOut(END)];
        else if (action === '421') want = [ok, said('delayed', '4.3.2', '421', 'end of DATA'), lost(END)];
        else want = [ok, action === '4xx' ? said('delayed', '4.3.0', '451', 'end of DATA') : said('failed', '5.7.1', '554', 'end of DATA'), ok];
        check(result, server, want, 'lmtp');
      });
    }
  }
});
