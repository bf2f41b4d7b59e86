/**
 * The mailwire test server as a separate process, for benchmarks that must not share the
 * sender's heap or event loop (memory.ts, throughput.ts when smtp-sink is not installed).
 *
 *   npx tsx bench/receiver.ts [--no-chunking] [--no-pipelining] [--keep-data] [--port N] [--host 127.0.0.1]
 *                             [--exit-on-stdin-close]
 *
 * stdout, one JSON object per line:
 *   {"event":"listening","host":"127.0.0.1","port":40123,"destination":"[127.0.0.1]:40123"}
 *   {"event":"transaction","session":0,"method":"BDAT","size":209715200,"sha256":"…","rcpts":1,"bdatChunks":3200}
 *     (one per end of data, before the reply is sent)
 *   {"event":"stats","sessions":…,"transactions":…,"bytes":…}   (on SIGUSR2, and when stopping)
 * Exits on SIGTERM/SIGINT, and with --exit-on-stdin-close also when stdin closes (so it dies
 * with the process that spawned it).
 * Octets are discarded (only size and SHA-256 are kept) unless --keep-data.
 */
import { TestServer } from '../src/testing/index.js';

function flag(name: string): boolean {
  return process.argv.includes(name);
}
function value(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const emit = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

let transactions = 0;
let bytes = 0;
const server = await TestServer.start({
  host: value('--host') ?? '127.0.0.1',
  port: Number(value('--port') ?? 0),
  hostname: 'receiver.bench.invalid',
  discardData: !flag('--keep-data'),
  extensions: { chunking: !flag('--no-chunking'), pipelining: !flag('--no-pipelining') },
  // a benchmark sends many messages per session and many sessions
  transcriptLimit: 200,
  onData: (tx) => {
    transactions++;
    bytes += tx.size;
    emit({ event: 'transaction', session: tx.session, method: tx.method, size: tx.size, sha256: tx.sha256, rcpts: tx.accepted.length, bdatChunks: tx.bdatChunks.length });
    return undefined;
  },
});

// The server records every session and transaction; a long benchmark would grow that, so drop
// the records of ended sessions now and then (open sessions keep recording).
const trim = setInterval(() => {
  if (server.openConnections === 0 && server.sessions.length > 0) server.reset();
}, 1000);
trim.unref();

emit({ event: 'listening', host: server.host, port: server.port, destination: server.destination });

const stats = () => emit({ event: 'stats', sessionsOpen: server.openConnections, transactions, bytes });
process.on('SIGUSR2', stats);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  stats();
  void server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (flag('--exit-on-stdin-close')) {
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}
