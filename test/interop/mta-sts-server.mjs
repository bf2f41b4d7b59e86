// MTA-STS policy server for the interop TLS lab (started by peers.sh; plain Node, no build step).
//
//   node mta-sts-server.mjs --listen 127.0.0.80:443 --cert CRT --key KEY --policies JSON --log FILE
//
// Real HTTPS with the harness CA's certificate for every mta-sts.DOMAIN host. Serves
// GET /.well-known/mta-sts.txt (RFC 8461 §3.3) for the policy host named by the Host header
// (SNI is not required: the certificate covers all of them): 200 text/plain with the policy
// from the JSON file, 404 for a host it does not know. Every request is appended to the log as
// one line "ISO-TIME HOST METHOD PATH STATUS", which the tests read to count policy fetches;
// GET /requests answers the same count as JSON ({ "policyRequests": N, "requests": M }),
// without counting itself.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1]);
for (const k of ['--listen', '--cert', '--key', '--policies', '--log']) {
  if (!args.get(k)) {
    console.error(`mta-sts-server: missing ${k}`);
    process.exit(2);
  }
}
const listen = args.get('--listen');
const host = listen.slice(0, listen.lastIndexOf(':'));
const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
  console.error(`mta-sts-server: loopback 127.x.y.z only, got ${host}`);
  process.exit(2);
}
const policies = JSON.parse(readFileSync(args.get('--policies'), 'utf8'));
const logFile = args.get('--log');
let policyRequests = 0;
let requests = 0;

const server = createServer({ cert: readFileSync(args.get('--cert')), key: readFileSync(args.get('--key')) }, (req, res) => {
  const hostHeader = String(req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const path = (req.url ?? '').split('?')[0];
  if (path === '/requests') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ policyRequests, requests }));
    return;
  }
  requests++;
  let status = 404;
  let body = 'not found\n';
  if (req.method === 'GET' && path === '/.well-known/mta-sts.txt' && Object.hasOwn(policies, hostHeader)) {
    policyRequests++;
    status = 200;
    body = policies[hostHeader];
  }
  appendFileSync(logFile, `${new Date().toISOString()} ${hostHeader || '-'} ${req.method} ${req.url} ${status}\n`);
  res.writeHead(status, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
  res.end(body);
});
server.on('tlsClientError', (err, socket) => {
  appendFileSync(logFile, `${new Date().toISOString()} - TLS-ERROR ${socket.remoteAddress ?? '-'} ${err.code ?? err.message}\n`);
});
server.listen(port, host, () => {
  if (args.get('--pidfile')) writeFileSync(args.get('--pidfile'), `${process.pid}\n`);
  appendFileSync(logFile, `${new Date().toISOString()} - LISTEN https://${host}:${port}/ (${Object.keys(policies).join(', ')})\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
