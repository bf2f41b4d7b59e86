/**
 * `npm run demo`: start the embedded test receiver on loopback, deliver one message to
 * recipients that get different outcomes, and print one DSN-ready line per recipient.
 * Then the same over LMTP, where each recipient gets its own reply after the data.
 */
import { deliver, type DeliveryResult } from '../src/index.js';
import { TestServer } from '../src/testing/index.js';

const message = [
  'From: Demo <demo@client.example>',
  'To: undisclosed-recipients:;',
  'Subject: mailwire demo',
  '',
  'Hello from mailwire.',
  '.a line that starts with a dot (dot-stuffed on the wire)',
  '',
].join('\r\n');

function table(title: string, result: DeliveryResult): void {
  console.log(`\n${title}`);
  const rows = result.recipients.map((r) => [JSON.stringify(r.recipient).slice(1, -1), r.action, r.status, r.diagnosticCode ?? r.reason]);
  const head = ['recipient', 'action', 'status', 'diagnostic / reason'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(Math.min(w, 60)))));
  for (const r of rows) console.log(line(r.map(String)));
}

const smtp = await TestServer.start({
  hostname: 'mx.demo.test',
  onRcpt: (address) => {
    if (address.startsWith('unknown')) return `550 5.1.1 <${address}>: Recipient address rejected: User unknown`;
    if (address.startsWith('busy')) return `450 4.2.1 <${address}>: Recipient address rejected: Mailbox busy, try again later`;
    return undefined;
  },
});
try {
  const result = await deliver(
    {
      from: 'demo@client.example',
      to: ['alice@demo.test', 'unknown@demo.test', 'busy@demo.test', 'bob@demo.test', 'broken\r\naddress@demo.test'],
      message,
    },
    smtp.destination,
    { heloName: 'client.example', tls: { level: 'none' } },
  );
  table(`SMTP to ${smtp.destination} (CHUNKING, PIPELINING):`, result);
  const tx = smtp.transactions[0];
  console.log(`\nThe receiver got ${tx?.size} octets by ${tx?.method} for ${tx?.accepted.join(', ')}.`);
} finally {
  await smtp.close();
}

const lmtp = await TestServer.start({
  protocol: 'lmtp',
  hostname: 'lmtp.demo.test',
  // Like Dovecot: no DSN, so with `final: true` success is 'delivered' (Postfix flag X).
  extensions: { dsn: false },
  onRcpt: (address) => (address.startsWith('nobody') ? `550 5.1.1 <${address}> User doesn't exist` : undefined),
  onData: (tx) => tx.accepted.map((a) => (a.startsWith('full') ? `552 5.2.2 <${a}> Quota exceeded` : `250 2.0.0 <${a}> Saved`)),
});
try {
  const result = await deliver(
    { from: 'demo@client.example', to: ['alice@demo.test', 'full@demo.test', 'nobody@demo.test'], message },
    lmtp.destination,
    { protocol: 'lmtp', final: true, heloName: 'client.example' },
  );
  table(`LMTP to ${lmtp.destination} (final delivery):`, result);
} finally {
  await lmtp.close();
}
