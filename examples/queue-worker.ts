/**
 * A queue worker's loop in miniature: deliver through a Pool, with a generic map and a header
 * check, then write the bounce for what failed with buildDsn(). Runs against the embedded test
 * receiver: `npx tsx examples/queue-worker.ts`.
 */
import { buildDsn, deliver, genericMap, headerCheckTable, Pool } from '../src/index.js';
import { TestServer } from '../src/testing/index.js';

const server = await TestServer.start({
  onRcpt: (address) => (address.startsWith('nobody@') ? '550 5.1.1 <nobody@example.test>: user unknown' : undefined),
});
const pool = new Pool();
const options = {
  pool,
  tls: { level: 'none' as const },
  heloName: 'worker.example',
  rewriteAddress: genericMap({ '@host.local': '@example.org' }, { myOrigin: 'host.local' }),
  headerCheck: headerCheckTable('/^X-Internal-/ IGNORE\n/^Subject: *(.*)/ REPLACE Subject: [outbound] $1'),
};

const queue = [
  { from: 'alice@host.local', to: ['bob@example.test', 'nobody@example.test'], message: 'From: alice@host.local\r\nX-Internal-Id: 7\r\nSubject: report\r\n\r\nnumbers\r\n' },
  { from: 'carol@host.local', to: ['dave@example.test'], message: 'From: carol@host.local\r\nSubject: hello\r\n\r\nhi\r\n' },
];

for (const envelope of queue) {
  const result = await deliver(envelope, server.destination, options);
  for (const r of result.recipients) console.log(`${envelope.from} -> ${r.recipient}: ${r.action} ${r.status} ${r.reason}`);
  const dsn = buildDsn(result, { reportingMta: 'worker.example', to: envelope.from, original: envelope.message });
  if (dsn) console.log(`\nbounce to ${envelope.from} for recipients ${dsn.recipients.join(', ')}:\n${new TextDecoder().decode(dsn.message).split('\r\n').slice(0, 12).join('\n')}\n...`);
}
console.log(`\nstored first message as:\n${server.transactions[0]!.data!.toString()}`);
console.log(`one connection for ${server.transactions.length} transactions: ${server.sessions.length === 1}`);
await pool.close();
await server.close();
